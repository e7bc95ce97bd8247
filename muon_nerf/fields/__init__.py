"""Coordinate fields: encodings, activations and the MLP builder (see ``mlp.ARCHITECTURES``)."""

from muon_nerf.fields.mlp import ARCHITECTURES, Arch, FieldConfig, MLPField

__all__ = ["ARCHITECTURES", "Arch", "FieldConfig", "MLPField"]
