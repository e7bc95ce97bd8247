"""MuonNeRF: nerfstudio's NeRF components (samplers, renderers, losses) around our MLP field.

Sampling is coarse → fine with one field for both passes (mip-NeRF's choice): half the
parameters and half the Muon matrices of vanilla NeRF's two networks for the same number of
field evaluations. Outputs are ``rgb``, ``depth``, ``accumulation`` (the fine pass), their
``_coarse``/``_fine`` variants and, at inference, ``normals`` — the names the viewer,
``ns-render`` and ``ns-export pointcloud`` use by default.
"""

from __future__ import annotations

import torch
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.field_components.field_heads import FieldHeadNames
from nerfstudio.model_components.losses import MSELoss
from nerfstudio.model_components.ray_samplers import PDFSampler, UniformSampler
from nerfstudio.model_components.renderers import (
    AccumulationRenderer,
    DepthRenderer,
    NormalsRenderer,
    RGBRenderer,
)
from nerfstudio.model_components.shaders import NormalsShader
from nerfstudio.models.base_model import Model
from nerfstudio.utils import colormaps, misc, writer
from nerfstudio.utils.rich_utils import CONSOLE
from torch import Tensor
from torch.nn import Parameter

from muon_nerf.fit.diagnostics import stable_rank
from muon_nerf.fit.metrics import psnr, ssim
from muon_nerf.nerf.config import MuonNeRFModelConfig
from muon_nerf.nerf.field import MuonNeRFField
from muon_nerf.nerf.lpips import cached_lpips
from muon_nerf.optim import split_by_role

GROUP_NAMES = {"muon": "fields_muon", "adam": "fields", "encoding": "fields_encoding"}
"""nerfstudio param-group (and optimizer entry) name of each ``optim.split_by_role`` group."""


class MuonNeRFModel(Model):
    """NeRF with a plain-MLP field whose hidden weights nerfstudio hands to Muon."""

    config: MuonNeRFModelConfig

    def populate_modules(self) -> None:
        super().populate_modules()
        cfg = self.config
        self.field = MuonNeRFField(
            self.scene_box.aabb,
            cfg.field.under(cfg.hidden_optimizer),
            geo_feat_dim=cfg.geo_feat_dim,
            head_layers=cfg.head_layers,
            head_width=cfg.head_width,
            dir_frequencies=cfg.dir_frequencies,
            density_bias=cfg.density_bias,
        )
        self.sampler_uniform = UniformSampler(num_samples=cfg.num_coarse_samples)
        self.sampler_pdf = PDFSampler(num_samples=cfg.num_importance_samples)
        self.renderer_rgb = RGBRenderer(background_color=cfg.background_color)
        self.renderer_accumulation = AccumulationRenderer()
        self.renderer_depth = DepthRenderer()
        self.renderer_normals = NormalsRenderer()
        self.normals_shader = NormalsShader()
        self.rgb_loss = MSELoss()
        # LPIPS is kept out of the module tree: its AlexNet must not enter checkpoints, and a
        # checkpoint must load whether or not the weights are cached where it is evaluated.
        self._lpips, self._lpips_absent_reason = cached_lpips()
        self._lpips_reported = False

    def get_param_groups(self) -> dict[str, list[Parameter]]:
        """``fields_muon``: hidden weight matrices of the position MLP (by layer role);
        ``fields_encoding``: a trainable encoding's tensors; ``fields``: everything else. The same
        partition as every front end's (``optim.split_by_role``); empty groups (e.g.
        ``fields_muon`` under ``hidden_optimizer=adam``) are left out."""
        split = split_by_role(self.field, self.config.hidden_optimizer, self.config.muon_first_layer)
        return {GROUP_NAMES[name]: [pr.param for pr in prs] for name, prs in split.items() if prs}

    def get_training_callbacks(
        self, training_callback_attributes: TrainingCallbackAttributes
    ) -> list[TrainingCallback]:
        """Logs the stable rank of each hidden matrix: the quantity the paper says Muon keeps high."""
        return [
            TrainingCallback(
                where_to_run=[TrainingCallbackLocation.AFTER_TRAIN_ITERATION],
                update_every_num_iters=self.config.rank_log_every,
                func=self._log_ranks,
            )
        ]

    def _log_ranks(self, step: int) -> None:
        for name, w in self.field.mlp_base.hidden_weights().items():
            writer.put_scalar(name=f"stable_rank/{name}", scalar=stable_rank(w), step=step)

    def get_outputs(self, ray_bundle: RayBundle) -> dict[str, Tensor]:
        samples_coarse = self.sampler_uniform(ray_bundle)
        field_coarse = self.field(samples_coarse)
        weights_coarse = samples_coarse.get_weights(field_coarse[FieldHeadNames.DENSITY])

        samples_fine = self.sampler_pdf(ray_bundle, samples_coarse, weights_coarse)
        with_normals = self.config.predict_normals and not self.training
        field_fine = self.field(samples_fine, compute_normals=with_normals)
        weights_fine = samples_fine.get_weights(field_fine[FieldHeadNames.DENSITY])

        outputs: dict[str, Tensor] = {}
        for tag, samples, field_outputs, weights in (
            ("coarse", samples_coarse, field_coarse, weights_coarse),
            ("fine", samples_fine, field_fine, weights_fine),
        ):
            outputs[f"rgb_{tag}"] = self.renderer_rgb(rgb=field_outputs[FieldHeadNames.RGB], weights=weights)
            outputs[f"accumulation_{tag}"] = self.renderer_accumulation(weights)
            outputs[f"depth_{tag}"] = self.renderer_depth(weights, samples)
        for name in ("rgb", "accumulation", "depth"):
            outputs[name] = outputs[f"{name}_fine"]
        if with_normals:
            normals = self.renderer_normals(field_fine[FieldHeadNames.NORMALS], weights=weights_fine.detach())
            outputs["normals"] = self.normals_shader(normals.detach())
        return outputs

    def get_metrics_dict(self, outputs: dict[str, Tensor], batch: dict[str, Tensor]) -> dict[str, float]:
        image = self.renderer_rgb.blend_background(batch["image"].to(self.device))
        return {"psnr": psnr(outputs["rgb"].detach(), image)}

    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> dict[str, Tensor]:  # noqa: ANN001
        image = batch["image"].to(self.device)
        loss_dict = {}
        for tag in ("coarse", "fine"):
            pred, gt = self.renderer_rgb.blend_background_for_loss_computation(
                pred_image=outputs[f"rgb_{tag}"],
                pred_accumulation=outputs[f"accumulation_{tag}"],
                gt_image=image,
            )
            loss_dict[f"rgb_loss_{tag}"] = self.rgb_loss(gt, pred)
        return misc.scale_dict(loss_dict, self.config.loss_coefficients)

    def get_image_metrics_and_images(
        self, outputs: dict[str, Tensor], batch: dict[str, Tensor]
    ) -> tuple[dict[str, float], dict[str, Tensor]]:
        """PSNR/SSIM from ``muon_nerf.fit.metrics`` (checked against skimage); LPIPS only when
        its AlexNet weights are already cached, otherwise it is reported absent once."""
        image = self.renderer_rgb.blend_background(batch["image"].to(outputs["rgb"].device))
        rgb_coarse, rgb = outputs["rgb_coarse"].clamp(0, 1), outputs["rgb"].clamp(0, 1)
        metrics = {
            "psnr": psnr(rgb, image),
            "ssim": ssim(rgb, image),
            "coarse_psnr": psnr(rgb_coarse, image),
        }
        if self._lpips is not None:
            lpips = self._lpips.to(rgb.device)
            to_nchw = lambda t: t.permute(2, 0, 1)[None]
            metrics["lpips"] = float(lpips(to_nchw(rgb), to_nchw(image)))
        elif not self._lpips_reported:
            CONSOLE.print(f"[yellow]LPIPS absent: {self._lpips_absent_reason}")
            self._lpips_reported = True

        near, far = self._near_far()
        depth = [
            colormaps.apply_depth_colormap(
                outputs[f"depth_{tag}"],
                accumulation=outputs[f"accumulation_{tag}"],
                near_plane=near,
                far_plane=far,
            )
            for tag in ("coarse", "fine")
        ]
        accumulation = [
            colormaps.apply_colormap(outputs[f"accumulation_{tag}"]) for tag in ("coarse", "fine")
        ]
        images = {
            "img": torch.cat([image, rgb_coarse, rgb], dim=1),
            "accumulation": torch.cat(accumulation, dim=1),
            "depth": torch.cat(depth, dim=1),
        }
        return metrics, images

    def _near_far(self) -> tuple[float | None, float | None]:
        params = self.config.collider_params if self.config.enable_collider else None
        if not params:
            return None, None
        return params["near_plane"], params["far_plane"]
