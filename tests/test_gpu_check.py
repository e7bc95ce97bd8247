"""``scripts/gpu_check.sh --dry-run``: every part of the GPU check runs at toy size on the CPU."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_check_dry_run_writes_every_result(tmp_path):
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts/gpu_check.sh"), "--dry-run", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "device.json",
        "gpu_check.log",
        "image_relu.json",
        "image_relu.png",
        "image_siren.json",
        "nerf.json",
        "speed.json",
    ]
    image = json.loads((tmp_path / "image_relu.json").read_text())
    assert set(image["results"]) == {"adam", "muon"} and image["results"]["muon"]["metrics"]["psnr"] > 0
    speed = json.loads((tmp_path / "speed.json").read_text())
    assert speed["steps"][0]["ours_over_torch_optimizer"] > 0 and speed["loop_overhead"][0]["ratio"] > 0
    assert speed["ttq"]["adam_final_psnr"] > 0 and speed["steps"][0]["muon_over_adam_stream"] > 0
    assert "failed parts: 0" in (tmp_path / "gpu_check.log").read_text()
    nerf = json.loads((tmp_path / "nerf.json").read_text())
    assert set(nerf["methods"]) == {"muon-nerf", "muon-nerf-adam"}
    assert all(m["psnr"] > 0 for m in nerf["methods"].values())
