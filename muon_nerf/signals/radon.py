"""Differentiable parallel-beam Radon transform: rotate the image with ``grid_sample``, sum along rays.

The geometry is exactly ``skimage.transform.radon(image, theta, circle=False)``: the image is
zero-padded to a square of side ``ceil(√2·max(H, W))`` so no ray misses any pixel, rotated about
pixel ``N // 2`` with bilinear interpolation, and summed over rows. Matching skimage makes its
``iradon`` a consistent filtered-back-projection baseline, and its ``radon`` an independent
reference for the tests. All angles are one ``grid_sample`` call (the rotations are stacked along
the output's rows), so it runs batched on CPU and GPU and autograd gives the back-projection.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor


def uniform_angles(num: int) -> Float[Tensor, " a"]:
    """``num`` projection angles in degrees, uniform over [0°, 180°)."""
    if num < 1:
        raise ValueError(f"--projections must be >= 1, got {num}")
    return torch.arange(num, dtype=torch.float64) * (180.0 / num)


def padded_size(height: int, width: int) -> int:
    """Side of the square the image is padded to (and the number of detector bins)."""
    return math.ceil(math.sqrt(2) * max(height, width))


def pad_before(height: int, width: int) -> tuple[int, int]:
    """Rows/columns of zeros before the image, placing its centre at ``N // 2`` as skimage does."""
    n = padded_size(height, width)
    return tuple(n // 2 - s // 2 for s in (height, width))  # type: ignore[return-value]


def pad_square(image: Float[Tensor, "*c h w"]) -> Float[Tensor, "*c n n"]:
    h, w = image.shape[-2:]
    n = padded_size(h, w)
    top, left = pad_before(h, w)
    return F.pad(image, (left, n - w - left, top, n - h - top))


def radon_bytes(height: int, width: int, projections: int) -> int:
    """Peak memory of the operator for ``projections`` angles: ``radon_grid`` builds its ``a·N²``
    sampling points in float64 (column, row, their stack and its rescaled copy: 48 bytes per
    point, then 8 for the float32 grid), and a fit's forward pass samples ``a·N²`` values and its
    backward pass as many gradients (float32)."""
    points = projections * padded_size(height, width) ** 2
    return 48 * points + 8 * points + 3 * 4 * points


def radon_grid(
    height: int, width: int, angles_deg: Tensor, device: str | torch.device | None = None
) -> Float[Tensor, "1 a*n n 2"]:
    """``grid_sample`` coordinates that rotate the padded image by every angle (stacked by rows).

    Output pixel (row r, column c) of angle θ reads the input at column ``m + cos θ·(c−m) + sin θ·(r−m)``
    and row ``m − sin θ·(c−m) + cos θ·(r−m)``, with ``m = N // 2``: skimage's rotation matrix.
    Built in float64 and stored as float32; it depends only on the geometry, so it is built once.
    """
    n = padded_size(height, width)
    m = n // 2
    theta = torch.deg2rad(torch.as_tensor(angles_deg, dtype=torch.float64)).view(-1, 1, 1)
    idx = torch.arange(n, dtype=torch.float64) - m
    v, u = torch.meshgrid(idx, idx, indexing="ij")  # v: row offset, u: column offset
    col = m + torch.cos(theta) * u + torch.sin(theta) * v
    row = m - torch.sin(theta) * u + torch.cos(theta) * v
    # align_corners=True: pixel index i sits at normalized 2i/(N-1) - 1
    grid = torch.stack([col, row], -1) * (2.0 / (n - 1)) - 1.0
    return grid.reshape(1, -1, n, 2).float().to(device)


def radon(image: Float[Tensor, "*c h w"], grid: Float[Tensor, "1 a*n n 2"]) -> Float[Tensor, "*c a n"]:
    """Sinogram ``(…, angles, detector)`` of one image or a stack of images (leading dims)."""
    lead = image.shape[:-2]
    h, w = image.shape[-2:]
    n = padded_size(h, w)
    x = pad_square(image.reshape(1, -1, h, w))
    rotated = F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="zeros", align_corners=True)
    return rotated.reshape(*lead, -1, n, n).sum(-2)


def radon_transform(image: Float[Tensor, "*c h w"], angles_deg: Tensor) -> Float[Tensor, "*c a n"]:
    """One-off convenience: build the grid and project."""
    h, w = image.shape[-2:]
    return radon(image, radon_grid(h, w, angles_deg, image.device))


def filtered_back_projection(
    sinogram: Float[Tensor, "a n"], angles_deg: Tensor, height: int, width: int
) -> np.ndarray:
    """The classical baseline: ``skimage.transform.iradon`` (ramp filter), cropped to ``(H, W)``."""
    from skimage.transform import iradon

    n = padded_size(height, width)
    full = iradon(
        sinogram.detach().double().cpu().numpy().T,
        theta=torch.as_tensor(angles_deg).double().cpu().numpy(),
        output_size=n,
        circle=False,
        filter_name="ramp",
    )
    top, left = pad_before(height, width)
    return full[top : top + height, left : left + width].astype(np.float32)


def poisson_gaussian_noise(
    sinogram: Tensor, tau: float, readout_sigma: float, generator: torch.Generator
) -> Tensor:
    """WIRE's measurement model: photon counts ``Poisson(τ·|y|)`` (sign kept) plus Gaussian readout
    noise of ``readout_sigma`` counts, scaled back by ``1/τ``. Smaller τ = fewer photons = noisier."""
    if not (tau > 0 and math.isfinite(tau)):
        raise ValueError(f"--tau must be > 0 and finite, got {tau}")
    if not (readout_sigma >= 0 and math.isfinite(readout_sigma)):
        raise ValueError(f"--readout-sigma must be >= 0 and finite, got {readout_sigma}")
    counts = torch.poisson(sinogram.abs() * tau, generator=generator) * torch.sign(sinogram)
    readout = torch.randn(sinogram.shape, generator=generator, dtype=sinogram.dtype) * readout_sigma
    return (counts + readout) / tau
