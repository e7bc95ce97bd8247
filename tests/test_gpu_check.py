"""``scripts/gpu_check.sh --dry-run``: every part of the GPU check runs at toy size on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from muon_nerf.fit.metrics import psnr
from muon_nerf.signals.image import read_image

ROOT = Path(__file__).resolve().parent.parent


def _gpu_check(*args: str) -> subprocess.CompletedProcess:
    """The script calls ``python3``: this interpreter's, as in an activated environment."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        ["bash", str(ROOT / "scripts/gpu_check.sh"), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def _black_psnr() -> float:
    """PSNR of an all-black prediction of the dry run's image (the bundled kodim01_96x64)."""
    image = torch.from_numpy(read_image(ROOT / "muon_nerf/assets/kodim01_96x64.png")[0])
    return psnr(torch.zeros_like(image), image)


def test_gpu_check_dry_run_writes_every_result(tmp_path):
    pytest.importorskip("nerfstudio", reason="the NeRF part needs the [nerf] extra")
    shipped = (ROOT / "muon_nerf/assets/tuned_lrs.json").read_bytes()
    proc = _gpu_check("--dry-run", str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "device.json",
        "gpu_check.log",
        "image_relu.json",
        "image_relu.png",
        "image_siren.json",
        "long",
        "long.tgz",
        "long_runs",
        "nerf",
        "ngp",
        "speed.json",
        "table",
        "table.tgz",
        "table_runs",
        "tune",
        "tune.tgz",
    ]
    # a few toy steps learn little, but a field that outputs zeros or NaN scores the black
    # image's PSNR or NaN: every fit must beat black by a margin
    floor = _black_psnr() + 1.5
    for arch in ("relu", "siren"):
        image = json.loads((tmp_path / f"image_{arch}.json").read_text())
        assert set(image["results"]) == {"adam", "muon"}
        assert all(r["metrics"]["psnr"] > floor for r in image["results"].values()), (arch, image["results"])
    speed = json.loads((tmp_path / "speed.json").read_text())
    assert speed["steps"][0]["ours_over_torch_optimizer"] > 0 and speed["loop_overhead"][0]["ratio"] > 0
    assert min(speed["ttq"]["adam_final_psnr"], speed["ttq"]["muon_final_psnr"]) > floor, speed["ttq"]
    assert speed["steps"][0]["muon_over_adam_stream"] > 0
    assert "failed parts: 0" in (tmp_path / "gpu_check.log").read_text()
    nerf_files = sorted(p.name for p in (tmp_path / "nerf").iterdir())
    assert nerf_files == ["renders", "renders.png", "results.json", "results.md"]
    nerf = json.loads((tmp_path / "nerf" / "results.json").read_text())
    assert [(r["arch"], r["optimizer"]) for r in nerf["runs"]] == [("relu_pe", "adam"), ("relu_pe", "muon")]
    # black renders of the white-background toy scene score ≈ 0 dB, NaN renders NaN
    assert 5 < nerf["background_psnr"] < 30 and all(r["test_psnr"] > 5 for r in nerf["runs"]), nerf["runs"]
    ngp = json.loads((tmp_path / "ngp" / "results.json").read_text())
    assert [(r["method"], r["optimizer"]) for r in ngp["runs"]] == [
        ("muon-ngp-adam", "adam"),
        ("muon-ngp", "muon"),
    ]
    assert ngp["runs"][1]["muon_step_share"] > 0  # the Muon step's share of training time
    # the long part: one process per run side by side, stopped by its rule, then one merged table
    long = json.loads((tmp_path / "long" / "results.json").read_text())
    assert [(r["arch"], r["optimizer"]) for r in long["runs"]] == [("relu_pe", "adam"), ("relu_pe", "muon")]
    # (a toy run may or may not gain 0.2 dB over 2 iterations: test_bench_nerf pins the rule down)
    assert all(r["stopped"] in ("converged", None) and r["test_psnr"] > 5 for r in long["runs"]), long["runs"]
    assert long["config"]["stop"] == {"gain": 0.2, "window": 2, "seconds": 300.0}
    # the tune part: its two processes shared the grid (one trial each) into one sweep
    sweep = json.loads((tmp_path / "tune" / "relu_pe-views2" / "sweep.json").read_text())
    assert sorted((t["optimizer"], t["status"]) for t in sweep["trials"]) == [("adam", "ok"), ("muon", "ok")]
    assert all(t["value"] > 5 for t in sweep["trials"]), sweep["trials"]
    # the table part: the tuned table remade from that sweep (into OUT, never the package's), then
    # one run per (arch, optimizer, seed) side by side, merged into one table
    tuned = json.loads((tmp_path / "table" / "tuned_lrs.json").read_text())
    assert [(r["task"], r["arch"]) for r in tuned["rows"]] == [("nerf", "relu_pe")], tuned
    assert (ROOT / "muon_nerf/assets/tuned_lrs.json").read_bytes() == shipped
    table = json.loads((tmp_path / "table" / "results.json").read_text())
    assert sorted((r["arch"], r["optimizer"], r["seed"]) for r in table["runs"]) == [
        ("relu_pe", "adam", 0),
        ("relu_pe", "muon", 0),
    ]
    assert all(r["test_psnr"] > 5 and r["curve"] for r in table["runs"]), table["runs"]
    row = tuned["rows"][0]  # the runs trained at that table's row (--tuned-table)
    assert [r["lrs"] for r in table["runs"]] == [
        {"fields": row["adam_lr"]},
        {"fields": row["muon_adam_lr"], "fields_muon": row["muon_lr"]},
    ], table["runs"]


def test_gpu_check_only_refuses_unknown_parts(tmp_path):
    proc = _gpu_check("--dry-run", "--only", "nerf,bogus", str(tmp_path))
    message = "--only takes speed, image, nerf, ngp, long, tune, table; got bogus"
    assert proc.returncode == 2 and message in proc.stderr


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("LONG_PROFILE", "tpu", "LONG_PROFILE takes cpu or gpu; got tpu"),
        ("LONG_ITERATIONS", "0", "LONG_ITERATIONS takes a positive whole number; got 0"),
        ("LONG_ITERATIONS", "2e4", "LONG_ITERATIONS takes a positive whole number; got 2e4"),
    ],
)
def test_gpu_check_refuses_bad_long_settings(tmp_path, monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    out = tmp_path / "out"
    proc = _gpu_check("--dry-run", "--only", "long", str(out))
    assert proc.returncode == 2 and f"error: {message}" in proc.stderr
    assert not out.exists()  # refused before any folder is made
