"""The MLP field: encoding → first layer → hidden layers → last layer, with explicit layer roles.

``num_layers`` counts all linear layers, as the paper does: one first, ``num_layers - 2`` hidden,
one last. The roles are what ``muon_nerf.optim`` uses to put exactly the hidden weights on Muon.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import torch
from jaxtyping import Float
from torch import Tensor, nn

from muon_nerf.fields.activations import Finer, Gauss, RealWire, Sine
from muon_nerf.fields.encodings import GaussianFourierFeatures, IdentityEncoding, PositionalEncoding
from muon_nerf.optim import ParamRole

Arch = Literal["relu", "relu_pe", "relu_ff", "siren", "finer", "gauss", "wire"]
Init = Literal["default", "siren"]


@dataclass
class FieldConfig:
    """Architecture of a coordinate MLP. Defaults follow the paper's image script."""

    arch: Arch = "relu"
    """relu, relu_pe (NeRF positional encoding), relu_ff (Gaussian Fourier features), siren, finer,
    gauss, wire (real-valued)."""
    num_layers: int = 5
    """All linear layers: first + (num_layers-2) hidden + last."""
    width: int = 300
    omega: float = 40.0
    """ω0 of SIREN and FINER."""
    gauss_a: float = 0.0236
    wire_omega: float = 20.0
    wire_sigma: float = 10.0
    pe_frequencies: int = 10
    ff_features: int = 256
    ff_sigma: float = 10.0
    first_bias_scale: float | None = None
    """FINER's optional first-layer bias range U(-k, k); None keeps the default init."""

    def check(self) -> None:
        """Refuse bad values with a one-line message (called before any work starts)."""
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown arch {self.arch!r}; choose one of {sorted(ARCHITECTURES)}")
        if self.num_layers < 2:
            raise ValueError(
                f"num_layers counts first and last layer, so must be >= 2, got {self.num_layers}"
            )
        if self.width < 1:
            raise ValueError(f"width must be >= 1, got {self.width}")


@dataclass(frozen=True)
class ArchSpec:
    """How an architecture is assembled: its encoding, its activation and its initializer."""

    encoding: Callable[[FieldConfig, int], nn.Module]
    activation: Callable[[FieldConfig], nn.Module]
    init: Init = "default"


ARCHITECTURES: dict[str, ArchSpec] = {
    "relu": ArchSpec(lambda c, d: IdentityEncoding(d), lambda c: nn.ReLU()),
    "relu_pe": ArchSpec(lambda c, d: PositionalEncoding(d, c.pe_frequencies), lambda c: nn.ReLU()),
    "relu_ff": ArchSpec(
        lambda c, d: GaussianFourierFeatures(d, c.ff_features, c.ff_sigma), lambda c: nn.ReLU()
    ),
    "siren": ArchSpec(lambda c, d: IdentityEncoding(d), lambda c: Sine(c.omega), "siren"),
    "finer": ArchSpec(lambda c, d: IdentityEncoding(d), lambda c: Finer(c.omega), "siren"),
    "gauss": ArchSpec(lambda c, d: IdentityEncoding(d), lambda c: Gauss(c.gauss_a)),
    "wire": ArchSpec(lambda c, d: IdentityEncoding(d), lambda c: RealWire(c.wire_omega, c.wire_sigma)),
}


class MLPField(nn.Module):
    """Coordinates ``(*, in_dim)`` → values ``(*, out_dim)``; knows its first/hidden/last layers."""

    def __init__(self, config: FieldConfig, in_dim: int, out_dim: int) -> None:
        super().__init__()
        config.check()
        self.config = config
        spec = ARCHITECTURES[config.arch]
        self.encoding = spec.encoding(config, in_dim)
        self.activation = spec.activation(config)
        self.first = nn.Linear(self.encoding.out_dim, config.width)
        self.hidden = nn.ModuleList(
            nn.Linear(config.width, config.width) for _ in range(config.num_layers - 2)
        )
        self.last = nn.Linear(config.width, out_dim)
        if spec.init == "siren":
            self._siren_init()

    @torch.no_grad()
    def _siren_init(self) -> None:
        """SIREN init: first layer U(±1/fan_in); later layers U(±√(6/fan_in)/ω0)."""
        self.first.weight.uniform_(-1 / self.first.in_features, 1 / self.first.in_features)
        for layer in [*self.hidden, self.last]:
            bound = math.sqrt(6 / layer.in_features) / self.config.omega
            layer.weight.uniform_(-bound, bound)
        if self.config.first_bias_scale is not None:
            k = self.config.first_bias_scale
            self.first.bias.uniform_(-k, k)

    def forward(self, coords: Float[Tensor, "*bs in_dim"]) -> Float[Tensor, "*bs out_dim"]:
        x = self.activation(self.first(self.encoding(coords)))
        for layer in self.hidden:
            x = self.activation(layer(x))
        return self.last(x)

    def layers(self) -> Iterator[tuple[str, nn.Linear, str]]:
        """(name, layer, role) of every linear layer, input to output."""
        yield "first", self.first, "first"
        for i, layer in enumerate(self.hidden):
            yield f"hidden.{i}", layer, "hidden"
        yield "last", self.last, "last"

    def hidden_weights(self) -> dict[str, Tensor]:
        """The matrices whose rank the paper tracks."""
        return {f"{name}.weight": layer.weight for name, layer, role in self.layers() if role == "hidden"}

    def param_roles(self) -> Iterator[ParamRole]:
        for name, layer, role in self.layers():
            yield ParamRole(f"{name}.weight", layer.weight, role, True)
            if layer.bias is not None:
                yield ParamRole(f"{name}.bias", layer.bias, role, False)
        for name, p in self.encoding.named_parameters():
            yield ParamRole(f"encoding.{name}", p, "encoding", False)
