"""Multiresolution hash encoding (instant-ngp; Müller et al. 2022), in plain torch.

L levels of d-dimensional grids, coarse to fine. A point is looked up at every level: the 2^d
vertices of its cell are mapped to rows of that level's table (a dense index where the level's
grid fits the table, instant-ngp's spatial hash where it does not), and their feature vectors are
d-linearly interpolated. The L interpolated vectors, concatenated level by level, are the encoding.

Conventions follow tiny-cuda-nn's ``GridEncoding`` (``encodings/grid.h``), so that its kernels can
evaluate this module's table (``implementation="tcnn"``, ``hashgrid_tcnn.py``):

- level l has scale ``s_l = N_min · b^l − 1`` and ``R_l = ⌈s_l⌉ + 1`` vertices per axis, with growth
  factor ``b = exp((ln N_max − ln N_min) / (L − 1))`` (paper, eq. 3); a point ``u ∈ [0, 1]^d`` sits
  at ``u · s_l + 0.5`` in vertex units (cell ``⌊·⌋``, weights from the fraction);
- level l's table has ``T_l = min(R_l^d rounded up to a multiple of 8, 2^log2_table_size)`` rows;
  a vertex's row is ``Σ_i c_i R_l^i`` if ``R_l^d ≤ 2^log2_table_size`` (dense), else
  ``⊕_i c_i π_i`` (XOR; π = 1, 2654435761, 805459861), taken mod T_l;
- all levels' rows are stacked in one parameter of shape ``(Σ_l T_l, F)``: tiny-cuda-nn's layout,
  and the parameter count a comparison should state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from muon_nerf.fields.hashgrid_tcnn import make_tcnn_encoding, tcnn_forward

HashImplementation = Literal["torch", "tcnn"]

HASH_PRIMES = (1, 2654435761, 805459861)
"""instant-ngp's per-axis primes (the first is 1 for memory coherence along x)."""


def growth_factor(levels: int, base_resolution: int, finest_resolution: int) -> float:
    """The paper's ``b = exp((ln N_max − ln N_min) / (L − 1))`` (1 for a single level)."""
    return 1.0 if levels == 1 else math.exp(math.log(finest_resolution / base_resolution) / (levels - 1))


def level_scales(levels: int, base_resolution: int, finest_resolution: int) -> list[float]:
    """``s_l = N_min · b^l − 1`` for l = 0 … L-1."""
    growth = growth_factor(levels, base_resolution, finest_resolution)
    return [base_resolution * growth**level - 1.0 for level in range(levels)]


def spatial_hash(corners: Int[Tensor, "*bs d"]) -> Int[Tensor, "*bs"]:
    """instant-ngp's hash ``⊕_i c_i π_i`` of integer vertices, in int64. Hashed tables have a
    power-of-two size, so the row (its low bits) is the same as from instant-ngp's wrapped uint32."""
    result = torch.zeros(corners.shape[:-1], dtype=torch.int64, device=corners.device)
    for i in range(corners.shape[-1]):
        result ^= corners[..., i] * HASH_PRIMES[i]
    return result


class HashGridEncoding(nn.Module):
    """Points ``(*, d)`` in [-1, 1] → ``(*, levels × features)`` (coordinates outside are clamped).

    Args:
        in_dim: d, 1 to 3.
        levels, features_per_level, log2_table_size, base_resolution, finest_resolution: as in
            :class:`HashGridConfig`.
        init_scale: tables start ``U(-init_scale, init_scale)``.
        implementation: ``torch`` (this module's lookup, any device) or ``tcnn`` (tiny-cuda-nn's
            kernels on the same table: CUDA only, ``hashgrid_tcnn.py``).
    """

    def __init__(
        self,
        in_dim: int,
        levels: int = 16,
        features_per_level: int = 2,
        log2_table_size: int = 19,
        base_resolution: int = 16,
        finest_resolution: int = 512,
        init_scale: float = 1e-4,
        implementation: HashImplementation = "torch",
    ) -> None:
        super().__init__()
        if not 1 <= in_dim <= len(HASH_PRIMES):
            raise ValueError(f"hash grid: input dimension must be 1 to {len(HASH_PRIMES)}, got {in_dim}")
        self.in_dim = in_dim
        self.levels = levels
        self.features_per_level = features_per_level
        self.log2_table_size = log2_table_size
        self.max_table_size = 2**log2_table_size
        self.base_resolution = base_resolution
        self.growth = growth_factor(levels, base_resolution, finest_resolution)
        self.scales = level_scales(levels, base_resolution, finest_resolution)
        # rounded first, so a scale of 511.0000000001 (float error in b^l) still has 512 + 1 vertices
        self.resolutions = [math.ceil(round(s, 6)) + 1 for s in self.scales]
        self.hashed = [r**in_dim > self.max_table_size for r in self.resolutions]
        self.table_sizes = [min(-(-(r**in_dim) // 8) * 8, self.max_table_size) for r in self.resolutions]
        self.offsets = [sum(self.table_sizes[:level]) for level in range(levels)]
        self.table = nn.Parameter(torch.empty(sum(self.table_sizes), features_per_level))
        nn.init.uniform_(self.table, -init_scale, init_scale)
        corners = torch.cartesian_prod(*[torch.tensor([0, 1])] * in_dim).reshape(2**in_dim, in_dim)
        self.register_buffer("corner_offsets", corners, persistent=False)
        self.out_dim = levels * features_per_level
        self.implementation = implementation
        if implementation == "tcnn":
            self.tcnn = make_tcnn_encoding(self)
        elif implementation != "torch":
            raise ValueError(f"hash grid implementation must be torch or tcnn, got {implementation!r}")

    def level_rows(self, level: int, corners: Int[Tensor, "*bs d"]) -> Int[Tensor, "*bs"]:
        """Rows of ``table`` (level offset included) holding the vertices ``corners`` of ``level``."""
        if self.hashed[level]:
            index = spatial_hash(corners)
        else:
            strides = self.resolutions[level] ** torch.arange(self.in_dim, device=corners.device)
            index = (corners * strides).sum(-1)
        return index % self.table_sizes[level] + self.offsets[level]

    def forward(self, x: Float[Tensor, "*bs d"]) -> Float[Tensor, "*bs e"]:
        u = ((x.reshape(-1, self.in_dim) + 1) / 2).clamp(0, 1).to(self.table.dtype)
        if self.implementation == "tcnn":
            return tcnn_forward(self.tcnn, self.table, u).reshape(*x.shape[:-1], self.out_dim)
        bits = self.corner_offsets.bool()  # (2^d, d): which corners take the upper vertex per axis
        rows, weights = [], []
        for level, scale in enumerate(self.scales):
            pos = u * scale + 0.5
            cell = pos.floor()
            frac = pos - cell  # (n, d)
            corners = cell.long()[:, None, :] + self.corner_offsets  # (n, 2^d, d)
            weights.append(torch.where(bits, frac[:, None, :], 1 - frac[:, None, :]).prod(-1))  # (n, 2^d)
            rows.append(self.level_rows(level, corners))
        # One lookup for all levels, by index_select: its backward is one index_add_ into a
        # table-sized gradient, where a lookup per level would zero and add the whole table once
        # per level (and embedding's backward sorts the indices first, several times slower on CPU).
        index = torch.stack(rows, 1)  # (n, L, 2^d)
        features = self.table.index_select(0, index.flatten()).reshape(*index.shape, -1)  # (n, L, 2^d, F)
        out = (torch.stack(weights, 1)[..., None] * features).sum(-2)  # (n, L, F)
        return out.reshape(*x.shape[:-1], self.out_dim)

    def extra_repr(self) -> str:
        dense = self.hashed.count(False)
        return (
            f"in_dim={self.in_dim}, levels={self.levels} ({dense} dense), "
            f"features={self.features_per_level}, implementation={self.implementation}, "
            f"resolutions={self.resolutions[0]}…{self.resolutions[-1]}, params={self.table.numel()}"
        )


@dataclass
class HashGridConfig:
    """Multiresolution hash grid (--arch hash), instant-ngp's defaults.

    Level resolutions grow geometrically from --hash-base-resolution N_min to
    --hash-finest-resolution N_max by b = exp((ln N_max − ln N_min) / (L − 1)). The tables train
    with Adam in their own group (role encoding: --encoding-lr, --encoding-eps 1e-15); the lr
    defaults to --lr, while instant-ngp trains its tables with --encoding-lr 1e-2.
    """

    hash_levels: int = 16
    """L: number of grid levels."""
    hash_features_per_level: int = 2
    """F: features per vertex; the encoding has L × F outputs."""
    hash_log2_table_size: int = 19
    """log2 of the most rows a level's table has; finer levels are hashed into it."""
    hash_base_resolution: int = 16
    """N_min: the coarsest level's resolution."""
    hash_finest_resolution: int = 512
    """N_max: the finest level's resolution."""
    hash_init_scale: float = 1e-4
    """Tables start U(-scale, scale) (instant-ngp's 1e-4)."""
    hash_implementation: HashImplementation = "torch"
    """torch: the pure-torch lookup (CPU or GPU). tcnn: tiny-cuda-nn's kernels on the same table
    (CUDA, tiny-cuda-nn built from source; float32; 2-D/3-D inputs, 1/2/4/8 features per level);
    the table, its optimizer group and checkpoints are the same in both."""

    def setup(self, in_dim: int) -> HashGridEncoding:
        self.check()
        return HashGridEncoding(
            in_dim,
            self.hash_levels,
            self.hash_features_per_level,
            self.hash_log2_table_size,
            self.hash_base_resolution,
            self.hash_finest_resolution,
            self.hash_init_scale,
            self.hash_implementation,
        )

    def check(self) -> None:
        """Refuse bad values in one line (called before any work, and again when built)."""
        if self.hash_levels < 1 or self.hash_features_per_level < 1:
            raise ValueError(
                f"--hash-levels and --hash-features-per-level must be >= 1, "
                f"got {self.hash_levels}, {self.hash_features_per_level}"
            )
        if not 1 <= self.hash_log2_table_size <= 30:
            raise ValueError(f"--hash-log2-table-size must be 1 to 30, got {self.hash_log2_table_size}")
        if not 2 <= self.hash_base_resolution <= self.hash_finest_resolution:
            raise ValueError(
                "--hash-base-resolution must be >= 2 and <= --hash-finest-resolution, "
                f"got {self.hash_base_resolution}, {self.hash_finest_resolution}"
            )
        if not (self.hash_init_scale >= 0 and math.isfinite(self.hash_init_scale)):
            raise ValueError(f"--hash-init-scale must be finite and >= 0, got {self.hash_init_scale}")
