"""The MLP field: encoding → first layer → hidden layers → last layer, with explicit layer roles.

``num_layers`` counts all linear layers, as the paper does: one first, ``num_layers - 2`` hidden,
one last. The roles are what ``muon_nerf.optim`` uses to put exactly the hidden weights on Muon.

A ``FieldConfig`` nests one config per part (encoding, activation, initialization) and names an
``arch``: a preset that picks which encoding, activation and init are used unless a part names
its own. Every front end (2D signals, SDF, NeRF) nests this same config.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from jaxtyping import Float
from torch import Tensor, nn

from muon_nerf.fields.activations import ActivationConfig, ActivationName
from muon_nerf.fields.encodings import EncodingConfig, EncodingName
from muon_nerf.fields.fold import fold_layers
from muon_nerf.fields.inits import InitConfig, InitName, initialize
from muon_nerf.fields.roles import ParamRole

Arch = Literal["relu", "relu_pe", "relu_ff", "siren", "finer", "gauss", "wire", "hash"]


@dataclass(frozen=True)
class ArchSpec:
    """What an architecture preset is made of: its encoding, its activation and its init."""

    encoding: EncodingName
    activation: ActivationName
    init: InitName = "default"


ARCHITECTURES: dict[str, ArchSpec] = {
    "relu": ArchSpec("none", "relu"),
    "relu_pe": ArchSpec("positional", "relu"),
    "relu_ff": ArchSpec("fourier", "relu"),
    "siren": ArchSpec("none", "sine", "siren"),
    "finer": ArchSpec("none", "finer", "siren"),
    "gauss": ArchSpec("none", "gauss"),
    "wire": ArchSpec("none", "wire"),
    "hash": ArchSpec("hash", "relu"),
}
"""The paper's architectures (``--arch``). Adding one: its parts' names here (and the parts'
modules, if new, in ``encodings.py`` / ``activations.py``)."""


@dataclass
class FieldConfig:
    """Architecture of a coordinate MLP. Defaults follow the paper's image script."""

    arch: Arch = "relu"
    """relu, relu_pe (NeRF positional encoding), relu_ff (Gaussian Fourier features), siren, finer,
    gauss, wire (real-valued), hash (instant-ngp's multiresolution hash grid + ReLU MLP)."""
    num_layers: int = 5
    """All linear layers: first + (num_layers-2) hidden + last."""
    width: int = 300
    """Neurons per hidden layer: the hidden weight matrices, which Muon trains, are width × width."""
    encoding: EncodingConfig = field(default_factory=EncodingConfig)
    activation: ActivationConfig = field(default_factory=ActivationConfig)
    init: InitConfig = field(default_factory=InitConfig)
    fold_omega: bool = True
    """Steep activations (sine, finer, gauss, wire): store the hidden weights multiplied by the
    activation's input frequency (ω0, 1/a, ω) so a Muon lr means what it means for ReLU (see
    muon_nerf/fields/fold.py). Applied only where the hidden weights train with Muon."""
    # MLPField builds what its config says; front ends pass ``config.under(optimizer)``, which
    # keeps this flag only under Muon. Build from ``under("adam")`` for an Adam-trained field.

    def spec(self) -> ArchSpec:
        """The parts this config builds: the arch's, except where a part names its own."""
        self.check()
        base = ARCHITECTURES[self.arch]
        return ArchSpec(
            self.encoding.encoding or base.encoding,
            self.activation.activation or base.activation,
            self.init.init or base.init,
        )

    def fold_frequency(self) -> float | None:
        """The factor the hidden weights are stored multiplied by; None when not folded."""
        return self.activation.input_frequency(self.spec().activation) if self.fold_omega else None

    def under(self, hidden_optimizer: str) -> FieldConfig:
        """This config for a field whose hidden weights train with ``hidden_optimizer``: folded
        only under Muon, so Adam baselines keep the published parametrization."""
        return dataclasses.replace(self, fold_omega=self.fold_omega and hidden_optimizer == "muon")

    def check(self) -> None:
        """Refuse bad values with a one-line message (called before any work starts)."""
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown arch {self.arch!r}; choose one of {', '.join(ARCHITECTURES)}")
        if self.num_layers < 2:
            raise ValueError(
                f"num_layers counts first and last layer, so must be >= 2, got {self.num_layers}"
            )
        if self.width < 1:
            raise ValueError(f"width must be >= 1, got {self.width}")
        self.activation.check()
        self.encoding.check(self.encoding.encoding or ARCHITECTURES[self.arch].encoding)


class MLPField(nn.Module):
    """Coordinates ``(*, in_dim)`` → values ``(*, out_dim)``; knows its first/hidden/last layers.

    Args:
        config: the architecture.
        in_dim, out_dim: coordinate and value dimensions.
        encoding: the input encoding module (with an ``out_dim``), handed in as nerfstudio hands
            encodings to its fields; default: the one ``config`` names, built from its settings.
    """

    def __init__(
        self, config: FieldConfig, in_dim: int, out_dim: int, encoding: nn.Module | None = None
    ) -> None:
        super().__init__()
        spec = config.spec()
        self.config = config
        self.encoding = encoding if encoding is not None else config.encoding.setup(spec.encoding, in_dim)
        self.activation = config.activation.setup(spec.activation)
        self.first = nn.Linear(self.encoding.out_dim, config.width)
        self.hidden = nn.ModuleList(
            nn.Linear(config.width, config.width) for _ in range(config.num_layers - 2)
        )
        self.last = nn.Linear(config.width, out_dim)
        initialize(
            spec.init,
            self.first,
            [*self.hidden, self.last],
            config.activation.omega,
            config.init.first_bias_scale,
        )
        frequency = config.fold_frequency()
        if frequency is not None:
            fold_layers(self.hidden, frequency)

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
        """Every trainable tensor with its role; a trainable encoding's tensors are ``encoding``."""
        for name, layer, role in self.layers():
            yield ParamRole(f"{name}.weight", layer.weight, role, True)
            if layer.bias is not None:
                yield ParamRole(f"{name}.bias", layer.bias, role, False)
        for name, p in self.encoding.named_parameters():
            yield ParamRole(f"encoding.{name}", p, "encoding", p.ndim >= 2)
