"""Metrics shared by every task. Each is checked in tests against an independent reference
(skimage, torchmetrics, closed forms)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

LOWER_IS_BETTER = ("chamfer", "mse", "rmse", "mae", "error", "loss", "lpips", "distance")
"""Words that mark a metric as minimized (Chamfer, MSE, LPIPS); PSNR, SNR, SSIM, IoU are maximized."""


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is better (by its name): sweeps pick points and
    figures draw improvements with it."""
    return any(word in metric.lower() for word in LOWER_IS_BETTER)


def mse(pred: Tensor, target: Tensor) -> Tensor:
    return torch.mean((pred - target) ** 2)


def psnr(pred: Tensor, target: Tensor, data_range: float = 1.0) -> float:
    """``10 log10(range² / MSE)`` in dB; ``inf`` for identical inputs."""
    err = float(mse(pred.double(), target.double()))
    return math.inf if err == 0 else 10 * math.log10(data_range**2 / err)


def _gaussian_kernel(sigma: float = 1.5, truncate: float = 3.5) -> Tensor:
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def ssim(pred: Tensor, target: Tensor, data_range: float = 1.0) -> float:
    """Mean SSIM of ``(H, W[, C])`` images with an 11-tap Gaussian window (σ 1.5), K1 0.01,
    K2 0.03 and population covariances: Wang et al. 2004, equal to
    ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=...)``. The mean is over pixels whose window lies
    inside the image, as skimage crops its padded borders."""
    if pred.shape != target.shape:
        raise ValueError(f"ssim needs equal shapes, got {tuple(pred.shape)} and {tuple(target.shape)}")
    x, y = (t.double() for t in (pred, target))
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    x, y = (t.permute(2, 0, 1)[:, None] for t in (x, y))  # (C, 1, H, W)
    k = _gaussian_kernel().to(x.device)
    if min(x.shape[-2:]) < k.numel():
        raise ValueError(
            f"ssim needs images of at least {k.numel()}×{k.numel()} pixels, got {tuple(x.shape[-2:])}"
        )

    def blur(t: Tensor) -> Tensor:
        return F.conv2d(F.conv2d(t, k.view(1, 1, -1, 1)), k.view(1, 1, 1, -1))

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(s.mean())


def snr(pred: Tensor, target: Tensor) -> float:
    """Signal-to-noise ratio ``10 log10(Σ target² / Σ (target − pred)²)`` in dB (audio)."""
    t, p = target.double().flatten(), pred.double().flatten()
    err = float(torch.sum((t - p) ** 2))
    return math.inf if err == 0 else 10 * math.log10(float(torch.sum(t**2)) / err)


def si_snr(pred: Tensor, target: Tensor) -> float:
    """Scale-invariant SNR (Le Roux et al. 2019) in dB: both signals made zero-mean, the target
    scaled by the optimal ``α = ⟨pred, target⟩ / ‖target‖²``, so a fit that is right up to gain
    scores as well as an exact one."""
    t, p = target.double().flatten(), pred.double().flatten()
    t, p = t - t.mean(), p - p.mean()
    projection = (torch.dot(p, t) / torch.dot(t, t)) * t
    err = float(torch.sum((p - projection) ** 2))
    return math.inf if err == 0 else 10 * math.log10(float(torch.sum(projection**2)) / err)
