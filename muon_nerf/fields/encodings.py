"""Input encodings of coordinates, handed to the MLP as modules (as nerfstudio hands encodings to
its fields).

Fixed encodings keep their matrices as buffers, so checkpoints keep them and optimizers never see
them. A trainable encoding (the hash grid of ``hashgrid.py``) is an ``nn.Module`` with parameters:
the MLP gives them the role ``encoding`` and the optimizer builder puts them in their own Adam group.

Adding an encoding: a module with ``out_dim``, a config dataclass with ``setup(in_dim)``, and one
field plus one name in :class:`EncodingConfig` (the registry).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
from jaxtyping import Float
from torch import Tensor, nn

from muon_nerf.fields.hashgrid import HashGridConfig

EncodingName = Literal["none", "positional", "fourier", "hash"]


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


MAX_PE_FREQUENCIES = 24
"""A float32 coordinate in [-1, 1] resolves 2^-24: at octave 24 its phase is below resolution."""


@dataclass
class PositionalEncodingConfig:
    """NeRF positional encoding (--arch relu_pe)."""

    pe_frequencies: int = 10
    """Octaves L: frequencies 2^0 π … 2^(L-1) π per coordinate."""

    def setup(self, in_dim: int) -> PositionalEncoding:
        self.check()
        return PositionalEncoding(in_dim, self.pe_frequencies)

    def check(self) -> None:
        if not 1 <= self.pe_frequencies <= MAX_PE_FREQUENCIES:
            raise ValueError(
                f"--pe-frequencies must be in 1..{MAX_PE_FREQUENCIES} (beyond, sin(2^k πx) of a float32 "
                f"coordinate is noise, and 2^k overflows), got {self.pe_frequencies}"
            )


@dataclass
class FourierFeaturesConfig:
    """Gaussian random Fourier features (--arch relu_ff)."""

    ff_features: int = 256
    """Rows of B: the encoding has 2 × this many outputs."""
    ff_sigma: float = 10.0
    """Standard deviation of B (cycles per unit of the coordinate)."""

    def setup(self, in_dim: int) -> GaussianFourierFeatures:
        self.check()
        return GaussianFourierFeatures(in_dim, self.ff_features, self.ff_sigma)

    def check(self) -> None:
        if self.ff_features < 1 or not (self.ff_sigma > 0 and math.isfinite(self.ff_sigma)):
            raise ValueError(
                "--ff-features must be >= 1 and --ff-sigma finite, > 0; "
                f"got {self.ff_features}, {self.ff_sigma}"
            )


@dataclass
class EncodingConfig:
    """Which encoding feeds the MLP, and every encoding's parameters."""

    encoding: EncodingName | None = None
    """none, positional, fourier or hash; None: the one --arch names."""
    positional: PositionalEncodingConfig = field(default_factory=PositionalEncodingConfig)
    fourier: FourierFeaturesConfig = field(default_factory=FourierFeaturesConfig)
    hash: HashGridConfig = field(default_factory=HashGridConfig)

    def check(self, name: EncodingName) -> None:
        """Refuse bad settings of encoding ``name`` in one line, before anything is built."""
        if name != "none":
            getattr(self, name).check()

    def setup(self, name: EncodingName, in_dim: int) -> nn.Module:
        """The encoding module ``name`` with this config's parameters for it."""
        if name == "none":
            return IdentityEncoding(in_dim)
        return getattr(self, name).setup(in_dim)
