"""Learning rates: each unset one resolves once, after the parse, from the first level that sets
it (flag > preset/profile > tuned table > task default > optimizer default), and the line printed
before a fit names where each came from; the shipped table is what the committed sweeps give, and
each optimizer gets its own Adam lr."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from muon_nerf.fields import FieldConfig, MLPField
from muon_nerf.optim import OptimConfig
from muon_nerf.runs import tuned
from muon_nerf.runs.presets import PRESET_FORMAT, save_preset
from muon_nerf.runs.tuned import TunedLrs, tuned_table
from muon_nerf.signals.cli import main as fit_main
from muon_nerf.signals.cli import parse
from muon_nerf.sweep.trial import trial_config
from muon_nerf.tasks import task_config
from tests.conftest import make_test_image

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--width", "8", "--steps", "2", "--eval-every", "2", "--rank-every", "2", "--no-progress"]
ROW = TunedLrs("image", "relu", adam_lr=3e-3, muon_adam_lr=2e-4, muon_lr=0.3, sources=("x/sweep.json",))


@pytest.fixture
def png(tmp_path):
    path = tmp_path / "tiny.png"
    Image.fromarray((make_test_image(16, 16) * 255 + 0.5).astype(np.uint8)).save(path)
    return path


@pytest.fixture
def table(monkeypatch):
    monkeypatch.setattr(tuned, "tuned_table", lambda *_: {("image", "relu"): ROW})


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
    monkeypatch.setattr(tuned, "tuned_table", lambda *_: {("sdf", "relu_pe"): row})
    tuned_lrs = (row.adam_lr, row.muon_lr, row.muon_adam_lr)
    assert lrs(parse_fit(["--mesh", "m.ply"])) == tuned_lrs  # the sweeps' scale
    assert lrs(parse_fit(["--mesh", "m.ply", "--profile", "cpu"])) == tuned_lrs
    assert lrs(paper_profile()) == (None, None, None)  # a profile sets no lr: the task's default
    paper = parse_fit(["--mesh", "m.ply", "--profile", "paper"])
    assert lrs(paper) == (1e-3, 0.02, None)  # the optimizers' own: the SDF task's default
    assert paper.optim.lr_sources["muon_lr"] == "optimizer default"


def test_each_optimizer_gets_its_own_adam_lr():
    field_ = MLPField(FieldConfig(arch="relu", num_layers=4, width=8), 2, 3)
    cfg = OptimConfig(lr=3e-3, muon_lr=0.3, muon_adam_lr=2e-4)
    adam = {g["lr"] for g in cfg.param_groups(field_, "adam")}
    muon = {g["use_muon"]: g["lr"] for g in cfg.param_groups(field_, "muon")}
    assert adam == {3e-3} and muon == {True: 0.3, False: 2e-4}
    # printed before every fit, since the defaults depend on the arch
    assert cfg.describe_lrs("adam") == "adam: --lr 0.003"
    assert cfg.describe_lrs("muon") == "muon: --muon-lr 0.3, Adam part 0.0002"
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


def test_the_rule_refuses_sweeps_of_different_budgets():
    """A short proxy can favour other lrs than the budget the table reports: a row's sweeps share
    one training length (a fit sweep's steps, a NeRF sweep's iterations)."""
    script = _tuned_script()
    short = _sweep(0.5, [("adam", 1e-4, None, 40.0), ("muon", 1e-4, 1e-3, 50.0)])
    long = _sweep(5.0, [("adam", 1e-4, None, 45.0), ("muon", 1e-4, 1e-3, 55.0)])
    short["config"]["fit"], long["config"]["fit"] = {"steps": 500}, {"steps": 500}
    assert len(script.choose([(Path("a/sweep.json"), short), (Path("b/sweep.json"), long)])[0]) == 1
    long["config"]["fit"] = {"steps": 2000}
    with pytest.raises(
        script.InputError, match="audio/siren sweeps trained for different budgets \\(500, 2000"
    ):
        script.choose([(Path("a/sweep.json"), short), (Path("b/sweep.json"), long)])
    nerf = [{**s, "config": {**s["config"], "iterations": n}} for s, n in ((short, 500), (long, 500))]
    assert script.budget(nerf[0]) == 500 and len(
        script.choose([(Path("a"), nerf[0]), (Path("b"), nerf[1])])[0]
    )


def sources(cfg) -> tuple[str, str, str]:
    return cfg.optim.lr_sources["lr"], cfg.optim.lr_sources["muon_lr"], cfg.optim.lr_sources["muon_adam_lr"]


def test_each_level_wins_over_the_ones_below_it_and_the_fit_line_names_it(
    table, png, tmp_path, monkeypatch, capsys
):
    """flag > preset > tuned table > task default > optimizer default, each lr on its own; the
    line printed before a fit says where each one came from."""
    image = ["--image", str(png)]
    # a hand-written preset that sets --lr only: the others fall through to the levels below
    preset = tmp_path / "lr-only.json"
    preset.write_text(
        json.dumps({"format": PRESET_FORMAT, "task": "image", "config": {"optim": {"lr": 5e-3}}})
    )
    tuned_, default = "tuned: image/relu", "optimizer default"
    cases = [
        ([], (3e-3, 0.3, 2e-4), (tuned_,) * 3),
        (["--arch", "siren"], (1e-3, 0.1, None), (default, "task default", f"= --lr, {default}")),
        (["--preset", str(preset)], (5e-3, 0.3, None), ("preset", tuned_, "= --lr, preset")),
        (["--preset", str(preset), "--lr", "7e-3"], (7e-3, 0.3, None), ("flag", tuned_, "= --lr, flag")),
        (["--preset", str(preset), "--muon-adam-lr", "1e-4"], (5e-3, 0.3, 1e-4), ("preset", tuned_, "flag")),
    ]
    for flags, values, named in cases:
        cfg = parse("image", [*image, *flags])
        assert (lrs(cfg), sources(cfg)) == (values, named), flags
    monkeypatch.setenv("COLUMNS", "300")  # rich wraps at the terminal's width
    out = tmp_path / "out"
    fit_main("image", [*image, *TINY, "--compare", "--output-dir", str(out), "--run-name", "r"])
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("learning rates:")]
    assert line == (
        "learning rates: adam: --lr 0.003 (tuned: image/relu); "
        "muon: --muon-lr 0.3 (tuned: image/relu), Adam part 0.0002 (tuned: image/relu)"
    )
    # the run records hold the resolved numbers
    config = json.loads((out / "image/r/comparison.json").read_text())["config"]["optim"]
    assert (config["lr"], config["muon_lr"], config["muon_adam_lr"]) == (3e-3, 0.3, 2e-4)


def test_a_sweep_preset_with_a_flag_resolves_as_documented(table, tmp_path):
    """A preset muon-sweep wrote holds a whole config: its lrs beat the tuned table, a flag beats
    them; its null --muon-adam-lr is "= --lr", whichever level --lr then comes from."""
    base = parse("image", ["--image", "a.png", "--arch", "relu"])  # tuned: (3e-3, 0.3, 2e-4)
    path = tmp_path / "preset-muon.json"
    save_preset(path, "image", trial_config(base, {"optimizer": "muon", "lr": 1e-2, "muon_lr": 0.05}), "muon")
    cfg = parse("image", ["--preset", str(path)])
    assert (lrs(cfg), sources(cfg)) == ((1e-2, 0.05, None), ("preset", "preset", "= --lr, preset"))
    cfg = parse("image", ["--preset", str(path), "--muon-lr", "0.2", "--lr", "2e-3"])
    assert (lrs(cfg), sources(cfg)) == ((2e-3, 0.2, None), ("flag", "flag", "= --lr, flag"))
    assert cfg.optim.describe_lrs("muon") == "muon: --muon-lr 0.2 (flag), Adam part 0.002 (= --lr, flag)"


SOURCE = ROOT / "muon_nerf"
LR_LITERAL = re.compile(r"\b(?:lr|muon_lr|muon_adam_lr|adam_lr)\s*=\s*[-+]?\.?\d")


def test_each_default_lr_is_declared_once():
    """``grep``: the only numbers given to an lr in the package (NeRF's own configs aside) are the
    optimizer's defaults and each task's ``default_lrs``, in that task's own module; the task
    configs themselves hold no lr until the command resolves them."""
    hits = sorted(
        (str(path.relative_to(SOURCE)), line.strip())
        for path in SOURCE.rglob("*.py")
        if "nerf" not in path.relative_to(SOURCE).parts
        for line in path.read_text().splitlines()
        if LR_LITERAL.search(line)
    )
    files = [path for path, _ in hits]
    tasks = ["signals/audio.py", "signals/ct.py", "signals/image.py", "signals/sisr.py"]
    assert files == ["optim/muon.py", "optim/muon.py", *tasks], hits
    assert all(
        "default_lrs: ClassVar[Lrs] = Lrs(" in line for path, line in hits if path.startswith("signals")
    )
    for task in ("image", "audio", "ct", "sisr"):
        cls = task_config(task)
        assert "default_lrs" in vars(cls) and lrs(cls()) == (None, None, None), task
