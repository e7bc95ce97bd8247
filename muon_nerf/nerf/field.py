"""The NeRF field: our plain MLP on normalized positions, plus a small colour head.

position → [-1, 1]³ (scene box, or scene contraction) → ``MLPField`` (first, hidden…, last)
    → [raw density, geometry features]
[geometry features, encoded view direction, appearance code] → colour head (ReLU ``MLPField``) → RGB

Layer roles come from ``MLPField``: the position MLP's hidden weights are the matrices Muon
trains; the colour head (``head``) and the per-image appearance codes (``embedding``) stay on Adam
with the first/last layers and biases.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import torch
import torch.nn.functional as F
from jaxtyping import Float
from nerfstudio.cameras.rays import RaySamples
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.field_components.embedding import Embedding
from nerfstudio.field_components.field_heads import FieldHeadNames
from nerfstudio.field_components.spatial_distortions import SpatialDistortion
from nerfstudio.fields.base_field import Field
from torch import Tensor

from muon_nerf.fields import FieldConfig, MLPField, ParamRole
from muon_nerf.fields.encodings import PositionalEncoding


class MuonNeRFField(Field):
    """Density and view-dependent colour from two ``MLPField``s.

    Args:
        aabb: scene box; without ``contraction`` positions are mapped to [-1, 1]³ by it.
        position_mlp: config of the position MLP (arch, depth, width, encoding, activation,
            init, ω-folding: folded where its config says so).
        geo_feat_dim: features passed from the position MLP to the colour head.
        head_layers, head_width: the colour head (ReLU MLP).
        dir_frequencies: positional-encoding octaves of the view direction.
        density_bias: shift before the softplus density activation.
        contraction: scene contraction of world positions (nerfacto's convention: the unit cube
            is kept, all of space lands in [-2, 2]³, halved to [-1, 1]³), instead of the box.
        num_images, appearance_dim: one learned appearance code per training image for the
            colour head (photos of a capture differ in exposure and white balance); 0: none.
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
        contraction: SpatialDistortion | None = None,
        num_images: int = 0,
        appearance_dim: int = 0,
    ) -> None:
        super().__init__()
        self.register_buffer("aabb", aabb.clone().float())
        self.density_bias = density_bias
        self.contraction = contraction
        self.mlp_base = MLPField(position_mlp, in_dim=3, out_dim=1 + geo_feat_dim)
        self.direction_encoding = PositionalEncoding(3, dir_frequencies)
        if appearance_dim > 0 and num_images < 1:
            raise ValueError(f"an appearance embedding needs the number of training images, got {num_images}")
        self.appearance = Embedding(num_images, appearance_dim) if appearance_dim > 0 else None
        head = FieldConfig(arch="relu", num_layers=head_layers, width=head_width)
        head_in = geo_feat_dim + self.direction_encoding.out_dim + appearance_dim
        self.mlp_head = MLPField(head, in_dim=head_in, out_dim=3)

    def normalize(self, positions: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 3"]:
        """World positions → [-1, 1]³ (the range SIREN/PE/hash grids are designed for): over the
        scene box, or by the scene contraction."""
        if self.contraction is not None:
            return self.contraction(positions) / 2.0
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
        head_in = [density_embedding, directions]
        if self.appearance is not None:
            head_in.append(self._appearance_codes(ray_samples, directions.shape[:-1]))
        rgb = torch.sigmoid(self.mlp_head(torch.cat(head_in, dim=-1)))
        return {FieldHeadNames.RGB: rgb}

    def _appearance_codes(self, ray_samples: RaySamples, batch: torch.Size) -> Float[Tensor, "*bs a"]:
        """Each sample's training image's code in training; the mean code otherwise (nerfacto's
        convention: a held-out view has no code of its own)."""
        assert self.appearance is not None
        if self.training:
            if ray_samples.camera_indices is None:
                raise ValueError("an appearance embedding needs the rays' camera indices")
            return self.appearance(ray_samples.camera_indices.squeeze(-1))
        return self.appearance.mean(dim=0).expand(*batch, -1)

    def param_roles(self) -> Iterator[ParamRole]:
        """Every trainable tensor with its role: the position MLP's own roles; ``head`` for the
        colour head (Adam: it is a readout, not the representation Muon is for); ``embedding``
        for the appearance codes (Adam: a lookup table, not a layer)."""
        for pr in self.mlp_base.param_roles():
            yield replace(pr, name=f"mlp_base.{pr.name}")
        for pr in self.mlp_head.param_roles():
            yield ParamRole(f"mlp_head.{pr.name}", pr.param, "head", pr.is_weight)
        if self.appearance is not None:
            for name, param in self.appearance.named_parameters():
                yield ParamRole(f"appearance.{name}", param, "embedding", False)
