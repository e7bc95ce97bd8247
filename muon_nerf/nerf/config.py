"""Configs of the muon-nerf methods: the model config and the trainer configs ``ns-train`` lists.

This module is imported by ``muon_nerf.method_configs`` whenever any ``ns-*`` command starts, so
it imports only config dataclasses: the model, the field and LPIPS are imported when a model is
built (``_target`` is a small factory, not the class).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from nerfstudio.configs.base_config import ViewerConfig
from nerfstudio.data.datamanagers.base_datamanager import DataManagerConfig, VanillaDataManagerConfig
from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.models.base_model import ModelConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig

from muon_nerf.fields import Arch, FieldConfig
from muon_nerf.fields.activations import ActivationConfig
from muon_nerf.fit.errors import InputError
from muon_nerf.nerf.optimizers import FloatExponentialDecaySchedulerConfig, MuonOptimizerConfig
from muon_nerf.optim import MUON_LR, OptimizerName

NERF_ADAM_LR = 5e-4
"""Adam's lr for everything but the hidden matrices (vanilla NeRF's)."""


def _build_model(config: MuonNeRFModelConfig, **kwargs: Any):  # noqa: ANN202 - returns MuonNeRFModel
    """``_target`` of the model config: imports the model only when one is built."""
    from muon_nerf.nerf.model import MuonNeRFModel

    return MuonNeRFModel(config, **kwargs)


@dataclass
class MuonNeRFModelConfig(ModelConfig):
    """A NeRF whose field is our plain MLP; its hidden weights form their own param group."""

    _target: Callable[..., Any] = field(default_factory=lambda: _build_model)
    field: FieldConfig = field(default_factory=lambda: position_mlp("relu_pe"))
    """The position MLP: the same config as every other front end's field (``arch`` any zoo
    architecture; its encoding, activation, init and ω-folding). Positions are normalized to
    [-1, 1]³ by the scene box; the hidden weights (num_layers-2 of them) go to Muon."""
    geo_feat_dim: int = 64
    """Features the position MLP passes to the colour head besides density."""
    head_width: int = 128
    head_layers: int = 2
    """Linear layers of the view-dependent colour head (always ReLU, always on Adam)."""
    dir_frequencies: int = 4
    density_bias: float = -1.0
    """Density is softplus(raw + bias) (mip-NeRF): empty space at init, no dead ReLU."""
    hidden_optimizer: OptimizerName = "muon"
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


def position_mlp(arch: Arch) -> FieldConfig:
    """The NeRF position MLP's defaults: 6 linear layers × 256 (vanilla NeRF's width), ω0 30."""
    return FieldConfig(arch=arch, num_layers=6, width=256, activation=ActivationConfig(omega=30.0))


def data_path(datamanager: DataManagerConfig) -> Path | None:
    """The scene path a run will read: ``--data`` (nerfstudio copies it to the datamanager, which
    hands it to the dataparser at setup), else the dataparser's own ``data``."""
    data = getattr(datamanager, "data", None)
    if data is None:
        data = getattr(getattr(datamanager, "dataparser", None), "data", None)
    return None if data is None else Path(data)


BLENDER_FILES = ("transforms_train.json", "transforms_val.json")
"""What ``blender-data`` reads when ``ns-train`` sets up (train split, then the eval split)."""
BLENDER_SCENE = "Blender-format scene folder (transforms_train.json, transforms_val.json)"


def check_data(datamanager: DataManagerConfig) -> None:
    """Raise ``InputError`` (one line, naming the path) if the scene cannot be what the chosen
    dataparser reads: a path that does not exist (any dataparser); for ``blender-data`` anything
    but a folder with ``transforms_train.json`` and ``transforms_val.json``; for
    ``nerfstudio-data`` (the default) anything but a ``.json`` file or a folder with
    ``transforms.json``. Other dataparsers get the existence check only."""
    path = data_path(datamanager)
    if path is None:
        return
    dataparser = getattr(datamanager, "dataparser", None)
    if not path.exists():
        raise InputError(f"data path {path} does not exist")
    if isinstance(dataparser, BlenderDataParserConfig):
        if not path.is_dir():
            raise InputError(f"data path {path} is not a folder: blender-data reads a {BLENDER_SCENE}")
        for name in BLENDER_FILES:
            if not (path / name).is_file():
                raise InputError(f"{path / name} not found: blender-data reads a {BLENDER_SCENE}")
    elif isinstance(dataparser, NerfstudioDataParserConfig):
        if path.is_dir():
            if not (path / "transforms.json").is_file():
                hint = (
                    " (a Blender-format scene? put the blender-data subcommand after the flags)"
                    if (path / BLENDER_FILES[0]).is_file()
                    else ""
                )
                raise InputError(f"{path / 'transforms.json'} not found: nerfstudio-data reads it{hint}")
        elif path.suffix != ".json":
            raise InputError(f"data path {path} is neither a folder nor a .json file (nerfstudio-data)")


@dataclass
class MuonNeRFTrainerConfig(TrainerConfig):
    """nerfstudio's ``TrainerConfig`` plus a data check that runs in ``ns-train`` before it writes
    anything.

    Why ``print_to_terminal``: ``ns-train``'s ``main()`` copies ``--data`` into the datamanager,
    loads ``--load-config`` if given, then calls ``set_timestamp()``, ``print_to_terminal()`` and
    ``save_config()`` (which creates ``outputs/…`` and writes ``config.yml``) before the
    dataparser first looks at the data in ``Trainer.setup()``. ``print_to_terminal`` is the first
    of these that only ``ns-train`` calls (our in-process benchmarks and tests call
    ``set_timestamp``/``save_config`` themselves and check nothing), and it sees the final
    config. ``__post_init__`` would not do: it runs when the method registry is imported by every
    ``ns-*`` command and when tyro builds defaults, before ``--data`` is applied; nerfstudio's
    dataparsers fail only in ``Trainer.setup()``, after ``config.yml`` is written, with a
    traceback. So a bad path ends the process here with one ``error: …`` line on stderr and exit
    status 2, as every other command of this project does (``muon_nerf.fit.errors``).
    """

    def print_to_terminal(self) -> None:
        try:
            check_data(self.pipeline.datamanager)
        except InputError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        super().print_to_terminal()


def trainer_config(
    method_name: str,
    hidden_optimizer: OptimizerName = "muon",
    arch: Arch = "relu_pe",
    max_num_iterations: int = 30000,
) -> MuonNeRFTrainerConfig:
    """The trainer config of one registered method. Every param group's optimizer entry is always
    present (``fields``: Adam; ``fields_muon``: Muon; ``fields_encoding``: Adam with instant-ngp's
    lr and eps, used by trainable encodings), so ``--pipeline.model.hidden-optimizer`` can be
    flipped and ``--pipeline.model.field.arch`` changed on any method."""
    return MuonNeRFTrainerConfig(
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
            model=MuonNeRFModelConfig(field=position_mlp(arch), hidden_optimizer=hidden_optimizer),
        ),
        optimizers={
            "fields": {
                "optimizer": AdamOptimizerConfig(lr=NERF_ADAM_LR, eps=1e-8),
                "scheduler": FloatExponentialDecaySchedulerConfig(
                    lr_final=NERF_ADAM_LR / 10, max_steps=max_num_iterations
                ),
            },
            "fields_muon": {
                "optimizer": MuonOptimizerConfig(),
                "scheduler": FloatExponentialDecaySchedulerConfig(
                    lr_final=MUON_LR / 10, max_steps=max_num_iterations
                ),
            },
            "fields_encoding": {
                "optimizer": AdamOptimizerConfig(lr=1e-2, eps=1e-15),
                "scheduler": FloatExponentialDecaySchedulerConfig(
                    lr_final=1e-3, max_steps=max_num_iterations
                ),
            },
        },
        viewer=ViewerConfig(num_rays_per_chunk=1 << 12),
        vis="viewer",
    )
