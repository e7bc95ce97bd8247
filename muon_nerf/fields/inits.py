"""Weight initializations of the paper's architectures (besides torch's default ``nn.Linear`` init)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

InitName = Literal["default", "siren"]


@dataclass
class InitConfig:
    """How the MLP's linear layers start."""

    init: InitName | None = None
    """default (torch's nn.Linear) or siren; None: the one --arch names."""
    first_bias_scale: float | None = None
    """FINER's optional first-layer bias range U(-k, k); None keeps the init's own bias."""


@torch.no_grad()
def siren_init(first: nn.Linear, later: Sequence[nn.Linear], omega: float) -> None:
    """SIREN's init: first layer U(±1/fan_in); later layers U(±√(6/fan_in)/ω0), so that every
    pre-activation ``ω0·(Wx + b)`` is spread over a few periods of the sine whatever the depth."""
    first.weight.uniform_(-1 / first.in_features, 1 / first.in_features)
    for layer in later:
        bound = math.sqrt(6 / layer.in_features) / omega
        layer.weight.uniform_(-bound, bound)


@torch.no_grad()
def initialize(
    name: InitName, first: nn.Linear, later: Sequence[nn.Linear], omega: float, first_bias_scale: float | None
) -> None:
    """Apply init ``name`` to an MLP's layers (``later``: hidden and last, input to output)."""
    if name == "siren":
        siren_init(first, later, omega)
    if first_bias_scale is not None:
        first.bias.uniform_(-first_bias_scale, first_bias_scale)
