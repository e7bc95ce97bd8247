"""CT reconstruction: the field is the image, the loss is on its parallel-beam sinogram.

Only the sinogram is observed (``projections`` angles, optionally with WIRE's photon + readout
noise); the image is recovered by fitting the field through the differentiable Radon transform.
Every evaluation also reports filtered back-projection (``fbp_psnr``/``fbp_ssim``), so a run
shows directly whether the INR beats the classical reconstruction from the same measurements.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from muon_nerf.fields import FieldConfig
from muon_nerf.fields.encodings import EncodingConfig, FourierFeaturesConfig
from muon_nerf.fit.loop import FitConfig
from muon_nerf.fit.memory import check_fits
from muon_nerf.fit.metrics import psnr, ssim
from muon_nerf.fit.signal import Batch, Panel
from muon_nerf.runs.io import atomic_write_bytes
from muon_nerf.runs.plotting import png_bytes
from muon_nerf.runs.task import Lrs, TaskConfig
from muon_nerf.signals.image import ImageSignal, check_metric_size, downscale, error_panel, read_image
from muon_nerf.signals.radon import (
    filtered_back_projection,
    poisson_gaussian_noise,
    radon,
    radon_bytes,
    radon_grid,
    uniform_angles,
)


def _rgb(gray: np.ndarray) -> np.ndarray:
    """``(H, W, 1)`` → ``(H, W, 3)`` so panels show [0, 1] on a fixed scale, not autoscaled."""
    return np.repeat(np.clip(gray, 0, 1), 3, axis=-1)


@dataclass
class CTConfig:
    """The slice to reconstruct and how its sinogram is measured."""

    image: Path | None = None
    """Ground-truth slice (8/16-bit grayscale; colour is converted to luma); default: skimage's
    400×400 Shepp–Logan phantom."""
    downscale: int = 1
    """Integer box-downscale factor for CPU-sized runs."""
    projections: int = 100
    """Number of projection angles, uniform over [0°, 180°)."""
    noise: bool = False
    """Add WIRE's noise to the sinogram: Poisson photon counts (--tau) plus Gaussian readout."""
    tau: float = 30.0
    """Photon count scale of the Poisson noise (WIRE: 30)."""
    readout_sigma: float = 2.0
    """Std of the Gaussian readout noise, in photon counts (WIRE: 2)."""
    noise_seed: int = 0
    """Seed of the measurement noise drawn with --noise (separate from --seed, which seeds the fit)."""


class CTSignal(ImageSignal):
    task = "ct"
    pointwise = False

    def __init__(
        self,
        image: Tensor,
        projections: int = 100,
        noise: tuple[float, float] | None = None,
        noise_seed: int = 0,
        source: str = "",
        bits: int = 8,
        scale: int = 1,
    ) -> None:
        """``image`` is ``(H, W, 1)`` in [0, 1]; ``noise`` is ``(tau, readout_sigma)`` or None."""
        if image.ndim != 3 or image.shape[-1] != 1:
            raise ValueError(f"CT needs a grayscale (H, W, 1) image, got shape {tuple(image.shape)}")
        super().__init__(image, source, bits, scale)
        self.angles = uniform_angles(projections)
        check_fits(
            radon_bytes(self.height, self.width, projections),
            f"--projections {projections} on a {self.height}×{self.width} slice (the Radon operator)",
            "use fewer --projections or a --downscale",
        )
        self.grid = radon_grid(self.height, self.width, self.angles)
        clean = radon(image[..., 0], self.grid)
        self.noise = noise
        if noise is not None:
            clean = poisson_gaussian_noise(clean, *noise, torch.Generator().manual_seed(noise_seed))
        self.sinogram = clean
        self.train = Batch(self.coords, self.sinogram)
        fbp = filtered_back_projection(self.sinogram, self.angles, self.height, self.width)
        self.fbp = torch.from_numpy(fbp).unsqueeze(-1).clamp(0, 1)
        self.baseline = {"fbp_psnr": psnr(self.fbp, self.image), "fbp_ssim": ssim(self.fbp, self.image)}

    @classmethod
    def from_config(cls, cfg: CTConfig) -> CTSignal:
        if cfg.image is None:
            from skimage.data import shepp_logan_phantom

            arr, bits, source = shepp_logan_phantom()[..., None].astype(np.float32), 8, "shepp_logan_phantom"
        else:
            arr, bits = read_image(cfg.image, grayscale=True)
            source = str(cfg.image)
        noise = (cfg.tau, cfg.readout_sigma) if cfg.noise else None
        image = downscale(torch.from_numpy(arr), cfg.downscale)
        check_metric_size(image, source, cfg.downscale)
        return cls(image, cfg.projections, noise, cfg.noise_seed, source, bits, cfg.downscale)

    def forward(self, prediction: Tensor) -> Tensor:
        """The field's image → its sinogram ``(angles, detector)``."""
        return radon(prediction.reshape(self.height, self.width), self.grid)

    def panels(self, prediction: Tensor | None) -> list[Panel]:
        gt = self.image.cpu().numpy()
        if prediction is None:
            fbp = self.fbp.cpu().numpy()
            return [
                ("ground truth", _rgb(gt), None),
                (f"sinogram ({len(self.angles)} angles)", self.sinogram.cpu().numpy(), "gray"),
                (f"FBP (PSNR {self.baseline['fbp_psnr']:.2f})", _rgb(fbp), None),
                error_panel(fbp, gt),
            ]
        rec = self.as_image(prediction).cpu().numpy()
        return [("reconstruction", _rgb(rec), None), error_panel(rec, gt)]

    def save(self, prediction: Tensor, run_dir: Path) -> None:
        """``reconstruction.png`` (16-bit for 16-bit input) and the baseline ``fbp.png``."""
        super().save(prediction, run_dir)
        atomic_write_bytes(run_dir / "fbp.png", png_bytes(self.fbp.cpu().numpy()))

    def describe(self) -> dict:
        return {
            **super().describe(),
            "projections": len(self.angles),
            "detector_bins": self.sinogram.shape[-1],
            "noise": None if self.noise is None else {"tau": self.noise[0], "readout_sigma": self.noise[1]},
            **self.baseline,
        }


@dataclass
class CTTask(TaskConfig):
    """CT reconstruction: fit a slice from its sinogram. Defaults: the paper's CT setting."""

    data: CTConfig = dataclasses.field(default_factory=CTConfig)
    field: FieldConfig = dataclasses.field(
        default_factory=lambda: FieldConfig(
            arch="relu_ff",
            num_layers=5,
            width=256,
            encoding=EncodingConfig(fourier=FourierFeaturesConfig(ff_features=64, ff_sigma=4.0)),
        )
    )
    fit: FitConfig = dataclasses.field(default_factory=lambda: FitConfig(steps=5000, scheduler="none"))

    default_lrs: ClassVar[Lrs] = Lrs(lr=1e-2, muon_lr=5e-2)  # the paper's CT lrs

    def signal(self) -> CTSignal:
        return CTSignal.from_config(self.data)
