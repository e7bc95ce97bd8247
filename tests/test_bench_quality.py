"""``scripts/bench_quality.py`` end to end at toy size: pairs, table, JSON and figure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import make_test_image

ROOT = Path(__file__).resolve().parent.parent


def test_bench_quality_writes_table_json_and_figure(tmp_path):
    images = []
    for seed in (0, 1):
        path = tmp_path / f"img{seed}.png"
        Image.fromarray((make_test_image(64, 64, seed=seed) * 255).astype(np.uint8)).save(path)
        images.append(str(path))
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts/bench_quality.py"), "--profile", "cpu", "--images", *images,
         "--archs", "relu", "gauss", "--tasks", "--extra=--steps 4 --width 8 --eval-every 4",
         "--output-dir", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert results["complete"] and len(results["runs"]) == 4
    rows = {row["arch"]: row for row in results["summary"]}
    assert set(rows) == {"relu", "gauss"} and all(row["n"] == 2 for row in rows.values())
    for row in rows.values():
        assert np.allclose(row["gain"], np.subtract(row["muon"], row["adam"]))
    for run in results["runs"]:  # the cpu profile downscales ×4: 16×16 RGB values over the field's parameters
        assert run["values_per_param"] == 16 * 16 * 3 / run["runs"]["adam"]["num_params"]
    table = (out / "results.md").read_text()
    assert "| image | relu | 2 |" in table and "±" in table
    with Image.open(out / "quality.png") as figure:
        assert figure.format == "PNG" and min(figure.size) > 200

    # --resume keeps the four pairs and runs only the hash ones (with the profile's hash flags)
    bench = [sys.executable, str(ROOT / "scripts/bench_quality.py"), "--images", *images, "--tasks"]
    proc = subprocess.run(
        [*bench, "--archs", "relu", "gauss", "hash", "--extra=--steps 4 --width 8 --eval-every 4",
         "--resume", "--output-dir", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "4 pairs kept" in proc.stdout and "2 to run" in proc.stdout
    resumed = json.loads((out / "results.json").read_text())
    assert resumed["complete"] and [r["config"]["field"]["arch"] for r in resumed["runs"]] == [
        "relu", "gauss", "hash", "relu", "gauss", "hash",
    ]  # fmt: skip
    assert [r for r in resumed["runs"] if r["config"]["field"]["arch"] != "hash"] == [
        {"hardware": results["hardware"], **r} for r in results["runs"]
    ]
    hash_run = resumed["runs"][2]
    assert hash_run["config"]["field"]["encoding"]["hash"]["hash_levels"] == 8
    assert hash_run["config"]["optim"]["encoding_lr"] == 1e-2
    proc = subprocess.run(
        [*bench, "--profile", "paper", "--resume", "--output-dir", str(out)], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "holds profile cpu" in proc.stderr
