"""Coordinate fields: encodings, activations, inits, the MLP, layer roles and ω-folding.

The lowest layer of the package: it imports nothing else of it.
"""

from muon_nerf.fields.mlp import ARCHITECTURES, Arch, FieldConfig, MLPField
from muon_nerf.fields.roles import HasParamRoles, ParamRole, Role

__all__ = ["ARCHITECTURES", "Arch", "FieldConfig", "HasParamRoles", "MLPField", "ParamRole", "Role"]
