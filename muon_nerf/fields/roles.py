"""Layer roles: which part of a field a trainable tensor belongs to.

The role is decided by the field that owns the tensor (first, hidden and last layer of an MLP, a
trainable encoding, a readout head, a per-image embedding), never guessed from its shape.
``muon_nerf.optim`` reads the roles to give exactly the hidden weight matrices to Muon; it lives a
layer above, so the type is declared here, where the fields that produce it live.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

from torch import nn

Role = Literal["first", "hidden", "last", "encoding", "head", "embedding"]


@dataclass(frozen=True)
class ParamRole:
    """One trainable tensor and the role of the layer it belongs to."""

    name: str
    param: nn.Parameter
    role: Role
    is_weight: bool


class HasParamRoles(Protocol):
    """Anything whose trainable tensors can be listed with their layer roles (our fields)."""

    def param_roles(self) -> Iterator[ParamRole]: ...
