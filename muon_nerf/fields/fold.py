"""ω0 folding for sine networks (SIREN, FINER), so that Muon's step size means the same as for ReLU.

A hidden layer feeding ``sin(ω0 ·)`` turns a weight change ΔW into a pre-activation change
``ω0·ΔW``. Muon's update has spectral norm ≈ lr whatever the gradient's scale, so on the usual
parametrization a Muon lr tuned for ReLU is ω0 (30–40) times too large for a sine network.
Storing ``ω0·W`` instead (same function, same initial values) makes the stored matrix the
effective one. Adam is left on the usual parametrization (its runs are not folded).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from muon_nerf.fields.mlp import MLPField

OMEGA_ARCHS = ("siren", "finer")


class OmegaFoldedLinear(nn.Linear):
    """A hidden layer of a sine network that stores ``ω0·W`` and feeds ``x (ω0·W)ᵀ/ω0 + b`` to
    ``sin(ω0 ·)``: the same function as the usual parametrization, but the stored matrix is the
    effective one, so a Muon step of spectral size ``lr`` moves the pre-activation by ``lr``
    rather than ``ω0·lr``. Biases are left as they are (Adam trains them either way)."""

    def __init__(self, layer: nn.Linear, omega: float) -> None:
        super().__init__(layer.in_features, layer.out_features, bias=layer.bias is not None)
        self.omega = omega
        with torch.no_grad():
            self.weight.copy_(layer.weight * omega)
            if layer.bias is not None:
                self.bias.copy_(layer.bias)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight / self.omega, self.bias)


def fold_omega(mlp: MLPField) -> None:
    """Replace the hidden layers of a SIREN/FINER ``MLPField`` by :class:`OmegaFoldedLinear`."""
    for i, layer in enumerate(mlp.hidden):
        mlp.hidden[i] = OmegaFoldedLinear(layer, mlp.config.omega)
