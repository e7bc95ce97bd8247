"""SISR: the downsampler against PIL and on constants, the bicubic baseline, bad input, and a tiny
Adam-vs-Muon run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from muon_nerf.fit.metrics import psnr
from muon_nerf.runs.run import execute
from muon_nerf.signals.cli import main, parse
from muon_nerf.signals.sisr import SISRSignal, bicubic_resize

ROOT = Path(__file__).resolve().parent.parent


def test_downsampler_keeps_constants() -> None:
    """Consistency of the forward operator: its weights sum to one, so a constant stays constant."""
    sig = SISRSignal(torch.full((32, 24, 3), 0.37), sr_scale=4)
    assert sig.low.shape == (8, 6, 3)
    torch.testing.assert_close(sig.low, torch.full((8, 6, 3), 0.37))
    torch.testing.assert_close(sig.forward(sig.values), sig.train.target)  # trained on the low-res image


@pytest.mark.parametrize("size", [(16, 24), (21, 30), (128, 192)])
def test_bicubic_matches_pil(size: tuple[int, int]) -> None:
    """Independent reference: PIL's antialiased BICUBIC resize (float mode), down and up."""
    x = np.random.default_rng(0).random((64, 96)).astype(np.float32)
    ref = np.asarray(Image.fromarray(x, mode="F").resize(size[::-1], Image.BICUBIC))
    ours = bicubic_resize(torch.from_numpy(x)[..., None], size)[..., 0].numpy()
    assert np.abs(ours - ref).max() < 1e-5


def test_bicubic_baseline_in_metrics() -> None:
    """The baseline is the clamped bicubic upsampling of the low-resolution input."""
    rng = np.random.default_rng(1)
    hr = torch.from_numpy(rng.random((24, 32, 3)).astype(np.float32))
    sig = SISRSignal(hr, sr_scale=2)
    expected = bicubic_resize(bicubic_resize(hr, (12, 16)), (24, 32)).clamp(0, 1)
    metrics = sig.evaluate(sig.values)
    assert metrics["psnr"] == float("inf")
    assert metrics["bicubic_psnr"] == pytest.approx(psnr(expected, hr))
    assert 0 < metrics["bicubic_ssim"] < 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--scale", "5"], "--scale 5 does not divide the 64×96 image"),
        (["--scale", "1"], "--scale must be an integer >= 2"),
        (["--downscale", "0"], "--downscale must be a positive integer"),
    ],
)
def test_bad_input_is_one_error_line(args: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main("sisr", [*args, "--steps", "1", "--no-progress"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0]


def test_script_reports_bad_input(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts/fit_sisr.py"), "--scale", "7", "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: --scale 7 does not divide")


def test_compare_adam_muon_end_to_end(tmp_path: Path) -> None:
    """Bundled 96×64 image, ×4: both losses fall and Muon fits the observed low-resolution image
    more closely than Adam. At this toy scale Muon's high-rank fit also adds unobserved high
    frequencies, so its full-resolution PSNR is *not* asserted to beat Adam's (see docs/signals.md)."""
    args = "--steps 60 --width 64 --ff-features 64 --ff-sigma 2.5 --eval-every 10 --compare"
    cfg = parse("sisr", [*args.split(), "--output-dir", str(tmp_path), "--run-name", "t", "--no-progress"])
    results = execute(cfg)
    for res in results.values():
        assert res.history[-1]["loss"] < 0.5 * res.history[0]["loss"]
        assert {"psnr", "ssim", "bicubic_psnr", "bicubic_ssim"} <= set(res.metrics)
        assert res.metrics["psnr"] > 12
    assert results["muon"].history[-1]["loss"] < results["adam"].history[-1]["loss"]
    run = tmp_path / "sisr" / "t"
    for name in ("adam", "muon"):
        assert {"reconstruction.png", "bicubic.png", "lowres.png", "metrics.json"} <= {
            p.name for p in (run / name).iterdir()
        }
    with Image.open(run / "muon" / "reconstruction.png") as img:
        assert img.size == (96, 64)
