"""NeRF lr tuning (``scripts/tune_nerf.py``) and the methods' use of the tuned NeRF rows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("nerfstudio", reason="NeRF tuning needs the [nerf] extra")

from muon_nerf.fit.errors import InputError  # noqa: E402
from muon_nerf.nerf import config as nerf_config  # noqa: E402
from muon_nerf.nerf.data import subset_selection, write_blender_subset, write_sphere_scene  # noqa: E402
from muon_nerf.runs import tuned  # noqa: E402
from muon_nerf.runs.tuned import TunedLrs  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TUNE = [sys.executable, str(ROOT / "scripts" / "tune_nerf.py")]


def test_a_subset_from_an_offset_keeps_views_disjoint_from_the_protocols(tmp_path):
    src = write_sphere_scene(tmp_path / "src", size=16, views={"train": 8, "val": 2, "test": 2})
    pack = write_blender_subset(src, tmp_path / "pack", size=8, stride=4, eval_views=2, offset=2)
    train = json.loads((pack / "transforms_train.json").read_text())["frames"]
    assert [f["file_path"] for f in train] == ["./train/r_2", "./train/r_6"]
    assert subset_selection(pack) == {"size": 8, "stride": 4, "views": None, "eval_views": 2, "offset": 2}
    for stride, offset in ((None, 1), (4, 4)):
        with pytest.raises(InputError, match="offset"):
            write_blender_subset(src, tmp_path / "bad", size=8, stride=stride, offset=offset)
    assert not (tmp_path / "bad").exists()


def test_the_methods_take_the_tuned_nerf_rows(monkeypatch):
    rows = {
        ("nerf", "siren"): TunedLrs("nerf", "siren", 2e-4, 3e-4, 0.07, ()),
        ("nerf", "ngp"): TunedLrs("nerf", "ngp", 5e-3, 2e-2, 0.04, ()),
    }
    monkeypatch.setattr(tuned, "tuned_table", lambda *_: rows)

    def lrs(config) -> tuple[float, float]:
        return (config.optimizers["fields"]["optimizer"].lr, config.optimizers["fields_muon"]["optimizer"].lr)

    muon = nerf_config.trainer_config("m", "muon", "siren")
    adam = nerf_config.trainer_config("a", "adam", "siren")
    assert lrs(muon) == (3e-4, 0.07) and lrs(adam)[0] == 2e-4
    assert nerf_config.tuned_group_lrs(adam, "adam") == {"fields": 2e-4}
    assert nerf_config.method_lrs("siren")[1] == "tuned: nerf/siren"
    ngp = nerf_config.ngp_trainer_config("n", "muon")
    assert lrs(ngp) == (2e-2, 0.04) and nerf_config.ngp_trainer_config("n", "adam").optimizers["fields"][
        "optimizer"
    ].lr == pytest.approx(5e-3)
    # an arch without a row keeps the untuned defaults: vanilla NeRF's Adam, Muon's own
    relu = nerf_config.trainer_config("r", "muon", "relu")
    assert lrs(relu) == (nerf_config.NERF_ADAM_LR, nerf_config.MUON_LR)
    assert nerf_config.method_lrs("relu")[1] == "defaults"
    # the decay schedule follows the lr: 10× lower at the end, whatever the lr
    assert muon.optimizers["fields_muon"]["scheduler"].decay == 10


def test_tune_nerf_dry_run_feeds_the_tuned_table(tmp_path):
    out = tmp_path / "tune"
    grid = ["--adam-lrs", "1e-3", "--muon-lrs", "0.05", "--muon-adam-lrs", "2e-3"]
    for shard in ("0", "1"):
        proc = subprocess.run(
            [*TUNE, "--dry-run", *grid, "--shard", shard, "2", "--output", str(out)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    sweep = json.loads((out / "relu_pe-views2" / "sweep.json").read_text())
    assert sweep["task"] == "nerf" and sweep["config"]["field"]["arch"] == "relu_pe"
    assert sweep["signal"]["offset"] == 2 and sweep["signal"]["eval_split"] == "val"
    trials = {t["optimizer"]: t for t in sweep["trials"]}
    assert len(sweep["trials"]) == sweep["planned_trials"] == 2
    assert trials["adam"]["status"] == trials["muon"]["status"] == "ok"
    assert 0 < trials["adam"]["value"] < 60 and trials["adam"]["step"] == 2
    # each trial trained with its grid point's lrs (the run's own record)
    assert trials["adam"]["metrics"]["lrs"] == {"fields": 1e-3}
    assert trials["muon"]["metrics"]["lrs"] == {"fields": 2e-3, "fields_muon": 0.05}
    assert (trials["muon"]["lr"], trials["muon"]["muon_lr"]) == (2e-3, 0.05)

    # run again: every trial is kept, none trained
    proc = subprocess.run(
        [*TUNE, "--dry-run", *grid, "--output", str(out)], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0 and proc.stdout.count(": kept") == 2 and " it\n" not in proc.stdout

    table, markdown = tmp_path / "table.json", tmp_path / "tuned.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "tuned_lrs.py"), "--sweeps", str(out), "--table", str(table),
         "--markdown", str(markdown)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(table.read_text())["rows"]
    assert (row["task"], row["arch"]) == ("nerf", "relu_pe")
    assert (row["adam_lr"], row["muon_adam_lr"], row["muon_lr"]) == (1e-3, 2e-3, 0.05)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--offsets", "0"], "--offsets must be distinct views 1"),
        (["--offsets", "2", "2"], "--offsets must be distinct"),
        (["--shard", "2", "2"], "--shard I N needs 0 <= I < N"),
        (["--muon-lrs", "-0.1"], "--muon-lrs must be finite lrs > 0"),
        (["--archs", "mlp"], "--archs: unknown ['mlp']"),
        (["--iterations", "0"], "--iterations must be >= 1"),
    ],
)
def test_tune_nerf_refuses_bad_flags_in_one_line(tmp_path, flags, message):
    out = tmp_path / "tune"
    proc = subprocess.run(
        [*TUNE, "--dry-run", *flags, "--output", str(out)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr
    assert not out.exists()  # refused before anything is written


def test_default_grids_per_arch_interleaved_for_the_shards(monkeypatch):
    """Position fields' Adam grid sits above vanilla NeRF's lr, ngp's around instant-ngp's; the
    archs' trials alternate, so N shards share the slow arch's trials."""
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    import tune_nerf

    cfg = tune_nerf.TuneNerfConfig(archs=("siren", "ngp"))
    grid = tune_nerf.trials(cfg)
    assert [t.arch for t in grid[:4]] == ["siren", "ngp", "siren", "ngp"]
    adam = {
        a: sorted(t.lrs.lr for t in grid if (t.arch, t.optimizer) == (a, "adam")) for a in ["siren", "ngp"]
    }
    assert adam["siren"] == pytest.approx([1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2])
    assert adam["ngp"] == pytest.approx([5e-3, 1e-2, 2e-2, 4e-2])
    muon = {(t.lrs.muon_lr, t.lrs.muon_adam_lr) for t in grid if t.arch == "siren" and t.optimizer == "muon"}
    assert muon == {(m, a) for m in (0.02, 0.05, 0.1, 0.2) for a in (1e-3, 4e-3)}
    assert len(grid) == 13 + 12
