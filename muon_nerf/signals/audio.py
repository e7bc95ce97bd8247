"""Audio fitting: a mono waveform as a function of time, coordinates scaled to [-s, s] (SIREN).

Why the scaling: SIREN's first layer sees ``ω0·W·t``; with ``t`` spread over [-100, 100] the
same ω0 = 30 as for images reaches the kHz frequencies of audio (the paper's setting).
"""

from __future__ import annotations

import dataclasses
import io
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from muon_nerf.fields import FieldConfig
from muon_nerf.fields.activations import ActivationConfig
from muon_nerf.fit.errors import InputError
from muon_nerf.fit.loop import FitConfig
from muon_nerf.fit.metrics import psnr, si_snr, snr
from muon_nerf.fit.signal import Batch, Panel, Signal
from muon_nerf.optim import OptimConfig
from muon_nerf.runs.io import atomic_write_bytes
from muon_nerf.runs.plotting import draw_panel, new_figure, save_figure
from muon_nerf.runs.task import Lrs, TaskConfig, unset_lrs

SPECTROGRAM_FLOOR_DB = 80.0


def read_audio(path: Path, offset: float = 0.0, duration: float | None = None) -> tuple[np.ndarray, int, int]:
    """``(samples, sample_rate, channels)``: float32 mono (channels averaged), the file's rate kept.

    ``offset``/``duration`` (seconds) cut a clip, for CPU-sized runs.
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise InputError(f"audio file not found: {path}")
    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise InputError(f"cannot read audio {path}: {err}") from None
    channels = data.shape[1]
    if channels > 1:
        print(f"warning: {path} has {channels} channels; fitting their average (mono)", file=sys.stderr)
    samples = data.mean(axis=1)
    if not (0 <= offset < math.inf) or (duration is not None and not 0 < duration < math.inf):
        raise InputError(f"--offset must be >= 0 and --duration > 0 (finite), got {offset} and {duration}")
    start = int(round(offset * rate))
    stop = None if duration is None else start + int(round(duration * rate))
    samples = samples[start:stop]
    if samples.size < 2:
        raise InputError(f"audio {path} has {samples.size} samples (after --offset/--duration); need >= 2")
    if not np.isfinite(samples).all():
        raise InputError(f"audio {path} contains NaN or infinite samples")
    if not np.abs(samples).max() > 0:
        raise InputError(f"audio {path} is silent (every sample is 0): nothing to fit")
    return samples.astype(np.float32), int(rate), channels


def time_coords(num: int, scale: float) -> Tensor:
    """``(num, 1)`` sample times spread uniformly over [-scale, scale]."""
    return torch.linspace(-scale, scale, num).unsqueeze(-1)


def stft_magnitude(wave: Tensor, n_fft: int = 512) -> Tensor:
    """``|STFT|`` (frequency, frame) with ~256 frames whatever the length, so the panel is legible."""
    wave = wave.detach().float().cpu().flatten()
    n_fft = min(n_fft, 1 << (len(wave).bit_length() - 1))
    hop = max(1, len(wave) // 256)
    return torch.stft(wave, n_fft, hop_length=hop, window=torch.hann_window(n_fft), return_complex=True).abs()


def spectrogram_db(wave: Tensor, reference: float) -> np.ndarray:
    """Log-magnitude spectrogram for display in [0, 1] (0 = ``SPECTROGRAM_FLOOR_DB`` below
    ``reference``, the ground truth's peak, so fit and truth share one scale); low frequencies at
    the bottom."""
    db = 20 * torch.log10(stft_magnitude(wave) / reference + 1e-12)
    return ((db.clamp(-SPECTROGRAM_FLOOR_DB, 0) + SPECTROGRAM_FLOOR_DB) / SPECTROGRAM_FLOOR_DB).numpy()[::-1]


@dataclass
class AudioConfig:
    """The waveform to fit."""

    audio: Path | None = None
    """WAV/FLAC/OGG… (anything soundfile reads); stereo is averaged to mono."""
    coordinate_scale: float = 100.0
    """Time coordinates span [-s, s], as in SIREN and the paper."""
    offset: float = 0.0
    """Start of the clip to fit, in seconds."""
    duration: float | None = None
    """Length of the clip in seconds; None = to the end. Shorter clips for CPU-sized runs."""
    normalize: bool = True
    """Scale to peak amplitude 1 (SIREN does); the saved WAV is scaled back."""


class AudioSignal(Signal):
    task = "audio"
    primary_metric = "snr"

    def __init__(
        self,
        samples: Tensor,
        rate: int,
        coordinate_scale: float = 100.0,
        source: str = "",
        gain: float = 1.0,
        channels: int = 1,
    ) -> None:
        if not 0 < coordinate_scale < math.inf:
            raise InputError(f"--coordinate-scale must be finite and > 0, got {coordinate_scale}")
        self.samples = samples.flatten().float()
        self.coords = time_coords(len(self.samples), coordinate_scale)
        self.values = self.samples.unsqueeze(-1)
        self.train = Batch(self.coords, self.values)
        self.out_dim = 1
        self.rate, self.coordinate_scale = rate, coordinate_scale
        self.source, self.gain, self.channels = source, gain, channels
        self.stft_reference = float(stft_magnitude(self.samples).max()) or 1.0

    @classmethod
    def from_config(cls, cfg: AudioConfig) -> AudioSignal:
        if cfg.audio is None:
            raise InputError("--audio PATH is required (a WAV or any file soundfile reads)")
        samples, rate, channels = read_audio(cfg.audio, cfg.offset, cfg.duration)
        gain = float(np.abs(samples).max()) if cfg.normalize else 1.0
        return cls(
            torch.from_numpy(samples / gain), rate, cfg.coordinate_scale, str(cfg.audio), gain, channels
        )

    def evaluate(self, prediction: Tensor) -> dict[str, float]:
        pred = prediction.flatten()
        return {
            "snr": snr(pred, self.samples),
            "si_snr": si_snr(pred, self.samples),
            "psnr": psnr(pred.clamp(-1, 1), self.samples, data_range=2.0),
        }

    def panels(self, prediction: Tensor | None) -> list[Panel]:
        if prediction is None:
            return [
                ("ground truth waveform", self.samples.cpu().numpy(), None),
                ("ground truth spectrogram", spectrogram_db(self.samples, self.stft_reference), "magma"),
            ]
        pred = prediction.flatten()
        return [
            ("fitted waveform", pred.cpu().numpy(), None),
            ("error (fit − truth)", (pred - self.samples).cpu().numpy(), None),
            ("fitted spectrogram", spectrogram_db(pred, self.stft_reference), "magma"),
        ]

    def save(self, prediction: Tensor, run_dir: Path) -> None:
        """``reconstruction.wav`` (float32, the input's rate and loudness) and ``audio.png``."""
        import soundfile as sf

        buf = io.BytesIO()
        wave = (prediction.flatten() * self.gain).cpu().numpy().astype(np.float32)
        sf.write(buf, wave, self.rate, format="WAV", subtype="FLOAT")
        atomic_write_bytes(run_dir / "reconstruction.wav", buf.getvalue())
        fit = self.panels(prediction)
        truth = dict(zip((0, 2), self.panels(None), strict=True))  # align with the fit row
        fig, axes = new_figure(2, 3, size=(12, 5))
        axes[0, 1].axis("off")
        for j, panel in truth.items():
            draw_panel(axes[0, j], *panel)
        for j, panel in enumerate(fit):
            draw_panel(axes[1, j], *panel)
        save_figure(fig, run_dir / "audio.png")

    def describe(self) -> dict:
        return {
            "task": self.task,
            "source": self.source,
            "samples": len(self.samples),
            "sample_rate": self.rate,
            "seconds": len(self.samples) / self.rate,
            "channels_averaged": self.channels,
            "coordinate_scale": self.coordinate_scale,
            "gain": self.gain,
        }


@dataclass
class AudioTask(TaskConfig):
    """Fit a waveform (give it with --audio PATH). Defaults: the paper's audio setting."""

    data: AudioConfig = dataclasses.field(default_factory=AudioConfig)
    field: FieldConfig = dataclasses.field(
        default_factory=lambda: FieldConfig(
            arch="siren", num_layers=5, width=256, activation=ActivationConfig(omega=30.0), fold_omega=False
        )
    )
    optim: OptimConfig = dataclasses.field(default_factory=unset_lrs)
    """Optimizer flags, with the paper's audio lrs, tuned for SIREN's usual (unfolded) weights.
    So --fold-omega is off here: folded, Muon's step is ω0 = 30 times smaller (use --muon-lr 0.03)."""
    fit: FitConfig = dataclasses.field(
        default_factory=lambda: FitConfig(steps=5000, scheduler="cosine", eta_min=0.0)
    )

    default_lrs: ClassVar[Lrs] = Lrs(lr=1e-4, muon_lr=1e-3)  # the paper's audio lrs

    def signal(self) -> AudioSignal:
        return AudioSignal.from_config(self.data)
