"""Configs of the muon-nerf methods: the model config and the trainer configs ``ns-train`` lists.

This module is imported by ``muon_nerf.method_configs`` whenever any ``ns-*`` command starts, so
it imports only config dataclasses: the model, the field and LPIPS are imported when a model is
built (``_target`` is a small factory, not the class).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from nerfstudio.configs.base_config import ViewerConfig
from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManagerConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.models.base_model import ModelConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig

from muon_nerf.nerf.optimizers import FloatExponentialDecaySchedulerConfig, MuonOptimizerConfig

NeRFArch = Literal["relu_pe", "siren", "finer"]
HiddenOptimizer = Literal["muon", "adam"]


def _build_model(config: MuonNeRFModelConfig, **kwargs: Any):  # noqa: ANN202 - returns MuonNeRFModel
    """``_target`` of the model config: imports the model only when one is built."""
    from muon_nerf.nerf.model import MuonNeRFModel

    return MuonNeRFModel(config, **kwargs)


@dataclass
class MuonNeRFModelConfig(ModelConfig):
    """A NeRF whose field is our plain MLP; its hidden weights form their own param group."""

    _target: type = field(default_factory=lambda: _build_model)
    arch: NeRFArch = "relu_pe"
    """Position MLP: relu_pe (ReLU + NeRF positional encoding), siren or finer."""
    num_layers: int = 6
    """Linear layers of the position MLP: first + (num_layers-2) hidden (Muon) + last."""
    width: int = 256
    omega: float = 30.0
    """ω0 of SIREN/FINER (first layer and hidden layers)."""
    fold_omega: bool | None = None
    """Store ω0·W for SIREN/FINER hidden layers, so that Muon's spectral-norm step acts on the
    effective matrix (unfolded, a Muon step of lr moves the pre-activation by ω0·lr). None: fold
    exactly when the hidden weights are on Muon, so the Adam baseline is the usual SIREN/FINER."""
    pe_frequencies: int = 10
    """Octaves of the positional encoding (relu_pe) on positions normalized to [-1, 1]."""
    geo_feat_dim: int = 64
    """Features the position MLP passes to the colour head besides density."""
    head_width: int = 128
    head_layers: int = 2
    """Linear layers of the view-dependent colour head (always ReLU, always on Adam)."""
    dir_frequencies: int = 4
    density_bias: float = -1.0
    """Density is softplus(raw + bias) (mip-NeRF): empty space at init, no dead ReLU."""
    hidden_optimizer: HiddenOptimizer = "muon"
    """muon: hidden weights form the ``fields_muon`` param group; adam: they stay in ``fields``."""
    muon_first_layer: bool = False
    """Also put the first layer's weight on Muon (the paper finds this hurts)."""
    num_coarse_samples: int = 64
    """Uniform samples per ray (coarse pass)."""
    num_importance_samples: int = 64
    """Extra samples per ray drawn from the coarse weights (fine pass, which also re-uses the
    coarse samples). One field serves both passes, as in mip-NeRF."""
    background_color: Literal["random", "last_sample", "black", "white"] = "white"
    predict_normals: bool = True
    """At inference only: render normals from the density gradient (``ns-export pointcloud``'s
    default normal method needs them; costs one backward pass per render chunk)."""
    eval_num_rays_per_chunk: int = 2048
    rank_log_every: int = 500
    """Steps between logs of each hidden matrix's stable rank (tensorboard/wandb/viewer)."""


def trainer_config(
    method_name: str,
    hidden_optimizer: HiddenOptimizer = "muon",
    arch: NeRFArch = "relu_pe",
    max_num_iterations: int = 30000,
) -> TrainerConfig:
    """The trainer config of one registered method. Both optimizer entries are always present so
    that ``--pipeline.model.hidden-optimizer`` can be flipped on any method."""
    return TrainerConfig(
        method_name=method_name,
        steps_per_eval_batch=500,
        steps_per_eval_image=1000,
        steps_per_save=2000,
        max_num_iterations=max_num_iterations,
        mixed_precision=False,
        pipeline=VanillaPipelineConfig(
            datamanager=VanillaDataManagerConfig(
                dataparser=NerfstudioDataParserConfig(),
                train_num_rays_per_batch=1024,
                eval_num_rays_per_batch=1024,
            ),
            model=MuonNeRFModelConfig(arch=arch, hidden_optimizer=hidden_optimizer),
        ),
        optimizers={
            "fields": {
                "optimizer": AdamOptimizerConfig(lr=5e-4, eps=1e-8),
                "scheduler": FloatExponentialDecaySchedulerConfig(
                    lr_final=5e-5, max_steps=max_num_iterations
                ),
            },
            "fields_muon": {
                "optimizer": MuonOptimizerConfig(lr=0.02),
                "scheduler": FloatExponentialDecaySchedulerConfig(
                    lr_final=2e-3, max_steps=max_num_iterations
                ),
            },
        },
        viewer=ViewerConfig(num_rays_per_chunk=1 << 12),
        vis="viewer",
    )
