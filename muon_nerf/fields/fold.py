"""ω-folding for steep activations (SIREN, FINER, Gauss, WIRE), so that Muon's step size means
the same as for ReLU.

A hidden layer feeding ``sin(ω0 ·)`` turns a weight change ΔW into a pre-activation change
``ω0·ΔW``. Muon's update has spectral norm ≈ lr whatever the gradient's scale, so on the usual
parametrization a Muon lr tuned for ReLU is ω0 (30–40) times too large for a sine network.
Storing ``ω0·W`` instead (same function, same initial values) makes the stored matrix the
effective one. The Gaussian ``exp(-x²/2a²)`` and WIRE's Gabor ``sin(ωx)·exp(-(σx)²)`` are as steep
(input frequency 1/a and ω): they are folded by that frequency the same way
(``ActivationConfig.input_frequency``).

Folding is part of the field's parametrization: ``FieldConfig.fold_omega`` asks for it, the
field is built folded, and the field config saved in a checkpoint says so. Adam is left on the
usual parametrization (``FieldConfig.under`` turns folding off for fields whose hidden weights
train with Adam), so the Adam baselines are the published architectures.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class OmegaFoldedLinear(nn.Linear):
    """A hidden layer that stores ``ω0·W`` and computes ``x (ω0·W)ᵀ/ω0 + b``: the same function as
    the usual parametrization, but the stored matrix is the effective one, so a Muon step of
    spectral size ``lr`` moves the pre-activation by ``lr`` rather than ``ω0·lr``. Biases are
    left as they are (Adam trains them either way)."""

    def __init__(self, layer: nn.Linear, omega: float) -> None:
        super().__init__(layer.in_features, layer.out_features, bias=layer.bias is not None)
        self.omega = omega
        with torch.no_grad():
            self.weight.copy_(layer.weight * omega)
            if layer.bias is not None:
                self.bias.copy_(layer.bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight / self.omega, self.bias)


def fold_layers(layers: nn.ModuleList, omega: float) -> None:
    """Replace every ``nn.Linear`` of ``layers`` by its :class:`OmegaFoldedLinear`, in place."""
    for i, layer in enumerate(layers):
        layers[i] = OmegaFoldedLinear(layer, omega)
