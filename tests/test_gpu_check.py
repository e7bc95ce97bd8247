"""``scripts/gpu_check.sh --dry-run``: every part of the GPU check runs at toy size on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_gpu_check_dry_run_writes_every_result(tmp_path):
    pytest.importorskip("nerfstudio", reason="the NeRF part needs the [nerf] extra")
    proc = _gpu_check("--dry-run", str(tmp_path))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "device.json",
        "gpu_check.log",
        "image_relu.json",
        "image_relu.png",
        "image_siren.json",
        "nerf",
        "ngp",
        "speed.json",
    ]
    image = json.loads((tmp_path / "image_relu.json").read_text())
    assert set(image["results"]) == {"adam", "muon"} and image["results"]["muon"]["metrics"]["psnr"] > 0
    speed = json.loads((tmp_path / "speed.json").read_text())
    assert speed["steps"][0]["ours_over_torch_optimizer"] > 0 and speed["loop_overhead"][0]["ratio"] > 0
    assert speed["ttq"]["adam_final_psnr"] > 0 and speed["steps"][0]["muon_over_adam_stream"] > 0
    assert "failed parts: 0" in (tmp_path / "gpu_check.log").read_text()
    nerf_files = sorted(p.name for p in (tmp_path / "nerf").iterdir())
    assert nerf_files == ["renders", "renders.png", "results.json", "results.md"]
    nerf = json.loads((tmp_path / "nerf" / "results.json").read_text())
    assert [(r["arch"], r["optimizer"]) for r in nerf["runs"]] == [("relu_pe", "adam"), ("relu_pe", "muon")]
    assert nerf["background_psnr"] > 0 and all(r["test_psnr"] > 0 for r in nerf["runs"])
    ngp = json.loads((tmp_path / "ngp" / "results.json").read_text())
    assert [(r["method"], r["optimizer"]) for r in ngp["runs"]] == [
        ("muon-ngp-adam", "adam"),
        ("muon-ngp", "muon"),
    ]
    assert ngp["runs"][1]["muon_step_share"] > 0  # the Muon step's share of training time


def test_gpu_check_only_refuses_unknown_parts(tmp_path):
    proc = _gpu_check("--dry-run", "--only", "nerf,bogus", str(tmp_path))
    assert proc.returncode == 2 and "--only takes speed, image, nerf, ngp; got bogus" in proc.stderr
