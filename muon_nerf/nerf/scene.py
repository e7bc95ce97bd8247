"""The scene a NeRF trains on, and what it implies for the model.

Two kinds need different models. A **bounded** scene (Blender format: a synthetic object
composited on a known background) fits in the scene box: positions are normalized by the box,
rays are sampled uniformly between fixed near and far planes, the background is the known colour,
and the poses are exact. An **unbounded** scene (a real capture: nerfstudio-data, COLMAP,
instant-ngp data) has content at every distance, photos whose exposure varies, and poses from
structure-from-motion: nerfacto's answer is mip-NeRF 360's scene contraction before the field's
encoding, near 0.05 / far 1000 with samples linear then linear in disparity, the colour of the
last sample as background, a per-image appearance embedding and camera pose refinement.

``scene auto`` (the default) picks the kind from the dataparser when the pipeline is set up
(``MuonPipeline``); every setting the kind implies can be overridden on its own, and the run
prints what was chosen. The defaults of each kind are declared once, here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal

from nerfstudio.data.dataparsers.base_dataparser import DataParserConfig
from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
from nerfstudio.data.dataparsers.dnerf_dataparser import DNeRFDataParserConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipeline
from nerfstudio.utils.rich_utils import CONSOLE

SceneKind = Literal["auto", "bounded", "unbounded"]
Contraction = Literal["off", "l2", "linf"]
InitialSampler = Literal["uniform", "piecewise"]
Background = Literal["random", "last_sample", "black", "white"]
PoseRefinement = Literal["off", "SO3xR3", "SE3"]

BOUNDED_DATAPARSERS = (BlenderDataParserConfig, DNeRFDataParserConfig)
"""Dataparsers of synthetic scenes composited on a known background: ``auto`` makes them bounded;
every other dataparser reads captures and makes the scene unbounded."""


@dataclass(frozen=True)
class SceneSettings:
    """What the scene kind sets in the model (each overridable by the model config's field of the
    same name; ``near_plane``/``far_plane`` by ``collider-params``)."""

    kind: Literal["bounded", "unbounded"]
    contraction: Contraction
    """Scene contraction of positions before the field's encoding (mip-NeRF 360; ``linf`` is
    nerfacto's: the unit cube stays, the rest of space is squeezed into the cube of side 4)."""
    near_plane: float
    far_plane: float
    initial_sampler: InitialSampler
    """The first pass's samples: uniform between near and far, or linear up to distance 1 and then
    linear in disparity (nerfacto's ``UniformLinDispPiecewiseSampler``)."""
    background_color: Background
    appearance_embedding_dim: int
    """Per-training-image appearance code fed to the colour head (0: none). At evaluation the
    mean code is used (nerfacto's convention): test images have no code of their own."""
    pose_refinement: PoseRefinement
    """nerfstudio's camera optimizer (its own Adam group, ``camera_opt``)."""

    def describe(self) -> str:
        return (
            f"contraction {self.contraction}, near {self.near_plane:g}, far {self.far_plane:g}, "
            f"first samples {self.initial_sampler}, background {self.background_color}, "
            f"appearance embedding {self.appearance_embedding_dim or 'off'}, "
            f"pose refinement {self.pose_refinement}"
        )


SCENE_DEFAULTS = {
    # Blender: cameras at radius 4 around an object inside [-1.5, 1.5]^3, composited on white
    "bounded": SceneSettings("bounded", "off", 2.0, 6.0, "uniform", "white", 0, "off"),
    # nerfacto's capture settings (its method config and model defaults)
    "unbounded": SceneSettings("unbounded", "linf", 0.05, 1000.0, "piecewise", "last_sample", 32, "SO3xR3"),
}
OVERRIDES = (
    "contraction",
    "initial_sampler",
    "background_color",
    "appearance_embedding_dim",
    "pose_refinement",
)
"""Model config fields that override the kind's setting when not None."""


def dataparser_name(dataparser: DataParserConfig) -> str:
    """The dataparser's subcommand name (``nerfstudio-data``, ``blender-data``, …)."""
    from nerfstudio.configs.dataparser_configs import all_dataparsers

    for name, config in all_dataparsers.items():
        if type(config) is type(dataparser):
            return name
    return type(dataparser).__name__


def resolve_kind(
    kind: SceneKind, dataparser: DataParserConfig
) -> tuple[Literal["bounded", "unbounded"], str]:
    """``auto`` → bounded for Blender-format (and D-NeRF) scenes, unbounded for every dataparser
    of captures; an explicit kind stays. Returns the kind and why, for the run's log."""
    if kind != "auto":
        return kind, "set by --pipeline.model.scene"
    name = dataparser_name(dataparser)
    if isinstance(dataparser, BOUNDED_DATAPARSERS):
        return "bounded", f"auto: {name} is a synthetic scene on a known background"
    return "unbounded", f"auto: {name} reads captures"


def _near_far(collider_params: dict[str, Any] | None, default: SceneSettings) -> tuple[float, float]:
    if collider_params is None:
        return default.near_plane, default.far_plane
    if set(collider_params) != {"near_plane", "far_plane"}:
        raise ValueError(f"collider-params needs near_plane and far_plane, got {sorted(collider_params)}")
    near, far = float(collider_params["near_plane"]), float(collider_params["far_plane"])
    if not (math.isfinite(near) and math.isfinite(far) and 0 <= near < far):
        raise ValueError(f"collider-params needs 0 <= near_plane < far_plane, both finite; got {near}, {far}")
    return near, far


def scene_settings(model_config: Any) -> SceneSettings:
    """The settings of a model config whose ``scene`` is resolved (bounded or unbounded): the
    kind's defaults, with every field the config sets (not None) instead."""
    kind = model_config.scene
    if kind not in SCENE_DEFAULTS:
        raise ValueError(
            f"scene {kind!r} is resolved from the dataparser by MuonPipeline; a model built on its own "
            "needs --pipeline.model.scene bounded or unbounded"
        )
    default = SCENE_DEFAULTS[kind]
    given = {
        name: getattr(model_config, name) for name in OVERRIDES if getattr(model_config, name) is not None
    }
    if given.get("appearance_embedding_dim", 0) < 0:
        raise ValueError(f"appearance-embedding-dim must be >= 0, got {given['appearance_embedding_dim']}")
    near, far = _near_far(model_config.collider_params, default)
    return replace(default, near_plane=near, far_plane=far, **given)


class MuonPipeline(VanillaPipeline):
    """nerfstudio's ``VanillaPipeline``, resolving ``scene auto`` from the dataparser before the
    model is built (the model itself never sees the dataparser). Every path that builds a model
    from a config goes through here: ``ns-train``, ``ns-eval``, ``ns-render``, ``ns-export``, the
    viewer and the benchmarks."""

    def __init__(self, config: Any, device: str, *args: Any, **kwargs: Any) -> None:
        model = config.model
        if getattr(model, "scene", None) == "auto":
            model.scene, why = resolve_kind(model.scene, config.datamanager.dataparser)
            CONSOLE.print(f"scene: {model.scene} ({why})")
        super().__init__(config, device, *args, **kwargs)
