"""``muon-sweep``: trial points, one trial (the CLI's own fit), diverged trials, presets for
``muon-fit --preset``, the table and heat map, and whole sweeps on a local Ray runtime."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from muon_nerf.fit.errors import InputError
from muon_nerf.runs.presets import load_preset, save_preset
from muon_nerf.runs.run import fit_one
from muon_nerf.signals.cli import main as fit_main
from muon_nerf.signals.cli import parse as fit_parse
from muon_nerf.signals.image import ImageTask
from muon_nerf.sweep.cli import parse as sweep_parse
from muon_nerf.sweep.config import SweepConfig, trial_points
from muon_nerf.sweep.report import TrialRecord, best_trials, heatmap, trial_table
from muon_nerf.sweep.trial import metric_mode, run_trial, trial_config
from tests.conftest import make_test_image

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--width", "16", "--num-layers", "3", "--steps", "30", "--eval-every", "10", "--rank-every", "10"]


@pytest.fixture
def png(tmp_path):
    path = tmp_path / "tiny.png"
    Image.fromarray((make_test_image(16, 16) * 255 + 0.5).astype(np.uint8)).save(path)
    return path


def test_grid_is_adam_row_plus_muon_grid_log_spaced_and_random_is_reproducible():
    cfg = SweepConfig(grid="3x2", lr_range=(1e-4, 1e-2), muon_lr_range=(1e-2, 1.0))
    points = trial_points(cfg)
    adam = [p for p in points if p["optimizer"] == "adam"]
    muon = [p for p in points if p["optimizer"] == "muon"]
    np.testing.assert_allclose([p["lr"] for p in adam], [1e-4, 1e-3, 1e-2], rtol=1e-12)
    assert all(p["muon_lr"] is None for p in adam)
    assert len(muon) == 6
    np.testing.assert_allclose(sorted({p["muon_lr"] for p in muon}), [1e-2, 1.0], rtol=1e-12)
    assert [p["index"] for p in points] == list(range(9))
    assert len(trial_points(SweepConfig(grid="2", optimizers=("muon",)))) == 4

    rnd = SweepConfig(search="random", random_trials=5, lr_range=(1e-4, 1e-2), sweep_seed=3)
    drawn = trial_points(rnd)
    assert drawn == trial_points(rnd) and len(drawn) == 10
    assert all(1e-4 <= p["lr"] <= 1e-2 for p in drawn)
    assert all(1e-2 <= p["muon_lr"] <= 1.0 for p in drawn if p["optimizer"] == "muon")
    for bad in (SweepConfig(grid="3by3"), SweepConfig(lr_range=(1e-2, 1e-4)), SweepConfig(max_concurrent=0)):
        with pytest.raises(ValueError):
            bad.check()


def test_sweep_flags_and_task_flags_share_one_command_line(png):
    task, sweep = sweep_parse(
        "image", ["--image", str(png), *TINY, "--grid", "2x3", "--lr-range", "1e-3", "1e-1", "--asha"]
    )
    assert isinstance(task, ImageTask) and task.fit.steps == 30 and task.field.width == 16
    assert sweep.grid_shape() == (2, 3) and sweep.lr_range == (1e-3, 1e-1) and sweep.asha


def test_trial_is_the_cli_fit_and_a_diverging_trial_is_diverged(png):
    base = fit_parse("image", ["--image", str(png), *TINY, "--no-progress"])
    signal = base.signal()
    reports = []
    ok = run_trial({"optimizer": "muon", "lr": 3e-3, "muon_lr": 0.05}, base, signal, report=reports.append)
    direct = fit_one(signal, trial_config(base, {"optimizer": "muon", "lr": 3e-3, "muon_lr": 0.05}), "muon")
    assert ok["status"] == "ok" and ok["step"] == 30
    assert ok["psnr"] == pytest.approx(direct.metrics["psnr"], abs=1e-4)
    # every evaluation but the last is reported while fitting (what ASHA decides on)
    assert [r["step"] for r in reports] == [10, 20] and all(r["status"] == "running" for r in reports)
    assert reports[1]["psnr"] == pytest.approx(direct.history[1]["psnr"], abs=1e-4)

    bad = run_trial({"optimizer": "adam", "lr": 1e30, "muon_lr": None}, base, signal)
    assert bad["status"] == "diverged" and "loss became" in bad["error"]
    assert bad["psnr"] == -math.inf  # ranked last by Tune's scheduler and never chosen as best
    assert metric_mode(signal) == "max"


def test_preset_round_trip_through_muon_fit(tmp_path, png, capsys):
    cfg = fit_parse(
        "image",
        ["--image", str(png), "--arch", "siren", "--omega", "25", "--lr", "2e-3", "--muon-lr", "0.07"]
        + ["--steps", "123", "--batch-size", "50", "--downscale", "2", "--run-name", "x"],
    )
    path = tmp_path / "preset.json"
    save_preset(path, "image", cfg, "muon", source={"psnr": 30.0})
    loaded = fit_parse("image", ["--preset", str(path)])
    assert loaded.field == cfg.field and loaded.fit == cfg.fit and loaded.data == cfg.data
    assert loaded.optim == cfg.optim and loaded.run_name is None  # run-only fields are not saved
    over = fit_parse("image", [f"--preset={path}", "--steps", "7", "--optimizer", "adam"])
    assert over.fit.steps == 7 and over.optim.optimizer == "adam" and over.optim.muon_lr == 0.07
    # --preset is one of the parse's own options: tyro reads, checks and lists it with the rest
    with pytest.raises(SystemExit) as exit_:
        fit_main("image", ["--steps", "3", "--preset"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.startswith("error: ") and "--preset" in err and err.count("\n") == 1

    data = json.loads(path.read_text())
    data["config"]["fit"]["stepz"] = 1
    (tmp_path / "typo.json").write_text(json.dumps(data))
    (tmp_path / "other.json").write_text(json.dumps({**json.loads(path.read_text()), "task": "audio"}))
    for name, message in (
        ("typo.json", "unknown setting"),
        ("other.json", "for task 'audio'"),
        ("nope", "not found"),
    ):
        with pytest.raises(SystemExit) as exit_:
            fit_main("image", ["--preset", str(tmp_path / name)])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1
    with pytest.raises(InputError, match="fit.steps must be int"):
        data["config"]["fit"] = {"steps": "many"}
        (tmp_path / "bad.json").write_text(json.dumps(data))
        load_preset(tmp_path / "bad.json", "image", ImageTask)


def test_table_best_and_heat_map_mark_diverged_and_stopped_trials(tmp_path):
    def rec(i, opt, lr, mlr, status, value):
        return TrialRecord(i, opt, lr, mlr, status, value, step=30, metrics={"ssim": 0.5}, error="")

    records = [
        rec(0, "adam", 1e-3, None, "ok", 20.0),
        rec(1, "adam", 1e-2, None, "diverged", -math.inf),
        rec(2, "muon", 1e-3, 0.1, "ok", 25.0),
        rec(3, "muon", 1e-2, 0.1, "stopped", 26.0),  # stopped early: never the best
        rec(4, "muon", 1e-3, 1.0, "error", math.nan),
        rec(5, "muon", 1e-2, 1.0, "ok", 24.0),
    ]
    best = best_trials(records, "max")
    assert best["adam"].index == 0 and best["muon"].index == 2
    assert best_trials(records, "min")["muon"].index == 5
    heatmap(records, "psnr", "max", tmp_path / "heat.png", "test")
    with Image.open(tmp_path / "heat.png") as img:
        assert img.format == "PNG" and img.size[0] > img.size[1] > 100
    assert trial_table(records, "psnr", "max", "t").row_count == 6


# --- whole sweeps on a local Ray runtime (skipped without the [sweep] extra) ---------------------


@pytest.fixture(scope="module")
def ray_runtime():
    ray = pytest.importorskip("ray", reason="muon-sweep needs the [sweep] extra (ray[tune])")
    pytest.importorskip("ray.tune", reason="muon-sweep needs the [sweep] extra (ray[tune])")
    from muon_nerf.sweep.runner import start_local_ray

    start_local_ray(2)  # muon-sweep's own start, with its retries on a loaded machine
    yield ray
    ray.shutdown()


def test_local_ray_start_retries_a_missed_start_up_window_then_says_so(monkeypatch):
    """Ray gives its node 30 s to register and raises a bare Exception when a loaded machine
    misses it: muon-sweep (and this suite) try again, then stop with one line; other errors pass."""
    pytest.importorskip("ray.tune", reason="muon-sweep needs the [sweep] extra (ray[tune])")
    from muon_nerf.sweep import runner

    calls, shutdowns = [], []
    outcomes: list = []

    def fake_init(**kwargs):
        calls.append(kwargs)
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    monkeypatch.setattr(runner.ray, "init", fake_init)
    monkeypatch.setattr(runner.ray, "shutdown", lambda: shutdowns.append(1))
    missed = Exception("The current node timed out during startup. This could happen because …")
    outcomes[:] = [missed, missed, None]
    runner.start_local_ray(2)
    assert len(calls) == 3 and len(shutdowns) == 2 and calls[-1]["num_cpus"] == 2
    calls.clear()
    outcomes[:] = [missed] * runner.RAY_START_TRIES
    with pytest.raises(InputError, match="did not start within its 30 s window in 3 tries") as err:
        runner.start_local_ray(2)
    assert "\n" not in str(err.value) and len(calls) == runner.RAY_START_TRIES
    outcomes[:] = [ValueError("num_cpus must be positive")]
    with pytest.raises(ValueError, match="num_cpus"):
        runner.start_local_ray(-1)


def _rows(run_dir) -> list[dict]:
    with open(run_dir / "trials.csv") as f:
        return list(csv.DictReader(f))


def test_grid_sweep_writes_table_presets_and_heat_map(ray_runtime, png, tmp_path):
    from muon_nerf.sweep.cli import main
    from muon_nerf.sweep.runner import closing_note

    args = ["--image", str(png), *TINY, "--grid", "2x2", "--lr-range", "1e-3", "1e-2"]
    result = main("image", args + ["--muon-lr-range", "1e-2", "1e-1", "--output-dir", str(tmp_path)])
    run_dir = result.run_dir
    rows = _rows(run_dir)
    assert len(rows) == 6 and all(r["status"] == "ok" for r in rows)
    assert sorted({r["optimizer"] for r in rows}) == ["adam", "muon"]
    with Image.open(run_dir / "heatmap.png") as img:
        assert img.format == "PNG"
    summary = json.loads((run_dir / "sweep.json").read_text())
    assert len(summary["trials"]) == 6 and summary["concurrency"] == 2

    for opt in ("adam", "muon"):
        best_row = max((r for r in rows if r["optimizer"] == opt), key=lambda r: float(r["psnr"]))
        cfg = fit_parse("image", ["--preset", str(run_dir / f"preset-{opt}.json")])
        assert cfg.optim.optimizer == opt and cfg.optim.lr == pytest.approx(float(best_row["lr"]))
        if opt == "muon":
            assert cfg.optim.muon_lr == pytest.approx(float(best_row["muon_lr"]))
        # The preset reproduces its trial: same seed, same data, same fit function.
        rerun = fit_one(cfg.signal(), trial_config(cfg, {"optimizer": opt, "lr": cfg.optim.lr}), opt)
        assert rerun.metrics["psnr"] == pytest.approx(float(best_row["psnr"]), abs=0.05)

    # `muon-fit image --preset FILE` runs with the sweep's preset (the hint the sweep prints)
    preset = run_dir / "preset-muon.json"
    assert f"muon-fit image --preset {preset}" in closing_note("image", result)
    fit_main("image", ["--preset", str(preset), "--output-dir", str(tmp_path / "fit"), "--run-name", "p"])
    metrics = json.loads((tmp_path / "fit" / "image" / "p" / "metrics.json").read_text())
    best = result.best["muon"]
    assert metrics["optimizer"] == "muon" and metrics["config"]["optim"]["lr"] == pytest.approx(best.lr)
    assert metrics["config"]["optim"]["muon_lr"] == pytest.approx(best.muon_lr)
    assert metrics["metrics"]["psnr"] == pytest.approx(best.value, abs=0.05)


def test_diverging_trials_are_recorded_diverged_and_the_sweep_finishes(ray_runtime, png, tmp_path):
    from muon_nerf.sweep.cli import main

    args = ["--image", str(png), *TINY, "--optimizers", "adam", "--grid", "2x1", "--lr-range", "1e-3", "1e30"]
    result = main("image", args + ["--asha", "--output-dir", str(tmp_path), "--run-name", "div"])
    by_lr = {r.lr: r for r in result.records}
    assert by_lr[1e30].status == "diverged" and "loss became" in by_lr[1e30].error
    assert by_lr[1e-3].status == "ok" and result.best["adam"] is by_lr[1e-3]
    rows = _rows(tmp_path / "image" / "div")
    assert {r["status"] for r in rows} == {"ok", "diverged"}
    assert (tmp_path / "image" / "div" / "preset-adam.json").is_file()
    assert (tmp_path / "image" / "div" / "heatmap.png").is_file()


SDF_TINY = ["--num-surface", "500", "--num-near", "1000", "--num-uniform", "500", "--eval-resolution", "16"]
SDF_TINY += ["--eval-volume-points", "500", "--surface-points", "500", "--render-size", "32"]
SDF_TINY += ["--steps", "20", "--batch-size", "256", "--width", "16", "--num-layers", "3"]
SDF_TINY += ["--eval-every", "10", "--rank-every", "10", "--no-progress"]


def test_sdf_sweep_preset_runs_with_muon_sdf_fit(ray_runtime, tmp_path):
    """`muon-sweep sdf` → its preset-muon.json → `muon-sdf fit --preset FILE` (issue 11's round trip)."""
    trimesh = pytest.importorskip("trimesh", reason="muon-sweep sdf needs the [sdf] extra")
    for module in ("mcubes", "open3d"):
        pytest.importorskip(module, reason="muon-sweep sdf needs the [sdf] extra")
    from muon_nerf.sdf.cli import main as sdf_main
    from muon_nerf.sweep.cli import main
    from muon_nerf.sweep.runner import closing_note

    mesh = tmp_path / "sphere.ply"
    trimesh.creation.icosphere(subdivisions=3, radius=0.5).export(mesh)
    args = ["--mesh", str(mesh), *SDF_TINY, "--grid", "1", "--lr-range", "1e-3", "1e-2"]
    result = main("sdf", args + ["--muon-lr-range", "0.01", "0.05", "--output-dir", str(tmp_path / "sweep")])
    assert sorted(r.status for r in result.records) == ["ok", "ok"] and result.mode == "min"
    preset = result.run_dir / "preset-muon.json"
    assert json.loads(preset.read_text())["task"] == "sdf"
    assert f"muon-sdf fit --preset {preset}" in closing_note("sdf", result)

    results = sdf_main(
        "fit", ["--preset", str(preset), "--output-dir", str(tmp_path / "fit"), "--run-name", "p"]
    )
    best = result.best["muon"]
    metrics = json.loads((tmp_path / "fit" / "sdf" / "p" / "metrics.json").read_text())
    assert metrics["optimizer"] == "muon" and metrics["config"]["data"]["mesh"] == str(mesh)
    assert metrics["config"]["optim"]["lr"] == pytest.approx(best.lr)
    assert metrics["config"]["optim"]["muon_lr"] == pytest.approx(best.muon_lr)
    assert metrics["config"]["fit"]["steps"] == 20 and metrics["config"]["field"]["width"] == 16
    # the same seed, data and fit: the preset reproduces its trial
    assert results["muon"].metrics["chamfer_l1_x1e3"] == pytest.approx(best.value, rel=1e-3)
    for name in ("mesh.ply", "field.pt", "normalization.json"):
        assert (tmp_path / "fit" / "sdf" / "p" / name).is_file()


SIGNALS = [
    (signal.SIGINT, 130, "interrupted"),
    (signal.SIGTERM, 143, "terminated"),
    (signal.SIGHUP, 129, "stopped by SIGHUP"),
]
MOMENTS = {
    # the driver's core worker has started: ray.init is in its last part, where its fatal-signal
    # handler takes SIGTERM (and arms an abort) and a stop leaves native threads behind
    "in ray.init": "python-core-driver-*_{pid}.log",
    # a worker of the sweep's job (a trial; Ray's pre-started workers have no job) has started:
    # the driver is in tuner.fit
    "in the trials": "worker-*-01000000-*.out",
}


def _wait_for_file(root: Path, pattern: str, proc: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not any(root.glob(f"session_*/logs/{pattern}")):
        assert proc.poll() is None, f"muon-sweep ended before {pattern} appeared: {proc.communicate()}"
        assert time.monotonic() < deadline, f"no {pattern} under {root} within {seconds} s"
        time.sleep(0.02)


@pytest.mark.parametrize("moment", list(MOMENTS))
@pytest.mark.parametrize("sig, code, word", SIGNALS)
def test_a_signal_during_a_sweep_ends_with_one_line_and_writes_nothing(
    png, tmp_path, sig, code, word, moment
):
    """Tune's own Ctrl-C handler would end the run as if it had succeeded, Ray's SIGTERM handler
    dumps a stack and aborts the process 3 s later, and a stop in the middle of ray.init leaves
    threads that crash the interpreter's teardown: the status and the last line are ours anyway.
    The signal lands at a moment read from the run's own Ray logs (a short RAY_TMPDIR: Ray's
    socket paths have a length limit)."""
    pytest.importorskip("ray.tune")
    ray_tmp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
    cmd = [sys.executable, "-c", "from muon_nerf.sweep.cli import entrypoint; entrypoint()", "image"]
    args = ["--image", str(png), "--width", "8", "--steps", "100000", "--grid", "1", "--num-cpus", "1"]
    proc = subprocess.Popen(
        [*cmd, *args, "--output-dir", str(tmp_path / "out")],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200", "RAY_TMPDIR": str(ray_tmp), "TMPDIR": str(ray_tmp)},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # pytest may run in the background
    )
    try:
        _wait_for_file(ray_tmp / "ray", MOMENTS[moment].format(pid=proc.pid), proc, 180)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        staging = list(ray_tmp.glob("muon-sweep-ray-*"))  # Tune's storage, a temporary folder
    finally:
        proc.kill()
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert proc.returncode == code, err
    last = [line for line in err.splitlines() if line.strip()][-1]
    assert last == f"{word}: the sweep stopped before its trials finished: nothing was written"
    assert "Traceback" not in err and not (tmp_path / "out").exists() and not staging
