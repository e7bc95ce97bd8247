"""Configs of the muon-nerf methods: the model config and the trainer configs ``ns-train`` lists.

This module is imported by ``muon_nerf.method_configs`` whenever any ``ns-*`` command starts, so
it imports only config dataclasses: the model, the field and LPIPS are imported when a model is
built (``_target`` is a small factory, not the class).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from nerfstudio.configs.base_config import ViewerConfig
from nerfstudio.data.datamanagers.base_datamanager import DataManagerConfig, VanillaDataManagerConfig
from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
from nerfstudio.data.dataparsers.instant_ngp_dataparser import InstantNGPDataParserConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.models.base_model import ModelConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig

from muon_nerf.fields import Arch, FieldConfig
from muon_nerf.fields.activations import ActivationConfig
from muon_nerf.fields.encodings import EncodingConfig
from muon_nerf.fields.hashgrid import HashGridConfig
from muon_nerf.fit.device import check_device
from muon_nerf.fit.errors import InputError
from muon_nerf.nerf.captures import check_capture, read_transforms
from muon_nerf.nerf.optimizers import (
    FloatExponentialDecaySchedulerConfig,
    MuonOptimizerConfig,
    check_schedule,
)
from muon_nerf.nerf.scene import (
    Background,
    Contraction,
    InitialSampler,
    MuonPipeline,
    PoseRefinement,
    SceneKind,
)
from muon_nerf.optim import MUON_LR, OptimizerName
from muon_nerf.runs.task import Lrs
from muon_nerf.runs.tuned import TUNED_PATH, tuned_lrs

NERF_ADAM_LR = 5e-4
"""Adam's lr for everything but the hidden matrices (vanilla NeRF's), where no tuned row sets it."""
NGP_ADAM_LR = 1e-2
"""Adam's lr (eps 1e-15) of instant-ngp and nerfacto: hash tables, proposal networks, and (where
no tuned row sets it) the ``fields`` group of ``muon-ngp``."""
NERF_TASK = "nerf"
"""The task of the NeRF rows in the tuned-lr table (``scripts/tune_nerf.py``): one per position
field arch, and ``ngp`` for ``muon-ngp``'s model."""
NGP_ARCH = "ngp"


def method_lrs(arch: str, table: Path = TUNED_PATH) -> tuple[Lrs, str]:
    """The lrs of a method's tuned groups (``fields``: ``lr`` in Adam runs, ``muon_adam_lr`` in
    Muon runs; ``fields_muon``: ``muon_lr``) for ``arch`` (a field arch, or ``ngp``), and where
    they come from: the NeRF row of the tuned table (``table``: the shipped one unless a benchmark
    tries another), else :func:`untuned_lrs`."""
    row = tuned_lrs(NERF_TASK, arch, table)
    if row is not None:
        return row, f"tuned: {NERF_TASK}/{arch}"
    return untuned_lrs(arch), "defaults"


def untuned_lrs(arch: str) -> Lrs:
    """The lrs before (and, for an arch without a row, besides) the tuned table's NeRF rows: Adam
    at instant-ngp's lr for ``ngp``, vanilla NeRF's for a position-MLP field; Muon at its own."""
    adam = NGP_ADAM_LR if arch == NGP_ARCH else NERF_ADAM_LR
    return Lrs(adam, MUON_LR, adam)


def tuned_groups(hidden_optimizer: OptimizerName) -> tuple[str, ...]:
    """The tunable param groups a run of ``hidden_optimizer`` trains (an Adam run's
    ``fields_muon`` is empty)."""
    return ("fields",) if hidden_optimizer == "adam" else ("fields", "fields_muon")


def group_lrs(lrs: Lrs, hidden_optimizer: OptimizerName) -> dict[str, float]:
    """The lr of each tunable group a run of ``hidden_optimizer`` trains: ``fields`` (``lrs.lr``
    for Adam; ``lrs.muon_adam_lr``, else ``lrs.lr``, for Muon) and, for Muon, ``fields_muon``."""
    adam = lrs.lr if hidden_optimizer == "adam" or lrs.muon_adam_lr is None else lrs.muon_adam_lr
    if adam is None or (hidden_optimizer == "muon" and lrs.muon_lr is None):
        raise ValueError(f"a {hidden_optimizer} run's lrs lack the lr of a group it trains: {lrs}")
    values = {"fields": adam, "fields_muon": lrs.muon_lr}
    return {name: values[name] for name in tuned_groups(hidden_optimizer)}


def set_lrs(config: TrainerConfig, lrs: Lrs, hidden_optimizer: OptimizerName) -> None:
    """Give ``config``'s groups the lrs of :func:`group_lrs` (an Adam run's ``fields_muon`` keeps
    its lr: that group is empty there). Every schedule derives its final lr from these
    (``decay``), so the 10× decay is kept."""
    for name, lr in group_lrs(lrs, hidden_optimizer).items():
        config.optimizers[name]["optimizer"].lr = lr


def tuned_group_lrs(config: TrainerConfig, hidden_optimizer: OptimizerName) -> dict[str, float]:
    """The lrs of :func:`tuned_groups` in ``config``, as a run's record names them."""
    return {name: float(config.optimizers[name]["optimizer"].lr) for name in tuned_groups(hidden_optimizer)}


def _build_model(config: MuonNeRFModelConfig, **kwargs: Any):  # noqa: ANN202 - returns MuonNeRFModel
    """``_target`` of the model config: imports the model only when one is built."""
    from muon_nerf.nerf.model import MuonNeRFModel

    return MuonNeRFModel(config, **kwargs)


def _nerfacto_proposal_nets() -> list[dict[str, Any]]:
    return [
        {"hidden_dim": 16, "log2_hashmap_size": 17, "num_levels": 5, "max_res": 128, "use_linear": False},
        {"hidden_dim": 16, "log2_hashmap_size": 17, "num_levels": 5, "max_res": 256, "use_linear": False},
    ]


@dataclass
class ProposalConfig:
    """nerfacto's proposal-network sampling (``sampler proposal``); defaults are nerfacto's.

    Each proposal pass samples the ray (the first from the model's ``initial_sampler``, the next
    ones from the previous pass's weights) and evaluates a small hash-grid density field
    (``HashMLPDensityField``, pure torch unless ``implementation tcnn``); our field is evaluated
    only on the final ``num_nerf_samples_per_ray`` samples. The proposal networks train with Adam
    in the ``proposal_networks`` param group, through the interlevel and distortion losses."""

    num_proposal_samples_per_ray: tuple[int, ...] = (256, 96)
    """Samples per ray of each proposal pass: one pass (and one proposal network) per entry."""
    num_nerf_samples_per_ray: int = 48
    """Samples per ray where our field is evaluated (the final pass)."""
    proposal_net_args_list: list[dict[str, Any]] = field(default_factory=_nerfacto_proposal_nets)
    """Keyword arguments of each proposal network's HashMLPDensityField (pass i uses entry
    min(i, len - 1)): hidden_dim, log2_hashmap_size, num_levels, max_res, use_linear, and
    optionally num_layers, base_res, features_per_level."""
    use_same_proposal_network: bool = False
    """One proposal network (the first entry's) for every pass."""
    use_single_jitter: bool = True
    """One stratification jitter per ray instead of one per sample."""
    proposal_update_every: int = 5
    """After the warmup, the proposal networks get gradients every this many steps."""
    proposal_warmup: int = 5000
    """Steps over which the update interval grows from 1 to proposal-update-every."""
    use_proposal_weight_anneal: bool = True
    """Anneal the proposal weights (mip-NeRF 360 eq. 18) before each resampling."""
    proposal_weights_anneal_slope: float = 10.0
    """Slope b of the annealing exponent b·f / ((b − 1)·f + 1), f the fraction of the steps below."""
    proposal_weights_anneal_max_num_iters: int = 1000
    """Steps until the annealing exponent reaches 1."""
    interlevel_loss_mult: float = 1.0
    """Weight of the interlevel (proposal) loss: proposal weights must bound the field's."""
    distortion_loss_mult: float = 0.002
    """Weight of mip-NeRF 360's distortion loss on all passes' weights."""
    average_init_density: float = 0.01
    """Proposal densities are this × exp(raw) (nerfacto's method config: 0.01)."""
    implementation: Literal["torch", "tcnn"] = "torch"
    """Proposal networks in pure torch (default) or tiny-cuda-nn (needs it installed)."""


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
    sampler: Literal["coarse_fine", "proposal"] = "coarse_fine"
    """coarse_fine: our field on uniform then importance samples (num-coarse-samples,
    num-importance-samples), both passes rendered and supervised; proposal: nerfacto's proposal
    networks choose the samples, our field is evaluated once, on the last ones (proposal.*)."""
    num_coarse_samples: int = 64
    """Uniform samples per ray (coarse pass; sampler coarse_fine)."""
    num_importance_samples: int = 64
    """Extra samples per ray drawn from the coarse weights (fine pass, which also re-uses the
    coarse samples; sampler coarse_fine). One field serves both passes, as in mip-NeRF."""
    proposal: ProposalConfig = dataclasses.field(default_factory=ProposalConfig)  # `field` is shadowed
    """Proposal-network sampling (sampler proposal)."""
    scene: SceneKind = "auto"
    """bounded (Blender-format scenes) or unbounded (captures); auto: from the dataparser, when the
    pipeline is set up. The kind sets the six settings below that are left None
    (``muon_nerf/nerf/scene.py``: bounded: no contraction, near 2 / far 6, uniform samples, white
    background, no appearance embedding or pose refinement; unbounded: nerfacto's — L∞
    contraction, near 0.05 / far 1000, piecewise samples, last_sample background, a 32-d
    appearance embedding, SO3xR3 pose refinement). The run prints what it chose."""
    collider_params: dict[str, float] | None = None
    """near_plane and far_plane of the rays; None: the scene kind's."""
    contraction: Contraction | None = None
    """Scene contraction of positions before the field's encoding (and the proposal networks'):
    off, l2 or linf (nerfacto's); None: the scene kind's."""
    initial_sampler: InitialSampler | None = None
    """First samples of a ray (coarse pass, or first proposal pass): uniform between near and far,
    or piecewise (linear up to distance 1, then linear in disparity); None: the scene kind's."""
    background_color: Background | None = None
    """None: the scene kind's."""
    appearance_embedding_dim: int | None = None
    """Per-training-image appearance code for the colour head (0: none; evaluation uses the mean
    code); None: the scene kind's."""
    pose_refinement: PoseRefinement | None = None
    """Camera pose refinement (nerfstudio's camera optimizer, param group ``camera_opt``): off,
    SO3xR3 or SE3; None: the scene kind's."""
    predict_normals: bool = True
    """At inference only: render normals from the density gradient (``ns-export pointcloud``'s
    default normal method needs them; costs one backward pass per render chunk)."""
    eval_num_rays_per_chunk: int = 2048
    rank_log_every: int = 500
    """Steps between logs of each hidden matrix's stable rank (tensorboard/wandb/viewer)."""


def position_mlp(arch: Arch) -> FieldConfig:
    """The NeRF position MLP's defaults: 6 linear layers × 256 (vanilla NeRF's width), ω0 30."""
    return FieldConfig(arch=arch, num_layers=6, width=256, activation=ActivationConfig(omega=30.0))


def ngp_mlp() -> FieldConfig:
    """``muon-ngp``'s position field: instant-ngp's hash grid (16 levels × 2 features, 2^19 rows,
    resolutions 16 … 2048 as nerfacto's) and a ReLU MLP of 4 linear layers × 64 (two 64×64 hidden
    matrices for Muon; nerfacto's has none: 2 layers)."""
    return FieldConfig(
        arch="hash",
        num_layers=4,
        width=64,
        encoding=EncodingConfig(hash=HashGridConfig(hash_finest_resolution=2048)),
    )


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
    ``transforms.json``, and for it and ``instant-ngp-data`` a capture that ``check_capture``
    refuses (missing or unreadable images, bad poses, sizes, splits). Other dataparsers get the
    existence check only."""
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
            read_transforms(path / name)
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
        check_capture(path, downscale_factor=dataparser.downscale_factor)
    elif isinstance(dataparser, InstantNGPDataParserConfig):
        check_capture(path, dataparser="instant-ngp-data")


@dataclass
class MuonPipelineConfig(VanillaPipelineConfig):
    """nerfstudio's pipeline config; its pipeline resolves ``scene auto`` from the dataparser."""

    _target: type = field(default_factory=lambda: MuonPipeline)


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
            for name, scheduler in self._decay_schedules():
                try:
                    check_schedule(scheduler)
                except ValueError as err:
                    raise InputError(f"--optimizers.{name}.{err}") from None
            if (
                self.machine.device_type == "cuda"
                and not _device_flag_given()
                and not torch.cuda.is_available()
            ):
                # nerfstudio's default, not the user's choice: a machine without CUDA trains on the CPU
                self.machine.device_type = "cpu"
                print(
                    "machine: cpu (no CUDA device here; on a CPU train at a smaller batch and budget, "
                    "see docs/nerf.md; --machine.device-type cuda insists)"
                )
            if self.machine.device_type in ("cuda", "mps"):
                try:
                    check_device(self.machine.device_type)
                except ValueError as err:
                    reason = str(err).split(": ", 1)[-1].replace("--device", "--machine.device-type")
                    raise InputError(f"--machine.device-type {self.machine.device_type}: {reason}") from None
        except InputError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        super().print_to_terminal()

    def resolve_schedules(self) -> None:
        """Give every decay schedule left without ``max_steps`` the run's ``max_num_iterations``
        (known only once the command line is applied, after the method config is built). The
        trainer does this in ``setup``; code that builds nerfstudio's ``Optimizers`` from this
        config itself calls it first."""
        for _, scheduler in self._decay_schedules():
            if scheduler.max_steps is None:
                scheduler.max_steps = self.max_num_iterations

    def _decay_schedules(self) -> list[tuple[str, FloatExponentialDecaySchedulerConfig]]:
        """Each param group's schedule that is ours (decay-derived, run-length aware), by group."""
        return [
            (name, entry["scheduler"])
            for name, entry in self.optimizers.items()
            if isinstance(entry.get("scheduler"), FloatExponentialDecaySchedulerConfig)
        ]

    def setup(self, **kwargs: Any) -> Any:
        """The trainer, its schedules resolved (``resolve_schedules``)."""
        self.resolve_schedules()
        return super().setup(**kwargs)


def _device_flag_given() -> bool:
    """Whether ``ns-train``'s command line sets the device (any spelling tyro accepts)."""
    names = ("--machine.device-type", "--machine.device_type")
    return any(arg in names or arg.startswith(tuple(f"{n}=" for n in names)) for arg in sys.argv[1:])


def trainer_config(
    method_name: str,
    hidden_optimizer: OptimizerName = "muon",
    arch: Arch = "relu_pe",
    max_num_iterations: int = 30000,
) -> MuonNeRFTrainerConfig:
    """The trainer config of one registered method. Every param group's optimizer entry is always
    present (``fields``: Adam; ``fields_muon``: Muon; ``fields_encoding``: Adam with instant-ngp's
    lr and eps, used by trainable encodings; ``proposal_networks``: Adam with nerfacto's lr and
    eps, used by ``sampler proposal``; ``camera_opt``: nerfacto's, used by pose refinement), so
    ``--pipeline.model.hidden-optimizer`` can be flipped, ``--pipeline.model.field.arch``,
    ``--pipeline.model.sampler`` and the scene settings changed on any method. Every schedule but
    the camera optimizer's (nerfacto's) decays 10× over ``max_num_iterations`` (float-safe).
    The ``fields`` and ``fields_muon`` lrs are the tuned table's row of ``arch`` where it has one
    (:func:`method_lrs`)."""
    config = MuonNeRFTrainerConfig(
        method_name=method_name,
        steps_per_eval_batch=500,
        steps_per_eval_image=1000,
        steps_per_save=2000,
        max_num_iterations=max_num_iterations,
        mixed_precision=False,
        pipeline=MuonPipelineConfig(
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
                "scheduler": FloatExponentialDecaySchedulerConfig(decay=10),
            },
            "fields_muon": {
                "optimizer": MuonOptimizerConfig(),
                "scheduler": FloatExponentialDecaySchedulerConfig(decay=10),
            },
            "fields_encoding": {
                "optimizer": AdamOptimizerConfig(lr=NGP_ADAM_LR, eps=1e-15),
                "scheduler": FloatExponentialDecaySchedulerConfig(decay=10),
            },
            "proposal_networks": {
                "optimizer": AdamOptimizerConfig(lr=NGP_ADAM_LR, eps=1e-15),
                "scheduler": FloatExponentialDecaySchedulerConfig(decay=10),
            },
            # nerfacto's camera optimizer schedule (pose refinement, unbounded scenes)
            "camera_opt": {
                "optimizer": AdamOptimizerConfig(lr=1e-3, eps=1e-15),
                "scheduler": FloatExponentialDecaySchedulerConfig(lr_final=1e-4, max_steps=5000),
            },
        },
        viewer=ViewerConfig(num_rays_per_chunk=1 << 12),
        vis="viewer",
    )
    set_lrs(config, method_lrs(arch)[0], hidden_optimizer)
    return config


def ngp_trainer_config(
    method_name: str, hidden_optimizer: OptimizerName = "muon", max_num_iterations: int = 30000
) -> MuonNeRFTrainerConfig:
    """``muon-ngp`` / ``muon-ngp-adam``: our model at nerfacto's scale. The position field is
    :func:`ngp_mlp` (hash tables in ``fields_encoding``; the two 64×64 hidden matrices on Muon
    or Adam), 15 geometry features, a colour head of 3 layers × 64 (nerfacto's), proposal
    sampling (nerfacto's (256, 96) + 48 samples), 4096 rays per batch, and Adam at instant-ngp's
    eps 1e-15 for the ``fields`` group too, its lr and Muon's the table's ``ngp`` row where it has
    one (instant-ngp's 1e-2 where not). Everything else as :func:`trainer_config`."""
    config = trainer_config(method_name, hidden_optimizer, "hash", max_num_iterations)
    model = config.pipeline.model
    assert isinstance(model, MuonNeRFModelConfig)
    model.field = ngp_mlp()
    model.geo_feat_dim = 15
    model.head_layers = 3
    model.head_width = 64
    model.sampler = "proposal"
    model.eval_num_rays_per_chunk = 1 << 12
    datamanager = config.pipeline.datamanager
    assert isinstance(datamanager, VanillaDataManagerConfig)
    datamanager.train_num_rays_per_batch = datamanager.eval_num_rays_per_batch = 4096
    config.optimizers["fields"] = {
        "optimizer": AdamOptimizerConfig(lr=NGP_ADAM_LR, eps=1e-15),
        "scheduler": FloatExponentialDecaySchedulerConfig(decay=10),
    }
    set_lrs(config, method_lrs(NGP_ARCH)[0], hidden_optimizer)
    return config
