"""Building a task's field, and the ``field.pt`` checkpoint that reloads it.

The checkpoint holds the field's whole config (ω-folding included: it is part of the field's
parametrization), its input/output sizes and its ``state_dict``; it loads with
``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
from pathlib import Path
from typing import Any

import torch

from muon_nerf.fields import FieldConfig, MLPField
from muon_nerf.fit.errors import InputError
from muon_nerf.runs.io import atomic_write_bytes
from muon_nerf.runs.presets import merge_config

FORMAT = "muon-nerf-field/2"


def make_field(cfg: FieldConfig, in_dim: int, out_dim: int, seed: int, device: str) -> MLPField:
    """Seeded, so Adam and Muon runs of a comparison start from the same function."""
    torch.manual_seed(seed)
    return MLPField(cfg, in_dim, out_dim).to(device)


def save_field(path: Path, field_: MLPField, in_dim: int, out_dim: int) -> None:
    buf = io.BytesIO()
    torch.save(
        {
            "format": FORMAT,
            "field_config": dataclasses.asdict(field_.config),
            "in_dim": in_dim,
            "out_dim": out_dim,
            "state_dict": field_.state_dict(),
        },
        buf,
    )
    atomic_write_bytes(path, buf.getvalue())


def load_saved(path: Path, what: str) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; a damaged file is one ``InputError``
    naming ``what`` it should have been and the cause."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as err:
        cause = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"cannot read {what} {path} (corrupted or truncated?): {cause}") from None


def load_field(path: Path, device: str = "cpu") -> MLPField:
    """The field saved as ``field.pt`` by a run, in eval mode."""
    ckpt = load_saved(path, "field checkpoint")
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise InputError(
            f"{path} is not a {FORMAT} checkpoint (written by an older version, or another file)"
        )
    config = merge_config(FieldConfig(), ckpt["field_config"], str(path))
    field_ = MLPField(config, ckpt["in_dim"], ckpt["out_dim"])
    field_.load_state_dict(ckpt["state_dict"])
    return field_.to(device).eval()
