"""tiny-cuda-nn's hash-grid kernels for :class:`~muon_nerf.fields.hashgrid.HashGridEncoding`
(``--hash-implementation tcnn``).

tiny-cuda-nn's ``GridEncoding`` (``encodings/grid.h``) has the levels, table sizes, row layout
(``offset_l + row``, features innermost), spatial hash and interpolation that ``hashgrid.py``
reproduces, so its kernels can evaluate *our* table: the encoding keeps its ``table`` parameter
(the one the optimizer and checkpoints see, in either implementation) and lends it to a
``tinycudann.Encoding`` whose own parameter is removed. Checkpoints therefore load into either
implementation. tiny-cuda-nn is built from source against CUDA (docs/nerf.md); it is imported
only here, and only when this implementation is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Float
from torch import Tensor, nn

if TYPE_CHECKING:
    from muon_nerf.fields.hashgrid import HashGridEncoding

TCNN_FEATURES_PER_LEVEL = (1, 2, 4, 8)
"""Features per level that tiny-cuda-nn's grid is compiled for."""
TCNN_DIMS = (2, 3)
"""Input dimensions that tiny-cuda-nn's grid is compiled for."""


def tcnn_config(enc: HashGridEncoding) -> dict[str, Any]:
    """The ``tinycudann.Encoding`` config of ``enc``'s grid (a hash grid, linear interpolation,
    instant-ngp's coherent prime hash, the same growth factor)."""
    return {
        "otype": "Grid",
        "type": "Hash",
        "hash": "CoherentPrime",
        "interpolation": "Linear",
        "n_levels": enc.levels,
        "n_features_per_level": enc.features_per_level,
        "log2_hashmap_size": enc.log2_table_size,
        "base_resolution": enc.base_resolution,
        "per_level_scale": enc.growth,
    }


def make_tcnn_encoding(enc: HashGridEncoding, dtype: torch.dtype | None = torch.float32) -> nn.Module:
    """A ``tinycudann.Encoding`` that evaluates ``enc``'s table (see :func:`tcnn_forward`).

    Args:
        enc: the torch encoding whose config and table it takes.
        dtype: tiny-cuda-nn's parameter and output precision: float32 (the default) trains what
            the torch path trains, to float rounding; None: its preferred one (half on most GPUs).

    Raises:
        ValueError: tiny-cuda-nn is missing, there is no CUDA device, or the grid is one
            tiny-cuda-nn does not build (input dimension, features per level, levels), or its
            table layout would differ from ``enc``'s (checked by parameter count).
    """
    builds = enc.in_dim in TCNN_DIMS and enc.features_per_level in TCNN_FEATURES_PER_LEVEL
    if not builds or enc.levels > 32:
        raise ValueError(
            f"--hash-implementation tcnn: tiny-cuda-nn's grid takes {TCNN_DIMS} input dimensions, "
            f"{TCNN_FEATURES_PER_LEVEL} features per level and at most 32 levels; got {enc.in_dim}, "
            f"{enc.features_per_level} and {enc.levels}"
        )
    try:
        import tinycudann
    except (ImportError, OSError) as err:  # its import raises EnvironmentError without CUDA
        raise ValueError(
            "--hash-implementation tcnn needs tiny-cuda-nn's torch bindings and a CUDA device "
            f"(built from source: docs/nerf.md, section tiny-cuda-nn); {type(err).__name__}: {err}"
        ) from None
    module = tinycudann.Encoding(enc.in_dim, tcnn_config(enc), dtype=dtype)
    if module.params.numel() != enc.table.numel():
        raise ValueError(
            f"--hash-implementation tcnn: tiny-cuda-nn lays this grid out in {module.params.numel()} "
            f"values, the torch grid in {enc.table.numel()} (a level's resolution rounds differently "
            "in float32); choose another --hash-finest-resolution"
        )
    # the table stays the encoding's own parameter; tcnn_forward lends it for each call
    del module.params
    return module


def tcnn_forward(
    module: nn.Module, table: Float[Tensor, "rows f"], u: Float[Tensor, "n d"]
) -> Float[Tensor, "n e"]:
    """Evaluate ``table`` with tiny-cuda-nn's kernels at points ``u`` in [0, 1]^d; gradients reach
    ``table`` through its flattened view (and the cast, when tiny-cuda-nn runs in half precision)."""
    if not (u.is_cuda and table.is_cuda):
        raise RuntimeError("the tcnn hash grid runs on CUDA: move the field to a CUDA device")
    module.params = table.reshape(-1)
    try:
        return module(u.float()).to(table.dtype)
    finally:
        del module.params
