"""The NeRF field: our plain MLP on scene-box-normalized positions, plus a small colour head.

position → ``MLPField`` (first, hidden…, last) → [raw density, geometry features]
[geometry features, encoded view direction] → colour head (ReLU ``MLPField``) → RGB

Layer roles come from ``MLPField``: the position MLP's hidden weights are the matrices Muon
trains; the colour head is tagged ``head`` and stays on Adam with the first/last layers and biases.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import torch
import torch.nn.functional as F
from jaxtyping import Float
from nerfstudio.cameras.rays import RaySamples
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.field_components.field_heads import FieldHeadNames
from nerfstudio.fields.base_field import Field
from torch import Tensor

from muon_nerf.fields import FieldConfig, MLPField, ParamRole
from muon_nerf.fields.encodings import PositionalEncoding


class MuonNeRFField(Field):
    """Density and view-dependent colour from two ``MLPField``s.

    Args:
        aabb: scene box; positions are mapped to [-1, 1]³ by it before encoding.
        position_mlp: config of the position MLP (arch, depth, width, encoding, activation,
            init, ω-folding: folded where its config says so).
        geo_feat_dim: features passed from the position MLP to the colour head.
        head_layers, head_width: the colour head (ReLU MLP).
        dir_frequencies: positional-encoding octaves of the view direction.
        density_bias: shift before the softplus density activation.
    """

    def __init__(
        self,
        aabb: Float[Tensor, "2 3"],
        position_mlp: FieldConfig,
        geo_feat_dim: int = 64,
        head_layers: int = 2,
        head_width: int = 128,
        dir_frequencies: int = 4,
        density_bias: float = -1.0,
    ) -> None:
        super().__init__()
        self.register_buffer("aabb", aabb.clone().float())
        self.density_bias = density_bias
        self.mlp_base = MLPField(position_mlp, in_dim=3, out_dim=1 + geo_feat_dim)
        self.direction_encoding = PositionalEncoding(3, dir_frequencies)
        head = FieldConfig(arch="relu", num_layers=head_layers, width=head_width)
        self.mlp_head = MLPField(head, in_dim=geo_feat_dim + self.direction_encoding.out_dim, out_dim=3)

    def normalize(self, positions: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 3"]:
        """World positions → [-1, 1]³ over the scene box (the range SIREN/PE are designed for)."""
        return 2.0 * SceneBox.get_normalized_positions(positions, self.aabb) - 1.0

    def get_density(self, ray_samples: RaySamples) -> tuple[Float[Tensor, "*bs 1"], Float[Tensor, "*bs f"]]:
        positions = ray_samples.frustums.get_positions()
        if torch.is_grad_enabled() and not self.training and not positions.requires_grad:
            # inference under Field.forward(compute_normals=True): lets get_normals() differentiate
            # density with respect to positions (skipped in training, where it would cost a backward)
            positions.requires_grad_(True)
        self._sample_locations = positions
        out = self.mlp_base(self.normalize(positions))
        raw_density, features = out[..., :1], out[..., 1:]
        self._density_before_activation = raw_density
        return F.softplus(raw_density + self.density_bias), features

    def get_outputs(
        self, ray_samples: RaySamples, density_embedding: Tensor | None = None
    ) -> dict[FieldHeadNames, Tensor]:
        assert density_embedding is not None
        directions = self.direction_encoding(ray_samples.frustums.directions)
        rgb = torch.sigmoid(self.mlp_head(torch.cat([density_embedding, directions], dim=-1)))
        return {FieldHeadNames.RGB: rgb}

    def param_roles(self) -> Iterator[ParamRole]:
        """Every trainable tensor with its role: the position MLP's own roles; ``head`` for the
        colour head (Adam: it is a readout, not the representation Muon is for)."""
        for pr in self.mlp_base.param_roles():
            yield replace(pr, name=f"mlp_base.{pr.name}")
        for pr in self.mlp_head.param_roles():
            yield ParamRole(f"mlp_head.{pr.name}", pr.param, "head", pr.is_weight)
