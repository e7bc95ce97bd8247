"""Tuned learning rates: the shipped table is what the committed sweeps give, commands use it
only where no lr flag (and no preset) is given, and each optimizer gets its own Adam lr."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from muon_nerf.fields import FieldConfig, MLPField
from muon_nerf.fit import tuned
from muon_nerf.fit.presets import save_preset
from muon_nerf.fit.tuned import TunedLrs, tuned_table
from muon_nerf.optim import OptimConfig
from muon_nerf.signals.cli import parse
from muon_nerf.sweep.trial import trial_config

ROOT = Path(__file__).resolve().parent.parent
ROW = TunedLrs("image", "relu", adam_lr=3e-3, muon_adam_lr=2e-4, muon_lr=0.3, sources=("x/sweep.json",))


@pytest.fixture
def table(monkeypatch):
    monkeypatch.setattr(tuned, "tuned_table", lambda: {("image", "relu"): ROW})


def lrs(cfg) -> tuple[float, float, float | None]:
    return cfg.optim.lr, cfg.optim.muon_lr, cfg.optim.muon_adam_lr


def test_no_lr_flag_gives_the_tuned_row_of_the_arch(table):
    assert lrs(parse("image", ["--image", "a.png", "--arch", "relu"])) == (3e-3, 0.3, 2e-4)
    # an arch without a row keeps the task's defaults
    assert lrs(parse("image", ["--image", "a.png", "--arch", "siren"])) == (1e-3, 0.1, None)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--muon-lr", "0.05"], (3e-3, 0.05, 2e-4)),
        (["--muon_lr=0.05"], (3e-3, 0.05, 2e-4)),
        # --lr keeps its meaning: the Adam lr of both optimizers
        (["--lr", "1e-2"], (1e-2, 0.3, None)),
        (["--lr", "1e-2", "--muon-adam-lr", "5e-3"], (1e-2, 0.3, 5e-3)),
        (["--muon-adam-lr", "5e-3"], (3e-3, 0.3, 5e-3)),
        # a flag that happens to equal the class default still counts as given
        (["--lr", "1e-3", "--muon-lr", "0.1"], (1e-3, 0.1, None)),
    ],
)
def test_a_given_flag_always_wins(table, flags, expected):
    assert lrs(parse("image", ["--image", "a.png", "--arch", "relu", *flags])) == expected


def test_a_preset_is_never_tuned(table, tmp_path):
    cfg = parse("image", ["--image", "a.png", "--arch", "relu", "--lr", "5e-4"])
    save_preset(tmp_path / "p.json", "image", cfg, "muon")
    assert lrs(parse("image", ["--preset", str(tmp_path / "p.json")])) == (5e-4, 0.3, None)


def test_a_profile_of_another_scale_keeps_its_own_lrs(monkeypatch):
    pytest.importorskip("trimesh", reason="muon-sdf fit needs the [sdf] extra")
    from muon_nerf.sdf.cli import parse_fit
    from muon_nerf.sdf.signal import paper_profile

    row = dataclasses.replace(ROW, task="sdf", arch="relu_pe")
    monkeypatch.setattr(tuned, "tuned_table", lambda: {("sdf", "relu_pe"): row})
    tuned_lrs = (row.adam_lr, row.muon_lr, row.muon_adam_lr)
    assert lrs(parse_fit(["--mesh", "m.ply"])) == tuned_lrs  # the sweeps' scale
    assert lrs(parse_fit(["--mesh", "m.ply", "--profile", "cpu"])) == tuned_lrs
    paper = paper_profile().optim
    assert lrs(parse_fit(["--mesh", "m.ply", "--profile", "paper"])) == (paper.lr, paper.muon_lr, None)


def test_each_optimizer_gets_its_own_adam_lr():
    field_ = MLPField(FieldConfig(arch="relu", num_layers=4, width=8), 2, 3)
    cfg = OptimConfig(lr=3e-3, muon_lr=0.3, muon_adam_lr=2e-4)
    adam = {g["lr"] for g in cfg.param_groups(field_, "adam")}
    muon = {g["use_muon"]: g["lr"] for g in cfg.param_groups(field_, "muon")}
    assert adam == {3e-3} and muon == {True: 0.3, False: 2e-4}
    # printed before every fit, since the defaults depend on the arch
    assert cfg.describe_lrs("adam") == "adam: --lr 0.003"
    assert cfg.describe_lrs("muon") == "muon: --muon-lr 0.3 (hidden matrices), Adam 0.0002 (rest)"
    with pytest.raises(ValueError, match="--muon-adam-lr"):
        OptimConfig(muon_adam_lr=0.0).check()


def test_a_sweep_trial_sets_the_adam_lr_of_either_optimizer(table):
    base = parse("image", ["--image", "a.png", "--arch", "relu"])
    trial = trial_config(base, {"optimizer": "muon", "lr": 1e-3, "muon_lr": 0.2})
    assert lrs(trial) == (1e-3, 0.2, None)


def test_the_shipped_table_is_what_the_committed_sweeps_give():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "tuned_lrs.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    for (task, arch), row in tuned_table().items():
        assert row.task == task and row.arch == arch
        for source in row.sources:
            sweep = json.loads((ROOT / source).read_text())
            assert sweep["task"] == task and sweep["config"]["field"]["arch"] == arch


def _tuned_script():
    spec = importlib.util.spec_from_file_location("tuned_lrs", ROOT / "scripts" / "tuned_lrs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _sweep(offset: float, trials: list[tuple[str, float, float | None, float | None]]) -> dict:
    """A minimal audio sweep.json: one clip of one recording, trials (optimizer, lr, muon_lr, value)."""
    return {
        "task": "audio",
        "signal": {"source": "/data/bach.wav"},
        "primary_metric": "psnr",
        "mode": "max",
        "config": {
            "data": {"audio": "/data/bach.wav", "offset": offset, "duration": 0.5},
            "field": {"arch": "siren"},
        },
        "trials": [
            {"optimizer": o, "lr": lr, "muon_lr": m, "status": "ok" if v is not None else "error", "value": v}
            for o, lr, m, v in trials
        ],
    }


def test_the_rule_picks_the_best_worst_signal_and_never_a_point_that_failed_on_one():
    script = _tuned_script()
    first = _sweep(0.5, [("adam", 1e-4, None, 40.0), ("adam", 1e-3, None, 30.0),
                         ("muon", 1e-4, 1e-3, 50.0), ("muon", 1e-3, 1e-3, 70.0),
                         ("muon", 1e-4, 1e-2, 60.0)])  # fmt: skip
    # the same recording at another offset is a second signal, not an overwrite of the first;
    # Muon (1e-3, 1e-3) has the best mean (52.5) but falls off a cliff here (35), so the point
    # whose worst signal is best wins (44); Muon lr 1e-2 failed here, so it is never chosen
    second = _sweep(5.0, [("adam", 1e-4, None, 20.0), ("adam", 1e-3, None, 40.0),
                          ("muon", 1e-4, 1e-3, 44.0), ("muon", 1e-3, 1e-3, 35.0),
                          ("muon", 1e-4, 1e-2, None)])  # fmt: skip
    rows, lines = script.choose([(Path("a/sweep.json"), first), (Path("b/sweep.json"), second)])
    assert [(r["adam_lr"], r["muon_adam_lr"], r["muon_lr"]) for r in rows] == [(1e-3, 1e-4, 1e-3)]
    assert "| 35.00 | 47.00 | +12.00 | 30.00 / 44.00 |" in lines[0]
    assert "bach@0.5s, bach@5s (2 sweeps)" in lines[0]
    # lower-is-better metrics: the best worst signal is the smallest largest value; Adam's two
    # points tie at 40 there, and the better (lower) mean breaks the tie
    for sweep in (first, second):
        sweep["mode"] = "min"
    rows, _ = script.choose([(Path("a/sweep.json"), first), (Path("b/sweep.json"), second)])
    assert [(r["adam_lr"], r["muon_adam_lr"], r["muon_lr"]) for r in rows] == [(1e-4, 1e-4, 1e-3)]
