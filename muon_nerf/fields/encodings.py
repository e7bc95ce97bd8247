"""Fixed input encodings of coordinates. None has trainable parameters: their matrices are buffers,
so checkpoints keep them and optimizers never see them."""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor, nn


class IdentityEncoding(nn.Module):
    """Raw coordinates (the plain MLP and the periodic-activation networks)."""

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.out_dim = in_dim

    def forward(self, x: Float[Tensor, "*bs d"]) -> Float[Tensor, "*bs d"]:
        return x


class PositionalEncoding(nn.Module):
    """NeRF's encoding ``[x, sin(2^k π x), cos(2^k π x)]`` for k = 0 … L-1."""

    def __init__(self, in_dim: int, num_frequencies: int = 10, include_input: bool = True) -> None:
        super().__init__()
        self.include_input = include_input
        self.register_buffer("freqs", math.pi * 2.0 ** torch.arange(num_frequencies))
        self.out_dim = in_dim * (2 * num_frequencies + int(include_input))

    def forward(self, x: Float[Tensor, "*bs d"]) -> Float[Tensor, "*bs e"]:
        scaled = (x[..., None] * self.freqs).flatten(-2)
        parts = [torch.sin(scaled), torch.cos(scaled)]
        return torch.cat(([x] if self.include_input else []) + parts, dim=-1)


class GaussianFourierFeatures(nn.Module):
    """Tancik et al.'s random Fourier features ``[sin(2π Bx), cos(2π Bx)]`` with ``B ~ N(0, σ²)``."""

    def __init__(self, in_dim: int, num_features: int = 256, sigma: float = 10.0) -> None:
        super().__init__()
        self.register_buffer("B", torch.randn(num_features, in_dim) * sigma)
        self.out_dim = 2 * num_features

    def forward(self, x: Float[Tensor, "*bs d"]) -> Float[Tensor, "*bs e"]:
        proj = 2 * math.pi * x @ self.B.T
        return torch.cat([torch.sin(proj), torch.cos(proj)], dim=-1)
