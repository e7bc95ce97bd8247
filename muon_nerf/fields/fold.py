"""ω0 folding for steep activations (SIREN, FINER, Gauss, WIRE), so that Muon's step size means
the same as for ReLU.

A hidden layer feeding ``sin(ω0 ·)`` turns a weight change ΔW into a pre-activation change
``ω0·ΔW``. Muon's update has spectral norm ≈ lr whatever the gradient's scale, so on the usual
parametrization a Muon lr tuned for ReLU is ω0 (30–40) times too large for a sine network.
Storing ``ω0·W`` instead (same function, same initial values) makes the stored matrix the
effective one. The Gaussian ``exp(-x²/2a²)`` and WIRE's Gabor ``sin(ωx)·exp(-(σx)²)`` are as steep
(input frequency 1/a ≈ 42 and ω = 20): they are folded by that frequency the same way.
Adam is left on the usual parametrization (its runs are not folded).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from muon_nerf.fields.mlp import FieldConfig, MLPField

FOLD_FREQUENCY = {
    "siren": lambda c: c.omega,
    "finer": lambda c: c.omega,
    "gauss": lambda c: 1 / c.gauss_a,
    "wire": lambda c: c.wire_omega,
}
"""Input frequency of each steep activation: the factor its pre-activation scales a weight step by."""
OMEGA_ARCHS = tuple(FOLD_FREQUENCY)


def folds_under(arch: str, optimizer: str) -> bool:
    """Whether a field of ``arch`` is folded by default when its hidden weights train with
    ``optimizer``: under Muon only, so the Adam baselines keep the usual parametrization."""
    return optimizer == "muon" and arch in FOLD_FREQUENCY


def fold_frequency(config: FieldConfig) -> float:
    """The factor :func:`fold_omega` stores the hidden weights multiplied by."""
    return float(FOLD_FREQUENCY[config.arch](config))


class OmegaFoldedLinear(nn.Linear):
    """A hidden layer of a sine (or Gauss/WIRE) network that stores ``ω0·W`` and feeds ``x (ω0·W)ᵀ/ω0 + b`` to
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
    """Replace the hidden layers of a SIREN/FINER/Gauss/WIRE ``MLPField`` by
    :class:`OmegaFoldedLinear` (the factor is :func:`fold_frequency`)."""
    if mlp.config.arch not in FOLD_FREQUENCY:
        raise ValueError(f"omega folding applies to {OMEGA_ARCHS}, not arch {mlp.config.arch!r}")
    omega = fold_frequency(mlp.config)
    for i, layer in enumerate(mlp.hidden):
        mlp.hidden[i] = OmegaFoldedLinear(layer, omega)
