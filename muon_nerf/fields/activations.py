"""Pointwise activations of the paper's architectures. Each takes its frequency/width as a
constructor argument so that one MLP builder serves them all."""

from __future__ import annotations

import torch
from torch import Tensor, nn


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
