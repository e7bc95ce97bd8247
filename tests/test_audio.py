"""Audio: SNR/SI-SNR against closed forms and torchmetrics, reading (mono mix, rate, bad files),
outputs, and a tiny fit through the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from muon_nerf.fit.metrics import si_snr, snr
from muon_nerf.runs.run import execute
from muon_nerf.signals.audio import AudioConfig, AudioSignal, read_audio
from muon_nerf.signals.cli import main, parse

ROOT = Path(__file__).resolve().parent.parent


def tone(n: int = 2000, rate: int = 8000) -> np.ndarray:
    t = np.arange(n) / rate
    return (0.5 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)


def test_snr_closed_form() -> None:
    """pred = 1.1·target: noise power is 1% of signal power → 20 dB; SI-SNR ignores the gain."""
    target = torch.from_numpy(tone()).double()
    assert snr(1.1 * target, target) == pytest.approx(20.0, abs=1e-9)
    assert si_snr(1.1 * target, target) > 150  # exact up to float64 round-off
    assert math.isinf(snr(target, target))


def test_si_snr_closed_form() -> None:
    """Noise orthogonal to a zero-mean target: SI-SNR = 10 log10(‖s‖² / ‖n‖²), any gain, any offset."""
    n = 1000
    t = torch.arange(n, dtype=torch.float64)
    target = torch.sin(2 * math.pi * 5 * t / n)
    noise = 0.1 * torch.cos(2 * math.pi * 5 * t / n)
    assert si_snr(3.0 * (target + noise) + 0.7, target) == pytest.approx(20.0, abs=1e-9)


def test_si_snr_matches_torchmetrics() -> None:
    audio = pytest.importorskip("torchmetrics.functional.audio", reason="the reference comes with [dev]")
    scale_invariant_signal_noise_ratio = audio.scale_invariant_signal_noise_ratio

    gen = torch.Generator().manual_seed(0)
    for _ in range(3):
        target = torch.randn(4096, generator=gen, dtype=torch.float64)
        pred = 0.8 * target + 0.3 * torch.randn(4096, generator=gen, dtype=torch.float64) + 0.1
        assert si_snr(pred, target) == pytest.approx(
            float(scale_invariant_signal_noise_ratio(pred, target)), abs=1e-6
        )


def test_stereo_is_averaged_with_warning_and_rate_kept(tmp_path: Path, capsys) -> None:
    left, right = tone(), 0.5 * tone()
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], 1), 22050, subtype="PCM_16")
    samples, rate, channels = read_audio(path)
    assert rate == 22050 and channels == 2
    assert np.abs(samples - (left + right) / 2).max() < 2e-4  # 16-bit quantization
    assert "2 channels" in capsys.readouterr().err


def test_coordinates_span_the_scale_and_clip_options(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    sf.write(path, tone(8000), 8000)
    sig = AudioSignal.from_config(AudioConfig(audio=path, coordinate_scale=100, offset=0.25, duration=0.5))
    assert len(sig.coords) == 4000 and sig.rate == 8000
    assert float(sig.coords.min()) == -100 and float(sig.coords.max()) == 100
    assert float(sig.samples.abs().max()) == pytest.approx(1.0)  # normalized to peak 1


def test_save_writes_wav_at_input_rate_and_loudness(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    sf.write(path, tone(), 8000, subtype="FLOAT")
    sig = AudioSignal.from_config(AudioConfig(audio=path))
    sig.save(sig.values, tmp_path)
    data, rate = sf.read(tmp_path / "reconstruction.wav", dtype="float32")
    assert rate == 8000
    np.testing.assert_allclose(data, tone(), atol=1e-6)
    assert (tmp_path / "audio.png").stat().st_size > 0


def write_bad(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / f"{kind}.wav"
    if kind == "empty":
        sf.write(path, np.zeros(0, dtype=np.float32), 8000)
    elif kind == "silent":
        sf.write(path, np.zeros(500, dtype=np.float32), 8000)
    else:
        path.write_bytes(b"not a wav file")
    return path


@pytest.mark.parametrize(
    "kind, message", [("empty", "has 0 samples"), ("silent", "is silent"), ("garbage", "cannot read audio")]
)
def test_bad_audio_is_one_error_line(tmp_path: Path, kind: str, message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main("audio", ["--audio", str(write_bad(tmp_path, kind)), "--steps", "1", "--no-progress"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0]


def test_script_requires_audio_and_reports_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts/fit_audio.py"), "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --audio PATH is required (a WAV or any file soundfile reads)"


def test_compare_end_to_end_in_paper_flag_form(tmp_path: Path) -> None:
    """Paper flag spellings (``--muon_lr``, ``--lr``) work; both optimizers reduce the loss and
    write a WAV, the figure and metrics.json with SNR, SI-SNR and PSNR."""
    path = tmp_path / "tone.wav"
    sf.write(path, tone(2000), 8000)
    args = f"--audio {path} --steps 60 --width 64 --eval-every 10 --lr 1e-3 --muon_lr 1e-2 --compare"
    cfg = parse(
        "audio", [*args.split(), "--output-dir", str(tmp_path / "out"), "--run-name", "t", "--no-progress"]
    )
    assert cfg.optim.muon_lr == 1e-2
    results = execute(cfg)
    for name, res in results.items():
        assert res.history[-1]["loss"] < 0.5 * res.history[0]["loss"], name
        assert set(res.metrics) == {"snr", "si_snr", "psnr"}
        run = tmp_path / "out" / "audio" / "t" / name
        assert sf.info(run / "reconstruction.wav").samplerate == 8000
        assert (run / "audio.png").is_file()
        assert json.loads((run / "metrics.json").read_text())["metrics"]["snr"] == pytest.approx(
            res.metrics["snr"]
        )
