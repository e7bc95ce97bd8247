"""MuonNeRF: nerfstudio's NeRF components (samplers, renderers, losses) around our MLP field.

Two samplers (``sampler``):

- ``coarse_fine`` (default): coarse → fine with one field for both passes (mip-NeRF's choice):
  half the parameters and half the Muon matrices of vanilla NeRF's two networks for the same
  number of field evaluations. Outputs ``rgb``, ``depth``, ``accumulation`` (the fine pass) and
  their ``_coarse``/``_fine`` variants.
- ``proposal``: nerfacto's proposal networks (``HashMLPDensityField``s, their own
  ``proposal_networks`` param group) pick the samples; our field is evaluated once, on the final
  ones. Outputs ``rgb``, ``depth``, ``accumulation`` and, at inference, ``prop_depth_i``; losses
  add nerfacto's interlevel and distortion terms.

Either way, at inference also ``normals``: the names the viewer, ``ns-render`` and
``ns-export pointcloud`` use by default.

The scene kind (``scene``, resolved by ``MuonPipeline``; ``muon_nerf/nerf/scene.py``) sets the
rest: contraction of positions (our field and the proposal networks), near/far planes, the first
samples, the background, the appearance embedding and pose refinement.
"""

from __future__ import annotations

import math

import torch
from nerfstudio.cameras.camera_optimizers import CameraOptimizerConfig
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.field_components.field_heads import FieldHeadNames
from nerfstudio.field_components.spatial_distortions import SceneContraction, SpatialDistortion
from nerfstudio.fields.density_fields import HashMLPDensityField
from nerfstudio.model_components.losses import MSELoss, distortion_loss, interlevel_loss
from nerfstudio.model_components.ray_samplers import (
    PDFSampler,
    ProposalNetworkSampler,
    UniformLinDispPiecewiseSampler,
    UniformSampler,
)
from nerfstudio.model_components.renderers import (
    AccumulationRenderer,
    DepthRenderer,
    NormalsRenderer,
    RGBRenderer,
)
from nerfstudio.model_components.scene_colliders import NearFarCollider
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
from muon_nerf.nerf.scene import SceneSettings, scene_settings
from muon_nerf.optim import split_by_role

GROUP_NAMES = {"muon": "fields_muon", "adam": "fields", "encoding": "fields_encoding"}
"""nerfstudio param-group (and optimizer entry) name of each ``optim.split_by_role`` group."""
PROPOSAL_GROUP = "proposal_networks"
"""Param group of the proposal networks (sampler proposal): Adam, as nerfacto's."""
CONTRACTION_ORDER = {"off": None, "l2": None, "linf": float("inf")}
"""``SceneContraction``'s norm order per contraction setting (None: its Frobenius, i.e. L2)."""


def contraction_module(settings: SceneSettings) -> SpatialDistortion | None:
    """mip-NeRF 360's contraction with the scene's norm, or None (positions by the scene box)."""
    if settings.contraction == "off":
        return None
    return SceneContraction(order=CONTRACTION_ORDER[settings.contraction])


class MuonNeRFModel(Model):
    """NeRF with a plain-MLP field whose hidden weights nerfstudio hands to Muon."""

    config: MuonNeRFModelConfig

    def populate_modules(self) -> None:
        # not super().populate_modules(): its collider reads collider_params, which here may be
        # None (the scene kind's near and far)
        cfg = self.config
        self.scene = scene_settings(cfg)
        CONSOLE.print(f"scene {self.scene.kind}: {self.scene.describe()}")
        if cfg.enable_collider:
            self.collider = NearFarCollider(near_plane=self.scene.near_plane, far_plane=self.scene.far_plane)
        self.contraction = contraction_module(self.scene)
        self.field = MuonNeRFField(
            self.scene_box.aabb,
            cfg.field.under(cfg.hidden_optimizer),
            geo_feat_dim=cfg.geo_feat_dim,
            head_layers=cfg.head_layers,
            head_width=cfg.head_width,
            dir_frequencies=cfg.dir_frequencies,
            density_bias=cfg.density_bias,
            contraction=self.contraction,
            num_images=self.num_train_data,
            appearance_dim=self.scene.appearance_embedding_dim,
        )
        self.camera_optimizer = CameraOptimizerConfig(mode=self.scene.pose_refinement).setup(
            num_cameras=self.num_train_data, device="cpu"
        )
        initial = (
            UniformSampler if self.scene.initial_sampler == "uniform" else UniformLinDispPiecewiseSampler
        )
        if cfg.sampler == "coarse_fine":
            self.sampler_uniform = initial(num_samples=cfg.num_coarse_samples)
            self.sampler_pdf = PDFSampler(num_samples=cfg.num_importance_samples)
        elif cfg.sampler == "proposal":
            self._populate_proposal(initial)
        else:
            raise ValueError(f"sampler must be 'coarse_fine' or 'proposal', got {cfg.sampler!r}")
        self.renderer_rgb = RGBRenderer(background_color=self.scene.background_color)
        self.renderer_accumulation = AccumulationRenderer()
        self.renderer_depth = DepthRenderer()
        self.renderer_normals = NormalsRenderer()
        self.normals_shader = NormalsShader()
        self.rgb_loss = MSELoss()
        # LPIPS is kept out of the module tree: its AlexNet must not enter checkpoints, and a
        # checkpoint must load whether or not the weights are cached where it is evaluated.
        self._lpips, self._lpips_absent_reason = cached_lpips()
        self._lpips_reported = False

    def _populate_proposal(
        self, initial: type[UniformSampler] | type[UniformLinDispPiecewiseSampler]
    ) -> None:
        """nerfacto's proposal networks and sampler (its ``populate_modules``), with the field's
        positions: contracted, or normalized by the scene box."""
        cfg = self.config.proposal
        passes = len(cfg.num_proposal_samples_per_ray)
        if passes < 1 or not cfg.proposal_net_args_list:
            raise ValueError(
                "sampler proposal needs at least one entry in proposal.num-proposal-samples-per-ray "
                "and in proposal.proposal-net-args-list"
            )

        def network(args: dict) -> HashMLPDensityField:
            return HashMLPDensityField(
                self.scene_box.aabb,
                spatial_distortion=self.contraction,
                **args,
                average_init_density=cfg.average_init_density,
                implementation=cfg.implementation,
            )

        args = cfg.proposal_net_args_list
        if cfg.use_same_proposal_network:
            self.proposal_networks = torch.nn.ModuleList([network(args[0])])
        else:
            self.proposal_networks = torch.nn.ModuleList(
                network(args[min(i, len(args) - 1)]) for i in range(passes)
            )
        nets = self.proposal_networks
        self.density_fns = [nets[min(i, len(nets) - 1)].density_fn for i in range(passes)]
        self.proposal_sampler = ProposalNetworkSampler(
            num_proposal_samples_per_ray=tuple(cfg.num_proposal_samples_per_ray),
            num_nerf_samples_per_ray=cfg.num_nerf_samples_per_ray,
            num_proposal_network_iterations=passes,
            single_jitter=cfg.use_single_jitter,
            update_sched=self._proposal_update_interval,
            initial_sampler=initial(single_jitter=cfg.use_single_jitter),
        )

    def _proposal_update_interval(self, step: int) -> float:
        """nerfacto's schedule: proposal networks get gradients every n steps, n growing from 1 to
        ``proposal_update_every`` over ``proposal_warmup`` steps."""
        cfg = self.config.proposal
        ramp = cfg.proposal_update_every * step / cfg.proposal_warmup if cfg.proposal_warmup > 0 else math.inf
        return float(min(max(ramp, 1.0), cfg.proposal_update_every))

    def _set_proposal_anneal(self, step: int) -> None:
        """mip-NeRF 360's weight annealing (eq. 18), as nerfacto's ``set_anneal``."""
        cfg = self.config.proposal
        span = cfg.proposal_weights_anneal_max_num_iters
        frac = min(max(step / span, 0.0), 1.0) if span > 0 else 1.0
        slope = cfg.proposal_weights_anneal_slope
        self.proposal_sampler.set_anneal(slope * frac / ((slope - 1) * frac + 1))

    def get_param_groups(self) -> dict[str, list[Parameter]]:
        """``fields_muon``: hidden weight matrices of the position MLP (by layer role);
        ``fields_encoding``: a trainable encoding's tensors; ``fields``: everything else of our
        field (appearance codes included); ``proposal_networks``: the proposal density fields
        (sampler proposal); ``camera_opt``: the pose corrections (pose refinement). The field's
        partition is every front end's (``optim.split_by_role``); empty groups (e.g.
        ``fields_muon`` under ``hidden_optimizer=adam``) are left out."""
        split = split_by_role(self.field, self.config.hidden_optimizer, self.config.muon_first_layer)
        groups = {GROUP_NAMES[name]: [pr.param for pr in prs] for name, prs in split.items() if prs}
        if self.config.sampler == "proposal":
            groups[PROPOSAL_GROUP] = [p for p in self.proposal_networks.parameters() if p.requires_grad]
        self.camera_optimizer.get_param_groups(param_groups=groups)
        return groups

    def get_training_callbacks(
        self, training_callback_attributes: TrainingCallbackAttributes
    ) -> list[TrainingCallback]:
        """Logs the stable rank of each hidden matrix: the quantity the paper says Muon keeps high.
        With the proposal sampler also nerfacto's: weight annealing before each iteration and the
        sampler's step count (its update schedule) after it."""
        callbacks = [
            TrainingCallback(
                where_to_run=[TrainingCallbackLocation.AFTER_TRAIN_ITERATION],
                update_every_num_iters=self.config.rank_log_every,
                func=self._log_ranks,
            )
        ]
        if self.config.sampler == "proposal":
            if self.config.proposal.use_proposal_weight_anneal:
                callbacks.append(
                    TrainingCallback(
                        where_to_run=[TrainingCallbackLocation.BEFORE_TRAIN_ITERATION],
                        update_every_num_iters=1,
                        func=self._set_proposal_anneal,
                    )
                )
            callbacks.append(
                TrainingCallback(
                    where_to_run=[TrainingCallbackLocation.AFTER_TRAIN_ITERATION],
                    update_every_num_iters=1,
                    func=self.proposal_sampler.step_cb,
                )
            )
        return callbacks

    def _log_ranks(self, step: int) -> None:
        for name, w in self.field.mlp_base.hidden_weights().items():
            writer.put_scalar(name=f"stable_rank/{name}", scalar=stable_rank(w), step=step)

    def get_outputs(self, ray_bundle: RayBundle) -> dict[str, Tensor]:
        if self.training:  # pose refinement: the training rays through the corrected poses
            self.camera_optimizer.apply_to_raybundle(ray_bundle)
        if self.config.sampler == "proposal":
            return self._proposal_outputs(ray_bundle)
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

    def _proposal_outputs(self, ray_bundle: RayBundle) -> dict:
        """nerfacto's ``get_outputs`` with our field: proposal passes, then one field pass."""
        samples, weights_list, samples_list = self.proposal_sampler(ray_bundle, density_fns=self.density_fns)
        with_normals = self.config.predict_normals and not self.training
        field_outputs = self.field(samples, compute_normals=with_normals)
        weights = samples.get_weights(field_outputs[FieldHeadNames.DENSITY])
        outputs: dict = {
            "rgb": self.renderer_rgb(rgb=field_outputs[FieldHeadNames.RGB], weights=weights),
            "accumulation": self.renderer_accumulation(weights),
            "depth": self.renderer_depth(weights, samples),
        }
        if self.training:  # the losses' inputs; lists, so kept out of rendered outputs
            outputs["weights_list"] = [*weights_list, weights]
            outputs["ray_samples_list"] = [*samples_list, samples]
        else:
            for i, (w, s) in enumerate(zip(weights_list, samples_list, strict=True)):
                outputs[f"prop_depth_{i}"] = self.renderer_depth(w, s)
        if with_normals:
            normals = self.renderer_normals(field_outputs[FieldHeadNames.NORMALS], weights=weights.detach())
            outputs["normals"] = self.normals_shader(normals.detach())
        return outputs

    def get_metrics_dict(self, outputs: dict[str, Tensor], batch: dict[str, Tensor]) -> dict[str, float]:
        image = self.renderer_rgb.blend_background(batch["image"].to(self.device))
        metrics = {"psnr": psnr(outputs["rgb"].detach(), image)}
        if "weights_list" in outputs:  # proposal sampler, training
            metrics["distortion"] = distortion_loss(outputs["weights_list"], outputs["ray_samples_list"])
        self.camera_optimizer.get_metrics_dict(metrics)
        return metrics

    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> dict[str, Tensor]:  # noqa: ANN001
        image = batch["image"].to(self.device)
        loss_dict = {}
        for suffix in ("_coarse", "_fine") if self.config.sampler == "coarse_fine" else ("",):
            pred, gt = self.renderer_rgb.blend_background_for_loss_computation(
                pred_image=outputs[f"rgb{suffix}"],
                pred_accumulation=outputs[f"accumulation{suffix}"],
                gt_image=image,
            )
            loss_dict[f"rgb_loss{suffix}"] = self.rgb_loss(gt, pred)
        if "weights_list" in outputs:  # proposal sampler, training
            cfg = self.config.proposal
            loss_dict["interlevel_loss"] = cfg.interlevel_loss_mult * interlevel_loss(
                outputs["weights_list"], outputs["ray_samples_list"]
            )
            distortion = (metrics_dict or {}).get("distortion")
            if distortion is None:
                distortion = distortion_loss(outputs["weights_list"], outputs["ray_samples_list"])
            loss_dict["distortion_loss"] = cfg.distortion_loss_mult * distortion
        if self.training:
            self.camera_optimizer.get_loss_dict(loss_dict)
        return misc.scale_dict(loss_dict, self.config.loss_coefficients)

    def get_image_metrics_and_images(
        self, outputs: dict[str, Tensor], batch: dict[str, Tensor]
    ) -> tuple[dict[str, float], dict[str, Tensor]]:
        """PSNR/SSIM from ``muon_nerf.fit.metrics`` (checked against skimage); LPIPS only when
        its AlexNet weights are already cached, otherwise it is reported absent once."""
        image = self.renderer_rgb.blend_background(batch["image"].to(outputs["rgb"].device))
        rgb = outputs["rgb"].clamp(0, 1)
        metrics = {"psnr": psnr(rgb, image), "ssim": ssim(rgb, image)}
        if self.config.sampler == "coarse_fine":
            rgb_coarse = outputs["rgb_coarse"].clamp(0, 1)
            metrics["coarse_psnr"] = psnr(rgb_coarse, image)
            panels = [image, rgb_coarse, rgb]
            tags = ("_coarse", "_fine")
            depths = [(outputs[f"depth{t}"], outputs[f"accumulation{t}"]) for t in tags]
            accumulations = [outputs[f"accumulation{t}"] for t in tags]
        else:  # proposal passes' depths, then the field's
            panels = [image, rgb]
            props = sorted((k for k in outputs if k.startswith("prop_depth_")), key=lambda k: int(k[11:]))
            depths = [(outputs[k], outputs["accumulation"]) for k in [*props, "depth"]]
            accumulations = [outputs["accumulation"]]
        if self._lpips is not None:
            lpips = self._lpips.to(rgb.device)
            to_nchw = lambda t: t.permute(2, 0, 1)[None]
            metrics["lpips"] = float(lpips(to_nchw(rgb), to_nchw(image)))
        elif not self._lpips_reported:
            CONSOLE.print(f"[yellow]LPIPS absent: {self._lpips_absent_reason}")
            self._lpips_reported = True

        near, far = self._near_far()
        depth = [
            colormaps.apply_depth_colormap(d, accumulation=acc, near_plane=near, far_plane=far)
            for d, acc in depths
        ]
        images = {
            "img": torch.cat(panels, dim=1),
            "accumulation": torch.cat([colormaps.apply_colormap(a) for a in accumulations], dim=1),
            "depth": torch.cat(depth, dim=1),
        }
        return metrics, images

    def _near_far(self) -> tuple[float | None, float | None]:
        """The depth colormap's range: the near and far planes of a bounded scene; an unbounded
        one's far plane (1000) would flatten it, so its range comes from the depths."""
        if self.scene.kind == "unbounded" or not self.config.enable_collider:
            return None, None
        return self.scene.near_plane, self.scene.far_plane
