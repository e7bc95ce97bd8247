"""Pointwise activations of the paper's architectures, and their config.

Each steep activation also reports its *input frequency*: the factor by which its pre-activation
scales a weight step. ω-folding (``fold.py``) divides it out so that Muon's step means the same
as for ReLU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

ActivationName = Literal["relu", "sine", "finer", "gauss", "wire"]


class Sine(nn.Module):
    """SIREN: ``sin(ω0 x)``."""

    def __init__(self, omega: float) -> None:
        super().__init__()
        self.omega = omega

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(self.omega * x)


class Finer(nn.Module):
    """FINER: ``sin(ω0 (|x|+1) x)``; the scale ``|x|+1`` is not differentiated, as in FINER's code."""

    def __init__(self, omega: float) -> None:
        super().__init__()
        self.omega = omega

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(self.omega * (x.detach().abs() + 1) * x)


class Gauss(nn.Module):
    """Gaussian activation ``exp(-x² / (2a²))`` (a = 0.0236 equals WIRE's scale 30)."""

    def __init__(self, a: float) -> None:
        super().__init__()
        self.a = a

    def forward(self, x: Tensor) -> Tensor:
        return torch.exp(-(x**2) / (2 * self.a**2))


class RealWire(nn.Module):
    """Real-valued WIRE (Gabor wavelet): ``sin(ω x) · exp(-(σ x)²)``."""

    def __init__(self, omega: float, sigma: float) -> None:
        super().__init__()
        self.omega = omega
        self.sigma = sigma

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(self.omega * x) * torch.exp(-((self.sigma * x) ** 2))


@dataclass
class ActivationConfig:
    """Which activation the MLP uses, and every activation's parameters."""

    activation: ActivationName | None = None
    """relu, sine (SIREN), finer, gauss or wire; None: the one --arch names."""
    omega: float = 40.0
    """ω0 of sine and finer (SIREN's first-layer frequency; also scales their init)."""
    gauss_a: float = 0.0236
    """Width a of the Gaussian activation."""
    wire_omega: float = 20.0
    """Frequency ω of WIRE's Gabor wavelet."""
    wire_sigma: float = 10.0
    """Inverse width σ of WIRE's Gabor wavelet."""

    def check(self) -> None:
        """Refuse parameters the activations divide by or that make them constant."""
        for name in ("omega", "gauss_a", "wire_omega", "wire_sigma"):
            value = getattr(self, name)
            if not value > 0 or value == float("inf"):
                raise ValueError(f"--{name.replace('_', '-')} must be a positive number, got {value}")

    def setup(self, name: ActivationName) -> nn.Module:
        return ACTIVATIONS[name][0](self)

    def input_frequency(self, name: ActivationName) -> float | None:
        """How much the activation's pre-activation magnifies a weight step (None: not steep)."""
        frequency = ACTIVATIONS[name][1]
        return None if frequency is None else float(frequency(self))


ACTIVATIONS: dict[
    str, tuple[Callable[[ActivationConfig], nn.Module], Callable[[ActivationConfig], float] | None]
] = {
    "relu": (lambda c: nn.ReLU(), None),
    "sine": (lambda c: Sine(c.omega), lambda c: c.omega),
    "finer": (lambda c: Finer(c.omega), lambda c: c.omega),
    "gauss": (lambda c: Gauss(c.gauss_a), lambda c: 1 / c.gauss_a),
    "wire": (lambda c: RealWire(c.wire_omega, c.wire_sigma), lambda c: c.wire_omega),
}
"""name → (module factory, input frequency or None for activations that need no folding)."""
