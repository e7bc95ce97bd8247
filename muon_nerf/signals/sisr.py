"""Single-image super-resolution: the field is the high-resolution image, observed only through
an antialiased ×s bicubic downsampling.

The loss compares the field's downsampled image with the downsampled ground truth; metrics compare
the field's full-resolution image with the ground truth, next to plain bicubic upsampling of the
low-resolution input (``bicubic_psnr``/``bicubic_ssim``): the baseline an INR has to beat.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from muon_nerf.fields import FieldConfig
from muon_nerf.fields.encodings import EncodingConfig, FourierFeaturesConfig
from muon_nerf.fit.errors import InputError
from muon_nerf.fit.loop import FitConfig
from muon_nerf.fit.metrics import psnr, ssim
from muon_nerf.fit.signal import Batch, Panel
from muon_nerf.runs.io import atomic_write_bytes
from muon_nerf.runs.plotting import png_bytes
from muon_nerf.runs.task import Lrs, TaskConfig
from muon_nerf.signals.image import (
    ImageConfig,
    ImageSignal,
    bundled_image,
    check_metric_size,
    downscale,
    error_panel,
    read_image,
)


def bicubic_resize(image: Float[Tensor, "h w c"], size: tuple[int, int]) -> Float[Tensor, "H W c"]:
    """Antialiased bicubic resize (Keys a = -0.5, filter widened when shrinking): the same
    operator as PIL's ``Image.resize(..., BICUBIC)``, differentiable."""
    x = image.permute(2, 0, 1).unsqueeze(0)
    out = F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False)
    return out[0].permute(1, 2, 0)


@dataclass
class SISRConfig(ImageConfig):
    """The high-resolution image and the super-resolution factor."""

    scale: int = 4
    """Super-resolution factor: the field sees the image downsampled ×scale."""


class SISRSignal(ImageSignal):
    task = "sisr"
    pointwise = False

    def __init__(
        self, image: Tensor, sr_scale: int = 4, source: str = "", bits: int = 8, scale: int = 1
    ) -> None:
        """``image`` is the high-resolution ground truth ``(H, W, C)``; ``scale`` its CPU downscale."""
        h, w = image.shape[:2]
        if sr_scale < 2:
            raise InputError(f"--scale must be an integer >= 2, got {sr_scale}")
        if h % sr_scale or w % sr_scale:
            raise InputError(
                f"--scale {sr_scale} does not divide the {h}×{w} image (after --downscale {scale}); "
                f"use a scale that divides both sides or crop the image"
            )
        super().__init__(image, source, bits, scale)
        self.sr_scale = sr_scale
        self.low = self.downsample(image)
        self.train = Batch(self.coords, self.low)
        self.bicubic = bicubic_resize(self.low, (h, w)).clamp(0, 1)
        self.baseline = {
            "bicubic_psnr": psnr(self.bicubic, self.image),
            "bicubic_ssim": ssim(self.bicubic, self.image),
        }

    @classmethod
    def from_config(cls, cfg: SISRConfig) -> SISRSignal:
        path = cfg.image or bundled_image()
        arr, bits = read_image(path, cfg.grayscale)
        image = downscale(torch.from_numpy(arr), cfg.downscale)
        check_metric_size(image, str(path), cfg.downscale)
        return cls(image, cfg.scale, str(path), bits, cfg.downscale)

    def downsample(self, image: Float[Tensor, "h w c"]) -> Float[Tensor, "h/s w/s c"]:
        return bicubic_resize(image, (self.height // self.sr_scale, self.width // self.sr_scale))

    def forward(self, prediction: Tensor) -> Tensor:
        """The field's high-resolution image → its ×scale downsampling."""
        return self.downsample(prediction.reshape(self.height, self.width, self.channels))

    def panels(self, prediction: Tensor | None) -> list[Panel]:
        gt = self.image.cpu().numpy()
        if prediction is None:
            bicubic = self.bicubic.cpu().numpy()
            return [
                ("ground truth", gt, None),
                (f"input (÷{self.sr_scale})", self.low.clamp(0, 1).cpu().numpy(), None),
                (f"bicubic (PSNR {self.baseline['bicubic_psnr']:.2f})", bicubic, None),
                error_panel(bicubic, gt),
            ]
        return super().panels(prediction)

    def save(self, prediction: Tensor, run_dir: Path) -> None:
        """``reconstruction.png``, the ``lowres.png`` input and the ``bicubic.png`` baseline."""
        super().save(prediction, run_dir)
        atomic_write_bytes(run_dir / "lowres.png", png_bytes(self.low.cpu().numpy()))
        atomic_write_bytes(run_dir / "bicubic.png", png_bytes(self.bicubic.cpu().numpy()))

    def describe(self) -> dict:
        return {
            **super().describe(),
            "sr_scale": self.sr_scale,
            "low_res_shape": list(self.low.shape),
            **self.baseline,
        }


@dataclass
class SISRTask(TaskConfig):
    """Single-image super-resolution: the field is trained on the image downsampled ×--scale and
    scored at full resolution. Defaults: the paper's SISR setting."""

    data: SISRConfig = dataclasses.field(default_factory=SISRConfig)
    field: FieldConfig = dataclasses.field(
        default_factory=lambda: FieldConfig(
            arch="relu_ff",
            num_layers=4,
            width=256,
            encoding=EncodingConfig(fourier=FourierFeaturesConfig(ff_features=128, ff_sigma=10.0)),
        )
    )
    fit: FitConfig = dataclasses.field(default_factory=lambda: FitConfig(steps=2000, scheduler="cosine"))

    default_lrs: ClassVar[Lrs] = Lrs(lr=1e-2, muon_lr=0.1)  # the paper's SISR lrs

    def signal(self) -> SISRSignal:
        return SISRSignal.from_config(self.data)
