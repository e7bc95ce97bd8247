#!/usr/bin/env python3
"""Novel-view benchmark of ``muon-nerf``: archs × {adam, muon} × seeds on a Blender scene or a
real capture.

Every run is the registered method's config (``muon-nerf[-ARCH][-adam]``), trained in this
process by nerfstudio's own ``Trainer`` (``trainer.train()``, as ``ns-train`` runs it) and scored
as ``ns-eval`` scores it (``pipeline.get_average_eval_image_metrics`` on held-out test views:
PSNR, SSIM, LPIPS only when its AlexNet weights are cached). Adam and Muon runs of one seed
start from the same initial field (the seed is set as ``ns-train`` sets it).

``--data`` is a Blender scene (``transforms_train.json``: blender-data) or a capture in
nerfstudio-data format (``transforms.json``: nerfstudio-data, whose eval split is the test
split: the capture's ``test_filenames``, else its 90/10 fraction split). The model picks its
scene settings from the dataparser (bounded for Blender; contraction, far planes, appearance
embedding and pose refinement for captures).

Blender profiles:
  cpu   lego at 100×100, the WIRE/FINER protocol's 25 training views (every 4th of 100), 10
        test views; 512 rays × (32 + 32) samples, 6×128 field, 2000 iterations: ≈ 0.3 s per
        iteration on 2 quiet cores (issue 13's probe), so one relu_pe Adam/Muon pair ≈ 20–25 min
        with evaluation, within the 40-minute budget with room for load.
  gpu   the FINER protocol (200×200, 25 views, 10 test views) with the registered model
        (1024 rays × (64 + 64) samples, 6×256), 2000 iterations, TF32 matmuls; ``--full`` trains
        on all 100 training views at 400×400 instead.
Both plan relu, relu_pe, siren and finer (cpu: relu_pe over seeds 0, 1, 2) and, as a peer at the
same rays, samples and iterations, nerfstudio's ``vanilla-nerf``.

Capture profiles (``CAPTURE_PROFILES``):
  cpu   the capture downsized to a long side of 96 px (a copy in the work folder), 512 rays,
        400 iterations, relu_pe at the Blender cpu model (6×128, 32 + 32 samples); a test curve
        every 100 iterations.
  gpu   the capture at full resolution, 4096 rays, 5000 iterations, the registered models,
        TF32; a curve every 500 iterations.
Both plan ``muon-ngp`` and relu_pe (Adam and Muon, seeds 0 and 1) and nerfstudio's ``nerfacto``
as a peer at its own capture settings (seed 0; only its hash grids in torch, tiny-cuda-nn being
absent). The baseline row is the mean training colour predicted everywhere.

Curves (``--curve-every K``; Blender profiles: off): a few evenly spaced test views
(``--curve-views``) scored every K iterations and after the last by a nerfstudio training
callback (``muon_nerf.nerf.curves``), with training seconds that exclude those evaluations, as
do every run's ``seconds`` and it/s. The table then adds each run's curve PSNR at equal time: the
shortest training time of any run in it.

``--dry-run`` runs the whole pipeline on a toy scene with a tiny model (2 iterations): a sphere
(Blender) or, with ``--kind capture``, a synthetic capture, with a curve point per iteration.

Writes to OUTPUT: ``results.json`` (``baseline``: the constant prediction's test PSNR, and for
Blender scenes as before ``background_psnr``; ``runs``: arch, optimizer, seed, test PSNR/SSIM,
iterations, seconds, it/s, final stable ranks, ``curve``; config, machine, seeds; ``seconds`` is
``trainer.train()``'s wall time, its end-of-training checkpoint included, curve evaluations
not), ``results.md`` (the table), ``renders.png`` (test view 0: on a Blender scene per arch the
ground truth, Adam, Muon and their error maps; on a capture per method its render and depth,
no photo: the captures have no data licence; each run's render is kept in ``renders/``, a
capture's depth in ``depths/``)
and, with curves, ``curves.png`` (test PSNR against training seconds and iterations). All are
rewritten after every run, so a benchmark stopped early keeps what it measured, and ``--resume``
runs only what OUTPUT's ``results.json`` lacks (same profile, scale, model, curve views and
scene: a capture's subset side and source; the runs it keeps carry the machine they ran on).
``--extend DIR`` trains runs that DIR's benchmark stopped at its ``--time-limit`` on from their
checkpoints, into OUTPUT (a lease too short for a run to converge, then another).

    python3 scripts/bench_nerf.py --profile cpu        # the committed cpu table, from scratch
    python3 scripts/bench_nerf.py --profile cpu --resume --output docs/results/nerf_cpu
    python3 scripts/bench_nerf.py --profile cpu --archs relu_pe --seeds 3 4 --resume
    python3 scripts/bench_nerf.py --profile gpu --data .devdata/lego200 --archs relu_pe siren finer
    # the capture tables (one process per core: --archs per process, then --merge)
    python3 scripts/bench_nerf.py --profile cpu --data ../shared/data/captures/fruit \\
        --output docs/results/captures_cpu/fruit
    python3 scripts/bench_nerf.py --profile cpu --data ../shared/data/captures/stitch \\
        --output docs/results/captures_cpu/stitch
    python3 scripts/bench_nerf.py --dry-run --kind capture --output /tmp/capture_dry
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import math
import os
import random
import shutil
import statistics
import sys
import time
import unittest.mock
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from matplotlib.ticker import MaxNLocator
from nerfstudio.data.datasets.base_dataset import InputDataset
from nerfstudio.engine.trainer import Trainer, TrainerConfig
from nerfstudio.utils import colormaps, writer
from PIL import Image
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from muon_nerf.fields import ARCHITECTURES  # noqa: E402
from muon_nerf.fit.diagnostics import stable_rank  # noqa: E402
from muon_nerf.fit.errors import InputError, run_cli  # noqa: E402
from muon_nerf.fit.hardware import hardware, thread_counts  # noqa: E402
from muon_nerf.fit.metrics import psnr, ssim  # noqa: E402
from muon_nerf.nerf.bench import (  # noqa: E402
    SAMPLER_KEYS,
    StepTimer,
    cpu_name,
    local_config,
    samples_per_ray,
    scene_dataparser,
    set_model,
)
from muon_nerf.nerf.captures import (  # noqa: E402
    capture_subset_selection,
    check_capture,
    write_capture_scene,
    write_capture_subset,
)
from muon_nerf.nerf.config import (  # noqa: E402
    NGP_ARCH,
    group_lrs,
    method_lrs,
    ngp_trainer_config,
    set_lrs,
    trainer_config,
    tuned_group_lrs,
    untuned_lrs,
)
from muon_nerf.nerf.config import ngp_mlp as registered_ngp_mlp  # noqa: E402
from muon_nerf.nerf.curves import (  # noqa: E402
    LearningCurve,
    StopRule,
    attach_curve,
    depth_of,
    evenly_spaced,
    render_view,
    rgb_of,
    time_to_reach,
    value_at,
)
from muon_nerf.nerf.data import subset_selection, write_blender_subset, write_sphere_scene  # noqa: E402
from muon_nerf.nerf.lpips import cached_lpips  # noqa: E402
from muon_nerf.nerf.model import GROUP_NAMES, MuonNeRFModel  # noqa: E402
from muon_nerf.runs.cli import cli  # noqa: E402
from muon_nerf.runs.io import atomic_write_bytes, missing_folders, write_json  # noqa: E402
from muon_nerf.runs.plotting import draw_panel, new_figure, save_figure  # noqa: E402
from muon_nerf.runs.task import Lrs  # noqa: E402
from muon_nerf.runs.tuned import tuned_table  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LEGO = ROOT.parent / "shared" / "data" / "nerf_synthetic" / "lego"
OPTIMIZERS = ("adam", "muon")
FIELD_ARCHS = ("relu", "relu_pe", "siren", "finer")
"""The paper's NeRF comparison without its hash grid (``ngp``, which brings its own model)."""
CAPTURE_ARCHS = ("ngp", "relu_pe", "nerfacto")
"""A capture's default table: our hash-grid and MLP models, and nerfacto (made for captures)."""
SceneKind = Literal["blender", "capture"]


@dataclass(frozen=True)
class Profile:
    size: int | None
    """Blender: the image side the scene is resized to; capture: the long side the images are
    resized to (None: as captured)."""
    stride: int
    """Blender: keep every ``stride``-th training view (4: the protocol's 25 of lego's 100). A
    capture keeps nerfstudio-data's split (1)."""
    test_views: int
    """Blender: evenly spaced test views scored (and as many val views kept in the scene). A
    capture scores its whole eval split (0)."""
    iterations: int
    rays: int
    """Training rays per batch."""
    model: dict[str, Any] = field(default_factory=dict)
    """Model settings on top of the registered config (``set_model``)."""
    proposal: dict[str, Any] = field(default_factory=lambda: {"sampler": "proposal"})
    """What ``--sampler proposal`` sets instead of the coarse/fine sample counts (the proposal
    defaults are nerfacto's: passes of 256 and 96 samples, the field on the last 48)."""
    device: str = "cpu"
    tf32: bool = False
    """TF32 matmuls (CUDA only; recorded)."""
    seeds: dict[str, tuple[int, ...]] = field(default_factory=dict)
    """Seeds per arch when ``--seeds`` is not given; an arch not named here runs seed 0."""
    kind: SceneKind = "blender"
    """The scenes this profile is for."""
    curve_every: int = 0
    """Test PSNR/SSIM on a few test views every this many iterations (0: no curve)."""
    offset: int = 0
    """Blender: the first training view kept (0 ≤ offset < stride); ``scripts/tune_nerf.py``
    tunes on views disjoint from the reported ones."""
    eval_split: Literal["test", "val"] = "test"
    """The held-out split scored: the tables' is ``test``; tuning scores ``val``, so no view a
    table reports on chooses an lr."""


PROFILES: dict[str, Profile] = {
    # 512 rays × 64 samples on a 6×128 field: ≈ 0.3 s/iteration on 2 cores (issue 13's probe:
    # 500 iterations reach ≈ 20 dB with Muon, 18 dB with Adam), 2000 iterations per run.
    "cpu": Profile(
        size=100,
        stride=4,
        test_views=10,
        iterations=2000,
        rays=512,
        model={"width": 128, "num_coarse_samples": 32, "num_importance_samples": 32},
        # the headline arch over three seeds (mean ± std), one seed of every other arch
        seeds={"relu_pe": (0, 1, 2)},
    ),
    "gpu": Profile(
        size=200,
        stride=4,
        test_views=10,
        iterations=2000,
        rays=1024,
        model={"eval_num_rays_per_chunk": 8192},
        device="cuda",
        tf32=True,
    ),
}
FULL = {"size": 400, "stride": 1}
"""``--full`` (gpu profile): every training view at lego's 400×400."""
CAPTURE_SEEDS = {"ngp": (0, 1), "relu_pe": (0, 1)}
"""Ours over two seeds (mean ± std), the peer over one."""
CAPTURE_CPU = Profile(
    # Blender cpu's model for relu_pe at a capture's own split; ngp and nerfacto bring theirs.
    # Sized from measured speed (one core): ≈ 1.8 s per iteration for muon-ngp and nerfacto,
    # 0.75 s for relu_pe, and ≈ 10 s per rendered 96-px view for the hash-grid models, so one
    # seed of all five methods on one capture fits in about an hour.
    size=96,
    stride=1,
    test_views=0,
    iterations=400,
    rays=512,
    model={"width": 128, "num_coarse_samples": 32, "num_importance_samples": 32},
    seeds=CAPTURE_SEEDS,
    kind="capture",
    curve_every=100,
)
CAPTURE_PROFILES: dict[str, Profile] = {
    "cpu": CAPTURE_CPU,
    # full resolution, the registered models and batch
    "gpu": replace(
        CAPTURE_CPU,
        size=None,
        iterations=5000,
        rays=4096,
        model={"eval_num_rays_per_chunk": 8192},
        device="cuda",
        tf32=True,
        curve_every=500,
    ),
}
DRY = Profile(
    size=16,
    stride=1,
    test_views=2,
    iterations=2,
    rays=32,
    model={
        "num_layers": 3,
        "width": 16,
        "geo_feat_dim": 8,
        "head_width": 8,
        "num_coarse_samples": 8,
        "num_importance_samples": 8,
        "eval_num_rays_per_chunk": 256,
    },
    proposal={
        "sampler": "proposal",
        "proposal.num_proposal_samples_per_ray": (16, 8),
        "proposal.num_nerf_samples_per_ray": 8,
    },
)
DRY_CAPTURE = replace(DRY, size=16, test_views=0, kind="capture", curve_every=1)
"""The dry run on a synthetic capture (24 px, subset to a long side of 16): a curve point after
each of the 2 iterations."""


@dataclass
class NerfBenchConfig:
    profile: Literal["cpu", "gpu"] = "cpu"
    data: Path = LEGO
    """A Blender-format scene (``transforms_train.json``): the full one (subsampled here to the
    profile) or a subset that ``python -m muon_nerf.nerf.data subset`` wrote with exactly the
    profile's selection. Or a capture in nerfstudio-data format (``transforms.json``): the full
    one (downsized here to the profile's long side) or a subset at exactly that side."""
    kind: Literal["auto", "blender", "capture"] = "auto"
    """What ``--data`` is; auto: a Blender scene if it has transforms_train.json, else a capture.
    With ``--dry-run``: the toy scene (auto, blender: a Blender sphere; capture: a synthetic
    capture)."""
    archs: tuple[str, ...] | None = None
    """Run in this order (each arch's Adam/Muon pairs together): position-MLP architectures of
    ``muon-nerf`` (relu, relu_pe, siren, …), ``ngp`` (``muon-ngp`` / ``muon-ngp-adam``), and
    nerfstudio's ``vanilla-nerf`` (Blender only) and ``nerfacto`` (Adam only). None: on a Blender
    scene the paper's field archs and, with coarse/fine sampling, the ``vanilla-nerf`` peer at the
    same rays, samples and iterations; on a capture ngp, relu_pe and nerfacto."""
    optimizers: tuple[Literal["adam", "muon"], ...] = OPTIMIZERS
    """Optimizer of the hidden matrices (the rest is always Adam)."""
    sampler: Literal["coarse_fine", "proposal"] = "coarse_fine"
    """For the position-MLP archs: coarse_fine: the profile's coarse + importance samples;
    proposal: nerfacto's proposal networks pick the samples (the profile's proposal settings).
    ngp and the peers sample as they ship."""
    seeds: tuple[int, ...] | None = None
    """Seeds of every arch; None: the profile's plan (Blender cpu: 0, 1, 2 for relu_pe, 0 for the
    others; Blender gpu: 0; captures: 0, 1 for ngp and relu_pe, 0 for nerfacto)."""
    iterations: int | None = None
    """Training iterations per run; None: the profile's."""
    curve_every: int | None = None
    """Score the curve views every this many iterations and after the last (0: no curve); None:
    the profile's (captures: cpu 100, gpu 500; Blender: 0)."""
    curve_views: int = 2
    """Test views of the curve, evenly spaced over the test split (first and last included)."""
    stop_gain: float | None = None
    """Stop a run once its best curve PSNR gained less than this many dB over the last
    ``--stop-window`` iterations and its latest curve PSNR is within this many dB of that best
    (converged; needs a curve). None: every run trains all its iterations."""
    stop_window: int = 2000
    """Iterations over which ``--stop-gain`` is measured."""
    time_limit: float | None = None
    """Stop a run at the first curve point after this many seconds of training (curve
    evaluations included; needs a curve): a budget for a short machine lease. The record says
    where and why it stopped. None: no limit."""
    ngp_mlp: tuple[int, int] | None = None
    """``ngp``: its position MLP as LAYERS WIDTH (linear layers, hidden width) instead of the
    registered one (``muon_nerf.nerf.config.ngp_mlp``)."""
    lrs: Literal["tuned", "untuned"] = "tuned"
    """tuned: each method's own lrs (the tuned table's NeRF row where it has one); untuned: the
    lrs every NeRF table was measured at before those rows (Adam 5e-4, or instant-ngp's 1e-2 for
    ngp; Muon 0.02). A kept run (``--resume``, ``--merge``) must have trained at this choice's."""
    tuned_table: Path | None = None
    """With ``--lrs tuned``: a tuned-lr table (``scripts/tuned_lrs.py --table``, e.g. from a fresh
    sweep) whose NeRF rows our methods train at instead of the installed package's, which stays as
    it is. None: the package's."""
    device: str | None = None
    """None: the profile's (cpu / cuda)."""
    full: bool = False
    """gpu profile: all 100 training views at 400×400 instead of the 25-view 200×200 protocol."""
    output: Path | None = None
    """None: outputs/bench/nerf for a Blender scene, outputs/bench/captures/NAME for a capture."""
    work: Path | None = None
    """Where the scene subset and nerfstudio's run folders (checkpoints, tensorboard) go;
    None: OUTPUT/work."""
    dry_run: bool = False
    """Toy scene (``--kind``), tiny model, 2 iterations, on the CPU: checks the whole pipeline."""
    resume: bool = False
    """Keep the runs already in OUTPUT/results.json (all of them, refused unless measured at the
    same profile, scale and model) and run only the planned ones it lacks."""
    merge: tuple[Path, ...] = ()
    """Other benchmark outputs (folders with results.json) whose runs join this table, under the
    same check as --resume: benchmarks run side by side on one machine end in one table."""
    table_only: bool = False
    """Run nothing: write the table and figures of the runs kept (``--resume``) and merged; the
    planned runs that none of them has are counted as missing (a partial table)."""
    extend: tuple[Path, ...] = ()
    """Earlier benchmark outputs whose runs stopped at their time limit: each such planned run
    trains on from its end-of-training checkpoint (model, optimizers, schedulers) to this plan's
    stop rule or last iteration, on the same machine and settings; its curve and seconds go on
    from where it stopped, and ``--time-limit`` counts from its first start (give a larger one).
    The earlier folder is only read."""


def scene_kind(cfg: NerfBenchConfig) -> SceneKind:
    """``--kind``, or what ``--data`` holds: a Blender scene (``transforms_train.json``) or a
    capture (``transforms.json``). A dry run makes its toy scene of ``--kind``."""
    if cfg.dry_run:
        return "capture" if cfg.kind == "capture" else "blender"
    if cfg.kind != "auto":
        return cfg.kind  # prepare_scene checks the folder
    if (cfg.data / "transforms_train.json").is_file() or not (cfg.data / "transforms.json").is_file():
        return "blender"  # and a folder with neither is refused as a Blender scene, as before
    return "capture"


def prepare_scene(cfg: NerfBenchConfig, profile: Profile, work: Path) -> Path:
    """The scene the profile runs on: ``cfg.data`` itself when it already is that subset, else a
    subset of it written under ``work``."""
    if profile.kind == "capture":
        return prepare_capture(cfg, profile, work)
    if cfg.dry_run:
        views = {"train": 4, "val": 1, "test": profile.test_views}
        return write_sphere_scene(work / "sphere", size=profile.size, views=views)
    if not (cfg.data / "transforms_train.json").is_file():
        raise InputError(f"{cfg.data}/transforms_train.json not found: expected a Blender-format scene")
    want = {
        "size": profile.size,
        "stride": profile.stride,
        "views": None,
        "eval_views": profile.test_views,
        "offset": profile.offset,
    }
    have = subset_selection(cfg.data)
    if have == want:
        return cfg.data
    if have is not None:
        raise InputError(
            f"{cfg.data} is already a subset ({have}) but the profile needs {want}: pass the full scene"
        )
    return write_blender_subset(
        cfg.data,
        work / "scene",
        size=profile.size,
        stride=profile.stride,
        eval_views=profile.test_views,
        offset=profile.offset,
    )


def prepare_capture(cfg: NerfBenchConfig, profile: Profile, work: Path) -> Path:
    """The capture the profile runs on: ``cfg.data`` itself at full resolution (``size`` None) or
    when it already is the profile's subset, else its subset at the profile's long side in
    ``work/scene`` (reused when it already holds exactly that subset of this capture). A dry run
    writes a synthetic capture and takes the subset of it, the whole path at toy size."""
    source = cfg.data
    if cfg.dry_run:
        source = write_capture_scene(work / "synthetic", size=24, views=8, test_views=2)
    check_capture(source, downscale_factor=1)
    if profile.size is None:
        return source
    have = capture_subset_selection(source)
    if have is not None and have["max_side"] == profile.size:
        return source
    if have is not None:
        raise InputError(
            f"{source} is already a subset (long side {have['max_side']} of {have['source']}) but the "
            f"profile needs long side {profile.size}: pass the full capture"
        )
    # the source resolved, so the subset records (and --resume compares) one name for it
    want = {"source": str(source.resolve()), "max_side": profile.size}
    scene = work / "scene"
    kept = capture_subset_selection(scene)
    if kept is not None and {k: kept[k] for k in want} == want:
        return scene
    return write_capture_subset(source.resolve(), scene, profile.size)


def _rgb_on_white(png: Path) -> np.ndarray:
    """An RGBA view composited on white, as nerfstudio's Blender parser and our model score it."""
    rgba = np.asarray(Image.open(png).convert("RGBA"), dtype=np.float32) / 255
    return rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])


def load_test_views(scene: Path) -> list[np.ndarray]:
    meta = json.loads((scene / "transforms_test.json").read_text())
    return [_rgb_on_white(scene / (f["file_path"].replace("./", "") + ".png")) for f in meta["frames"]]


def background_psnr(images: list[np.ndarray]) -> float:
    """Mean PSNR of the all-white prediction over the test views (averaged per view, as the
    pipeline averages per-view PSNR): a collapsed model scores about this."""
    return statistics.mean(psnr(torch.ones_like(t), t) for t in map(torch.from_numpy, images))


@dataclass(frozen=True)
class Baseline:
    """The table's first row: one colour predicted everywhere, so a collapsed model shows at once.
    A Blender scene's is its known background (white); a capture has none, and the best constant
    in MSE is the mean colour, taken from the training views."""

    row: str
    column: str
    """The table's column of PSNR above this row."""
    rgb: tuple[float, float, float]
    psnr: float
    """Test PSNR, per view then averaged, as the pipeline averages."""


@dataclass(frozen=True)
class SceneViews:
    """What the table needs of a scene before any run."""

    baseline: Baseline
    truth: np.ndarray
    """Test view 0 as the runs are scored against it (the figures' ground truth)."""
    train_views: int
    test_views: int


def blender_views(scene: Path) -> SceneViews:
    truths = load_test_views(scene)
    train_views = len(json.loads((scene / "transforms_train.json").read_text())["frames"])
    white = Baseline(
        "all-background (white)", "over background (dB)", (1.0, 1.0, 1.0), background_psnr(truths)
    )
    return SceneViews(white, truths[0], train_views, len(truths))


def capture_views(scene: Path) -> SceneViews:
    """nerfstudio-data's split (explicit lists, else its 90/10 fraction) and images as the
    pipeline loads them (the dataparser and ``InputDataset`` it uses), so the baseline and the
    figures' ground truth are the images every run is scored against."""
    parser = scene_dataparser(scene).setup()
    train = InputDataset(parser.get_dataparser_outputs("train"))
    test = InputDataset(parser.get_dataparser_outputs("test"))
    total, pixels = torch.zeros(3, dtype=torch.float64), 0
    for i in range(len(train)):  # one image at a time: full-resolution captures are large
        image = train.get_image_float32(i)[..., :3].double()
        total += image.sum((0, 1))
        pixels += image.shape[0] * image.shape[1]
    mean = (total / pixels).float()
    truths = [test.get_image_float32(i)[..., :3] for i in range(len(test))]
    score = statistics.mean(psnr(mean.expand_as(t), t) for t in truths)
    constant = Baseline("mean training colour", "over mean colour (dB)", tuple(mean.tolist()), score)
    return SceneViews(constant, truths[0].numpy(), len(train), len(truths))


SCENE_VIEWS: dict[str, Callable[[Path], SceneViews]] = {"blender": blender_views, "capture": capture_views}


NGP = NGP_ARCH
"""``muon-ngp`` / ``muon-ngp-adam`` (hash grid + 4×64 ReLU MLP, proposal sampling) as an arch of
the table: its own model and sampling at the profile's rays and iterations."""


def _vanilla_settings(model: Any, profile: Profile) -> dict[str, Any]:
    """vanilla-nerf at the profile's samples (its two 8×256 networks, RAdam, no schedule)."""
    keys = ("num_coarse_samples", "num_importance_samples", "eval_num_rays_per_chunk")
    for key in keys:
        if key in profile.model:
            setattr(model, key, profile.model[key])
    return {"sampler": "coarse_fine", **{k: getattr(model, k) for k in keys}}


def _nerfacto_settings(model: Any, profile: Profile) -> dict[str, Any]:
    """nerfacto as a Blender scene needs it (its defaults are for unbounded captures): the object
    inside the scene box without scene contraction, uniform first proposal samples between the
    Blender near/far planes 2 and 6, white background (the images are composited on white), exact
    poses (no camera optimization), pure-torch hash grids. Its sample counts stay its own.

    Initial density 1 (the model's own default) instead of the method config's 0.01, which is
    for captures whose rays cross a large contracted space. At 0.01 nearly nothing accumulates in
    the first steps, the colour head still gets small gradients that all say "darker" (the object
    is darker than the white background), and Adam with eps 1e-15 turns them into full-size
    steps: the sigmoid saturates at black before any density forms, its squared gradients
    underflow, and the colour never recovers (renders grey: black object × partial opacity)."""
    settings = {
        "disable_scene_contraction": True,
        "proposal_initial_sampler": "uniform",
        "near_plane": 2.0,
        "far_plane": 6.0,
        "background_color": "white",
        "average_init_density": 1.0,
        "implementation": "torch",
    }
    for key, value in settings.items():
        setattr(model, key, value)
    model.camera_optimizer.mode = "off"
    if "eval_num_rays_per_chunk" in profile.model:
        model.eval_num_rays_per_chunk = profile.model["eval_num_rays_per_chunk"]
    samples = {k: getattr(model, k) for k in ("num_proposal_samples_per_ray", "num_nerf_samples_per_ray")}
    return {"sampler": "proposal", **settings, "camera_optimizer": "off", **samples}


NERFACTO_RECORD = (
    *("disable_scene_contraction", "proposal_initial_sampler", "near_plane", "far_plane"),
    *("background_color", "average_init_density", "use_appearance_embedding", "implementation"),
)
"""What a capture's nerfacto record states: the settings its method config ships for captures."""


def _nerfacto_capture_settings(model: Any, profile: Profile) -> dict[str, Any]:
    """nerfacto as its method config ships it for captures (scene contraction, piecewise first
    proposal samples between near 0.05 and far 1000, last-sample background, initial density
    0.01, appearance embedding, SO3xR3 camera optimizer), only with pure-torch hash grids
    (tiny-cuda-nn is absent here) and the profile's eval chunk."""
    model.implementation = "torch"
    if "eval_num_rays_per_chunk" in profile.model:
        model.eval_num_rays_per_chunk = profile.model["eval_num_rays_per_chunk"]
    samples = {k: getattr(model, k) for k in ("num_proposal_samples_per_ray", "num_nerf_samples_per_ray")}
    settings = {k: getattr(model, k) for k in NERFACTO_RECORD}
    return {"sampler": "proposal", **settings, "camera_optimizer": model.camera_optimizer.mode, **samples}


PEERS: dict[str, dict[str, Callable[[Any, Profile], dict[str, Any]]]] = {
    "vanilla-nerf": {"blender": _vanilla_settings},
    "nerfacto": {"blender": _nerfacto_settings, "capture": _nerfacto_capture_settings},
}
"""nerfstudio's own methods that can join the table as an arch (Adam, as they ship), per scene
kind with the settings that make them run fairly at the profile's scale. vanilla-nerf has no
scene contraction: it is not run on captures."""


def method_name(arch: str, optimizer: str) -> str:
    if arch in PEERS:
        return arch
    adam = "-adam" if optimizer == "adam" else ""
    if arch == NGP:
        return f"muon-ngp{adam}"
    return "muon-nerf" + ("" if arch == "relu_pe" else f"-{arch}") + adam


def _seed_everything(seed: int) -> None:
    """What ``ns-train`` does before building the trainer (``train._set_random_seed``)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def profile_config(
    base: TrainerConfig, scene: Path, experiment: str, seed: int, profile: Profile, device: str, work: Path
) -> TrainerConfig:
    """A method's config (ours or a peer's) for one run at the profile's iterations and rays."""
    config = local_config(base, scene, work / "runs", profile.iterations, device)
    config.experiment_name = experiment
    config.machine.seed = seed
    config.pipeline.datamanager.train_num_rays_per_batch = profile.rays
    config.pipeline.datamanager.eval_num_rays_per_batch = profile.rays
    return config


def experiment_name(arch: str, optimizer: str, seed: int) -> str:
    """nerfstudio's experiment folder of one run (``work/runs/NAME/METHOD/TIMESTAMP``): a peer's
    names no optimizer (it trains with its own)."""
    return f"{arch}-seed{seed}" if arch in PEERS else f"{arch}-{optimizer}-seed{seed}"


def run_config(
    scene: Path,
    arch: str,
    optimizer: str,
    seed: int,
    profile: Profile,
    device: str,
    work: Path,
    ngp_mlp: tuple[int, int] | None = None,
    lrs: Lrs | None = None,
) -> tuple[TrainerConfig, dict[str, Any]]:
    """The registered method's config (``muon-nerf[-ARCH][-adam]``) at the profile's scale, and
    its model settings for the record; ``ngp_mlp`` (layers, width) resizes ``muon-ngp``'s
    position MLP; ``lrs`` replaces the method's own lrs (``set_lrs``: a tuning trial's)."""
    if arch == NGP:
        base = ngp_trainer_config(method_name(arch, optimizer), hidden_optimizer=optimizer)
    else:
        base = trainer_config(method_name(arch, optimizer), hidden_optimizer=optimizer, arch=arch)
    config = profile_config(base, scene, experiment_name(arch, optimizer, seed), seed, profile, device, work)
    if lrs is not None:
        set_lrs(config, lrs, optimizer)
    # predict_normals only adds inference outputs (a backward pass per chunk), not metrics
    if arch == NGP:  # its own model and sampling
        chunk = {k: v for k, v in profile.model.items() if k == "eval_num_rays_per_chunk"}
        size = dict(zip(("num_layers", "width"), ngp_mlp, strict=True)) if ngp_mlp else {}
        return config, set_model(config, predict_normals=False, **chunk, **size)
    return config, set_model(config, predict_normals=False, **profile.model)


PEER_LPIPS = "torchmetrics.image.lpip.LearnedPerceptualImagePatchSimilarity"
"""What nerfstudio's models import in ``populate_modules`` to build LPIPS, which downloads the
AlexNet weights when they are not cached; replaced while a peer is built, in this process only."""


class _AbsentLPIPS(torch.nn.Module):
    """Stands in for LPIPS when its AlexNet weights are not cached: scores NaN (reported as no
    LPIPS), never a download."""

    def forward(self, *_: Any) -> torch.Tensor:
        return torch.tensor(math.nan)


def _offline_lpips() -> Callable[..., torch.nn.Module]:
    """The constructor a peer gets for LPIPS: the same LPIPS from cached weights, else
    ``_AbsentLPIPS``. LPIPS is a metric only: what the peer trains is unchanged."""
    module, _ = cached_lpips()  # built before the patch: it imports the real class
    return lambda *args, **kwargs: module if module is not None else _AbsentLPIPS()


def _our_ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """A peer's ``(1, C, H, W)`` SSIM call, answered by our SSIM: every row of the table is
    scored by the same functions."""
    return torch.tensor(ssim(a[0].permute(1, 2, 0), b[0].permute(1, 2, 0)))


def _peer_checkpoint_globals() -> contextlib.AbstractContextManager:
    """What ``torch.load`` (``weights_only``) must allow to read a peer's checkpoint: nerfstudio's
    own schedulers store numpy scalars as lrs, in the optimizer and scheduler state. Only the
    numpy scalar and dtype reconstructors (data, not code) are allowed, and only while a peer's
    trainer sets up, which loads a checkpoint only under ``--extend`` (an earlier run's own)."""
    scalar = np.float64(0).__reduce__()[0]  # numpy's scalar reconstructor, wherever numpy keeps it
    return torch.serialization.safe_globals([scalar, np.dtype, type(np.dtype(np.float64))])


def peer_config(
    scene: Path, name: str, seed: int, profile: Profile, device: str, work: Path
) -> tuple[TrainerConfig, dict[str, Any]]:
    """nerfstudio's registered ``name`` config at the profile's rays, samples and iterations (its
    own networks, optimizer and schedule), and its model for the record."""
    from nerfstudio.configs.method_configs import method_configs

    experiment = experiment_name(name, "", seed)
    config = profile_config(method_configs[name], scene, experiment, seed, profile, device, work)
    return config, {"method": name, **PEERS[name][profile.kind](config.pipeline.model, profile)}


def build_trainer(config: TrainerConfig, arch: str, seed: int, split: str = "test") -> Trainer:
    """The trainer of one run, set up as ``ns-train`` would (seeded, ``split`` for eval), without
    another run's event writers; a peer (``PEERS``) gets LPIPS from cached weights only and our
    SSIM, so every row is scored by the same functions."""
    # nerfstudio keeps event writers in a module-level list; one run's must not log the next's
    writer.EVENT_WRITERS.clear()
    _seed_everything(seed)
    trainer = config.setup(local_rank=0, world_size=1)
    # our model builds LPIPS from cached weights itself; a peer's must be kept from downloading
    with contextlib.ExitStack() as peer:
        if arch in PEERS:
            peer.enter_context(unittest.mock.patch(PEER_LPIPS, _offline_lpips()))
            peer.enter_context(_peer_checkpoint_globals())
        trainer.setup(test_mode=split)  # the eval dataset: "test" the test split, "val" the val split
    if arch in PEERS:
        trainer.pipeline.model.ssim = _our_ssim
    return trainer


def _curve_record(curve: LearningCurve | None) -> dict[str, Any]:
    """A run's test curve for its record (nothing without one: records as before curves)."""
    if curve is None:
        return {}
    return {"curve": curve.points, "curve_views": curve.views, "curve_seconds": curve.eval_seconds}


def curve_writer(path: Path, views: list[int]) -> Callable[[list[dict]], None]:
    """A curve's sink: its points so far, rewritten whole (atomically) at ``path``."""

    def write(points: list[dict]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, {"views": views, "points": points})

    return write


@dataclass(frozen=True)
class Carried:
    """A run stopped at its time limit that a new run continues (``--extend``)."""

    folder: Path
    record: dict
    checkpoint: Path

    @property
    def iterations(self) -> int:
        return int(self.record["iterations"])

    @property
    def wall_seconds(self) -> float:
        """What the run used of its time limit: training plus curve evaluations."""
        return float(self.record["seconds"]) + float(self.record.get("curve_seconds") or 0.0)


def carried_checkpoint(folder: Path, old_config: dict, run: dict) -> Path:
    """The end-of-training checkpoint of ``run`` in an earlier benchmark's work folder.
    nerfstudio names the checkpoint of a run stopped after iteration N ``step-N``."""
    work = Path(old_config.get("args", {}).get("work") or folder / "work")
    experiment = experiment_name(run["arch"], run["optimizer"], run["seed"])
    name = f"step-{int(run['iterations']):09d}.ckpt"
    where = work / "runs" / experiment / run["method"]
    found = sorted(where.glob(f"*/nerfstudio_models/{name}"))
    if len(found) != 1:
        raise InputError(
            f"--extend {folder}: {experiment} needs one {name} under {where}/*/nerfstudio_models, "
            f"found {len(found)}"
        )
    return found[0]


SAME_MACHINE = ("cpu", "device", "gpu", "threads")
"""What a continued run's machine must share with the run it continues: its seconds add up."""


def carried_runs(
    cfg: NerfBenchConfig, config: dict, todo: list[tuple[str, str, int]], mach: dict
) -> dict[tuple[str, str, int], Carried]:
    """The runs to do that ``--extend`` folders stopped at their time limit, checked: the same
    settings (``kept_runs``), curve and lrs, this machine, a checkpoint, and time left under the
    time limit. A folder with nothing to continue in this plan is refused, not skipped."""
    carried: dict[tuple[str, str, int], Carried] = {}
    limit = (config.get("stop") or {}).get("seconds")
    for folder in cfg.extend:
        path = folder / "results.json"
        if not path.is_file():
            raise InputError(f"--extend {folder}: no results.json there")
        if folder.resolve() == cfg.output.resolve():
            raise InputError(f"--extend {folder}: that is --output; continue into another folder")
        old = read_results(path)
        runs = kept_runs(path, config, old)  # same settings, or refused
        old_config = old["config"]
        if old_config.get("curve") != config.get("curve"):
            raise InputError(
                f"--extend {folder}: its curve was {old_config.get('curve')}, this one's "
                f"{config.get('curve')}: a continued curve keeps its points and period"
            )
        found = [r for r in runs if (r["arch"], r["optimizer"], r["seed"]) in todo]
        found = [
            r for r in found if r.get("stopped") == "time limit" and r["iterations"] < config["iterations"]
        ]
        if not found:
            raise InputError(
                f"--extend {folder}: none of its runs is a planned run, still to do, that stopped at "
                "its time limit: nothing to continue (a converged or finished run joins with --merge)"
            )
        for run in found:
            key = (run["arch"], run["optimizer"], run["seed"])
            what = f"--extend {folder}: {key[0]} {key[1]} seed {key[2]}"
            if key in carried:
                raise InputError(f"{what} is also in --extend {carried[key].folder}: continue it once")
            check_kept_lrs(folder, run, cfg.lrs, cfg.tuned_table)
            other = {k: (run["machine"].get(k), mach.get(k)) for k in SAME_MACHINE}
            other = {k: v for k, v in other.items() if v[0] != v[1]}
            if other:
                raise InputError(
                    f"{what} ran on another machine (then, now: {other}): its seconds would not add up"
                )
            carry = Carried(folder, run, carried_checkpoint(folder, old_config, run))
            if limit is not None and limit <= carry.wall_seconds:
                raise InputError(
                    f"{what} already used {carry.wall_seconds:.0f} s of training and curve evaluations: "
                    f"--time-limit {limit:g} leaves it none; give a larger one (or none)"
                )
            carried[key] = carry
    return carried


def continued(carry: Carried) -> list[dict]:
    """Where a continued run's record came from: each earlier part's folder, last iteration and
    seconds (a run continued twice lists both)."""
    part = {"folder": str(carry.folder), "iterations": carry.iterations, "seconds": carry.record["seconds"]}
    return [*carry.record.get("continued", []), part]


def train_and_score(
    scene: Path,
    arch: str,
    optimizer: str,
    seed: int,
    profile: Profile,
    device: str,
    work: Path,
    output: Path,
    curve_views: list[int] | None = None,
    stop: StopRule | None = None,
    ngp_mlp: tuple[int, int] | None = None,
    lrs: Lrs | None = None,
    carry: Carried | None = None,
) -> tuple[dict, dict[str, np.ndarray]]:
    """One run, trained and scored. Returns its record and its renders of the first test view:
    ``rgb``, and ``depth`` colour-mapped with the accumulation. With ``curve_views`` its test
    curve is taken every ``profile.curve_every`` iterations (``curve`` in the record), and the
    curve's evaluations are kept out of ``seconds``, ``iterations_per_s`` and the step shares;
    ``stop`` may end it at a curve point (``iterations`` and ``stopped`` in the record). The
    points so far are also written to ``output/curves/RUN.json`` after each one: what a run
    killed before its end (a machine lease running out) leaves of its curve. ``lrs`` replaces the
    method's lrs (a tuning trial); the record names the lrs it trained with either way, and is
    scored on ``profile.eval_split``. ``carry`` continues a run stopped at its time limit from its
    checkpoint: the record's curve, seconds and step times go on from it (``continued`` says from
    where). Its ray batches are drawn from the seed's start again, not from where the stopped
    run's random state was: that run trained on, not a replay of an uninterrupted one.
    A peer (``PEERS``) is built with LPIPS from cached weights only and scored with our SSIM."""
    if arch in PEERS:
        config, model_record = peer_config(scene, arch, seed, profile, device, work)
    else:
        config, model_record = run_config(scene, arch, optimizer, seed, profile, device, work, ngp_mlp, lrs)
    done = 0
    if carry is not None:
        done = carry.iterations
        config.load_dir, config.load_step = carry.checkpoint.parent, done
        config.max_num_iterations = profile.iterations - done  # its schedulers still span them all
    cuda = device.startswith("cuda")
    t0 = time.perf_counter()
    trainer = build_trainer(config, arch, seed, profile.eval_split)
    if carry is not None:
        # nerfstudio would start after the step its checkpoint is named by: the iteration a
        # stopped run did not train (step N is iteration N + 1)
        trainer._start_step = done
    timer = StepTimer(trainer.optimizers.optimizers, sync=cuda)
    curve = None
    if curve_views:
        partial = output / "curves" / f"{arch}-{optimizer}-seed{seed}.json"
        curve = attach_curve(
            trainer,
            curve_views,
            profile.curve_every,
            profile.iterations,
            sync=cuda,
            stop=stop,
            sink=curve_writer(partial, curve_views),
        )
    before = carry.record if carry is not None else {}
    t1 = time.perf_counter()
    if curve is not None:
        curve.start(before.get("curve", []), before.get("seconds", 0.0), before.get("curve_seconds") or 0.0)
    trainer.train()
    if cuda:
        torch.cuda.synchronize()
    t2 = time.perf_counter()
    timer.remove()
    seconds = t2 - t1 - (curve.eval_seconds if curve is not None else 0.0)
    if carry is not None:  # the curve's evaluations include the carried run's
        seconds += carry.wall_seconds
    step_seconds = dict(timer.seconds)
    for group, spent in before.get("optimizer_step_seconds", {}).items():
        step_seconds[group] = step_seconds.get(group, 0.0) + spent
    stopped = curve.stopped if curve is not None else None
    iterations = curve.points[-1]["iteration"] if stopped else profile.iterations
    pipeline = trainer.pipeline
    metrics = pipeline.get_average_eval_image_metrics(get_std=True)
    metrics = {k.removeprefix("fine_"): v for k, v in metrics.items()}  # a peer's fine_ssim, fine_lpips
    pipeline.eval()
    outputs, _ = render_view(pipeline, 0)
    depth, accumulation = depth_of(outputs)
    renders = {
        "rgb": rgb_of(outputs).clamp(0, 1).cpu().numpy(),
        "depth": colormaps.apply_depth_colormap(depth, accumulation=accumulation).cpu().numpy(),
    }
    t3 = time.perf_counter()
    # a peer's field is not ours: no hidden matrices of ours to rank
    ours = isinstance(pipeline.model, MuonNeRFModel)
    hidden = pipeline.model.field.mlp_base.hidden_weights() if ours else {}
    ranks = {n: stable_rank(w) for n, w in hidden.items()}
    record = {
        "arch": arch,
        "optimizer": optimizer,
        "seed": seed,
        "method": config.method_name,
        # ours: the lrs of the tunable groups it trains; a peer trains at its own
        **({"lrs": tuned_group_lrs(config, optimizer)} if arch not in PEERS else {}),
        "test_psnr": _finite(metrics["psnr"]),
        "test_psnr_std": _finite(metrics.get("psnr_std", math.nan)),
        "test_ssim": _finite(metrics["ssim"]),
        "test_lpips": _finite(metrics["lpips"]) if "lpips" in metrics else None,
        "test_views": len(pipeline.datamanager.fixed_indices_eval_dataloader),
        "iterations": iterations,
        "planned_iterations": profile.iterations,
        "stopped": stopped,
        "seconds": seconds,
        "iterations_per_s": iterations / seconds,
        "setup_seconds": t1 - t0,
        "eval_seconds": t3 - t2,
        "optimizer_step_seconds": step_seconds,
        "optimizer_step_share": sum(step_seconds.values()) / seconds,
        "muon_step_share": (
            step_seconds[GROUP_NAMES["muon"]] / seconds if GROUP_NAMES["muon"] in step_seconds else None
        ),
        "final_stable_rank": {n: _finite(r) for n, r in ranks.items()},
        "mean_stable_rank": _finite(statistics.mean(ranks.values())) if ranks else None,
        "model": model_record,
        "machine": machine(device),
        **_curve_record(curve),
        **({"continued": continued(carry)} if carry is not None else {}),
    }
    trainer.shutdown()
    del trainer, pipeline, curve
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return record, renders


def _mean_std(xs: list[float | None], digits: int = 2) -> str:
    xs = [x for x in xs if x is not None]
    if not xs:
        return "–"
    if len(xs) == 1:
        return f"{xs[0]:.{digits}f}"
    return f"{statistics.mean(xs):.{digits}f} ± {statistics.stdev(xs):.{digits}f}"


def _step_shares(runs: list[dict]) -> str:
    """Mean share of training time in optimizer steps, all groups (and Muon's group alone)."""
    shares = [100 * r["optimizer_step_share"] for r in runs if r.get("optimizer_step_share") is not None]
    if not shares:
        return "–"
    muon = [100 * r["muon_step_share"] for r in runs if r.get("muon_step_share") is not None]
    return f"{statistics.mean(shares):.1f}" + (f" (Muon {statistics.mean(muon):.1f})" if muon else "")


def equal_time(runs: list[dict]) -> float | None:
    """T of the equal-time column: the shortest training time of any run with a curve (its last
    point), so that every curve reaches T and none is extrapolated; None without curves."""
    ends = [r["curve"][-1]["seconds"] for r in runs if r.get("curve")]
    return min(ends) if ends else None


def _table_line(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _to_adam_final(run: dict, runs: list[dict], at: str = "seconds") -> float | None:
    """Training seconds (``at``: or iterations) ``run``'s curve took to reach the last curve PSNR
    of the Adam run of the same arch and seed (for that Adam run: its own); None for a peer,
    without curves, or where it never got there."""
    key = (run["arch"], "adam", run["seed"])
    adam = next((r for r in runs if (r["arch"], r["optimizer"], r["seed"]) == key), None)
    if run["arch"] in PEERS or adam is None or not run.get("curve") or not adam.get("curve"):
        return None
    return time_to_reach(run["curve"], adam["curve"][-1]["psnr"], at=at)


def lrs_cell(run: dict) -> str:
    """The lrs a run of ours trained with (``fields`` Adam lr, then Muon's), "–" for a peer's
    (its own); a run recorded before runs recorded them trained at the untuned ones."""
    if run["arch"] in PEERS:
        return "–"
    known = trained_lrs(run)
    return " / ".join(f"{lr:.3g}" for lr in known.values()) + ("" if run.get("lrs") else " (untuned)")


def trained_lrs(run: dict) -> dict[str, float]:
    """The group lrs a run of ours trained with: its record's, or, for a run recorded before runs
    recorded them, the untuned ones (the only ones there were)."""
    return run.get("lrs") or group_lrs(untuned_lrs(run["arch"]), run["optimizer"])


def summarize(runs: list[dict], baseline: Baseline, at: float | None = None) -> tuple[str, list[dict]]:
    """Markdown table: one row per (arch, optimizer, lrs), mean ± std over seeds, plus the
    baseline row so a collapsed model is visible at a glance (runs of one method at other lrs
    are other rows). With ``at`` (seconds), a column of each
    run's curve PSNR at that training time, and one of the training seconds each run of ours
    took to reach the final curve PSNR of the Adam run of its arch and seed (how much sooner Muon
    gets there; "–" where it never does), the same in iterations, and the iterations each run
    trained (fewer than planned where a stop rule ended it)."""
    timed = [] if at is None else [f"curve PSNR at {at:.0f} s (dB)", "s to Adam's final curve PSNR"]
    timed += [] if at is None else ["iterations to Adam's final", "iterations"]
    header = ["arch", "optimizer", "lrs (Adam / Muon)", "seeds", "test PSNR (dB)", baseline.column]
    header += ["SSIM", "LPIPS", *timed]
    header += ["stable rank", "it/s", "train s", "optimizer steps (% of train s)"]
    first = [baseline.row, "–", "–", "–", f"{baseline.psnr:.2f}", "0.00"] + ["–"] * (len(header) - 6)
    lines = [_table_line(header), "|" + "---|" * len(header), _table_line(first)]
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["arch"], r["optimizer"], lrs_cell(r)), []).append(r)
    rows = []
    for (arch, optimizer, lrs), rs in groups.items():
        psnrs = [r["test_psnr"] for r in rs]
        row = {
            "arch": arch,
            "optimizer": optimizer,
            "lrs": rs[0].get("lrs"),
            "seeds": [r["seed"] for r in rs],
            "test_psnr": psnrs,
            "test_ssim": [r["test_ssim"] for r in rs],
            "mean_test_psnr": _finite(statistics.mean(p if p is not None else math.nan for p in psnrs)),
        }
        if at is not None:
            row["curve_psnr_at_equal_time"] = [value_at(r.get("curve") or [], at) for r in rs]
            row["seconds_to_adam_final"] = [_to_adam_final(r, runs) for r in rs]
            row["iterations_to_adam_final"] = [_to_adam_final(r, runs, "iteration") for r in rs]
            row["iterations"] = [r["iterations"] for r in rs]
        rows.append(row)
        cells = [arch, optimizer, lrs, str(len(rs)), _mean_std(psnrs)]
        cells += [_mean_std([p - baseline.psnr if p is not None else None for p in psnrs])]
        cells += [_mean_std(row["test_ssim"], 3), _mean_std([r["test_lpips"] for r in rs], 3)]
        if at is not None:
            cells += [_mean_std(row["curve_psnr_at_equal_time"]), _mean_std(row["seconds_to_adam_final"], 0)]
            cells += [_mean_std(row["iterations_to_adam_final"], 0), _mean_std(row["iterations"], 0)]
        cells += [
            _mean_std([r["mean_stable_rank"] for r in rs], 1),
            _mean_std([r["iterations_per_s"] for r in rs]),
        ]
        cells += [_mean_std([r["seconds"] for r in rs], 0), _step_shares(rs)]
        lines.append(_table_line(cells))
    return "\n".join(lines) + "\n", rows


RENDERS = {"rgb": "renders", "depth": "depths"}
"""Folders of OUTPUT that keep each run's renders of test view 0, by what they show."""


def render_path(output: Path, arch: str, optimizer: str, seed: int, image: str = "rgb") -> Path:
    return output / RENDERS[image] / f"{arch}-{optimizer}-seed{seed}.png"


def save_render(path: Path, render: np.ndarray) -> None:
    buffer = io.BytesIO()
    Image.fromarray((render.clip(0, 1) * 255).round().astype(np.uint8)).save(buffer, format="PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())


def load_renders(
    output: Path, runs: list[dict], image: str = "rgb"
) -> dict[tuple[str, str], tuple[int, np.ndarray]]:
    """Per (arch, optimizer), in the order of ``runs`` (the table's): the lowest seed whose render
    (``image``: rgb or depth) of test view 0 was kept."""
    renders: dict[tuple[str, str], tuple[int, np.ndarray]] = {}
    for r in runs:
        key, path = (
            (r["arch"], r["optimizer"]),
            render_path(output, r["arch"], r["optimizer"], r["seed"], image),
        )
        if path.is_file() and (key not in renders or r["seed"] < renders[key][0]):
            renders[key] = (r["seed"], np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255)
    return renders


def figure(renders: dict[tuple[str, str], tuple[int, np.ndarray]], truth: np.ndarray, path: Path) -> None:
    """Per arch (lowest seed kept): ground truth, Adam, Muon, and each one's error map
    |render − truth|."""
    archs = list(dict.fromkeys(arch for arch, _ in renders))
    fig, axes = new_figure(len(archs), 5, size=(12, 2.6 * len(archs)))
    for row, arch in enumerate(archs):
        draw_panel(axes[row, 0], f"{arch}: ground truth (test view 0)", truth)
        errors = {o: np.abs(renders[arch, o][1] - truth).mean(-1) for o in OPTIMIZERS if (arch, o) in renders}
        vmax = max((float(e.max()) for e in errors.values()), default=1.0) or 1.0
        for k, optimizer in enumerate(OPTIMIZERS):
            if (arch, optimizer) not in renders:
                for ax in (axes[row, 1 + k], axes[row, 3 + k]):
                    ax.axis("off")
                continue
            seed, render = renders[arch, optimizer]
            view_psnr = psnr(torch.from_numpy(render), torch.from_numpy(truth))
            draw_panel(axes[row, 1 + k], f"{optimizer}, seed {seed} ({view_psnr:.2f} dB)", render)
            axes[row, 3 + k].imshow(errors[optimizer], cmap="inferno", vmin=0, vmax=vmax)
            axes[row, 3 + k].set_xticks([])
            axes[row, 3 + k].set_yticks([])
            axes[row, 3 + k].set_title(f"{optimizer} |error| (0–{vmax:.2f})", fontsize=8)
    save_figure(fig, path)


def method_label(run: dict) -> str:
    """The registered method a run trained (muon-ngp, muon-nerf-adam, nerfacto, …)."""
    return run.get("method") or method_name(run["arch"], run["optimizer"])


def capture_figure(runs: list[dict], output: Path, truth: np.ndarray, title: str) -> None:
    """Test view 0 of a capture: per method (lowest seed kept, in table order) its render with
    that view's PSNR, and below it its depth (nerfstudio's depth colour map, faded by the
    accumulation, as its viewer shows it): geometry that the colours hide. The captures carry no
    data licence (benchmark use only), so the figure holds renders, never the photo itself."""
    rgbs, depths = load_renders(output, runs), load_renders(output, runs, "depth")
    if not rgbs:
        return
    labels = {(r["arch"], r["optimizer"]): method_label(r) for r in runs}
    height, width = truth.shape[:2]
    side = 2.4  # inches per panel's longer side
    panel = (side * min(1.0, width / height), side * min(1.0, height / width) + 0.45)
    fig, axes = new_figure(2, len(rgbs), size=(panel[0] * len(rgbs), 2 * panel[1] + 0.4))
    for col, (key, (seed, render)) in enumerate(rgbs.items()):
        view_psnr = psnr(torch.from_numpy(render), torch.from_numpy(truth))
        draw_panel(axes[0, col], f"{labels[key]}\nseed {seed}, {view_psnr:.2f} dB", render)
        if key in depths:
            draw_panel(axes[1, col], f"{labels[key]}: depth", depths[key][1])
        else:
            axes[1, col].axis("off")
    fig.suptitle(f"{title}: test view 0", fontsize=10)
    save_figure(fig, output / "renders.png")


def _mean_curve(curves: list[list[dict]], key: str) -> list[float] | None:
    """``key`` averaged over seeds point by point while every seed's curve has a point at the same
    iteration (runs a stop rule ended at different iterations share their curves up to the
    earliest stop); None when they share no point."""
    shared = 0
    for points in zip(*curves, strict=False):
        if any(p["iteration"] != points[0]["iteration"] for p in points):
            break
        shared += 1
    return [statistics.mean(c[i][key] for c in curves) for i in range(shared)] or None


def curves_figure(runs: list[dict], title: str, path: Path) -> bool:
    """Test PSNR on the curve views against training seconds (curve evaluations excluded) and
    against iterations: a colour per arch, solid for Muon, dashed for Adam, dash-dotted for a
    peer; the mean over seeds while their curves share iterations, each seed faint behind it.
    Returns whether there was a curve to draw."""
    groups: dict[str, list[dict]] = {}
    for r in runs:
        if r.get("curve"):
            groups.setdefault(method_label(r), []).append(r)
    if not groups:
        return False
    archs = list(dict.fromkeys(rs[0]["arch"] for rs in groups.values()))
    views = max(len(r.get("curve_views") or []) for rs in groups.values() for r in rs)
    fig, axes = new_figure(1, 2, size=(11, 4.2))
    for label, rs in groups.items():
        arch, optimizer = rs[0]["arch"], rs[0]["optimizer"]
        style = {"color": f"C{archs.index(arch) % 10}", "linestyle": "-" if optimizer == "muon" else "--"}
        if arch in PEERS:
            style["linestyle"] = "-."
        curves = [r["curve"] for r in rs]
        psnrs = _mean_curve(curves, "psnr")
        for ax, x in zip(axes[0], ("seconds", "iteration"), strict=True):
            for c in curves if len(curves) > 1 or psnrs is None else []:
                ax.plot([p[x] for p in c], [p["psnr"] for p in c], linewidth=0.8, alpha=0.35, **style)
            if psnrs is not None:
                seeds = f" (mean of {len(curves)} seeds)" if len(curves) > 1 else ""
                ax.plot(
                    _mean_curve(curves, x),
                    psnrs,
                    linewidth=1.8,
                    marker="o",
                    markersize=3,
                    label=label + seeds,
                    **style,
                )
            else:  # curves at different iterations: every seed's own line, labelled once
                ax.plot([], [], linewidth=1.8, label=f"{label} ({len(curves)} seeds)", **style)
    for ax, xlabel in zip(
        axes[0], ("training time (s, curve evaluations excluded)", "iteration"), strict=True
    ):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"test PSNR (dB), mean of {views} test views")
        ax.grid(alpha=0.3)
        ax.set_xlim(left=0)
    axes[0, 1].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0, 1].legend(fontsize=8, loc="best", handlelength=4)  # long enough to show the dashes
    fig.suptitle(f"{title}: test PSNR during training", fontsize=11)
    save_figure(fig, path)
    return True


def machine(device: str) -> dict:
    info = {**hardware(), "cpu": cpu_name(), "load_average_1min": os.getloadavg()[0], "device": device}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def scene_words(scene: dict) -> str:
    """The scene of a results header, in words."""
    if scene.get("kind", "blender") == "blender":
        return f"{scene['train_views']} training views at {scene['size']}², {scene['test_views']} test views"
    width, height = scene["image_size"]
    side = f"long side {scene['max_side']}" if scene["max_side"] is not None else "as captured"
    return (
        f"capture `{Path(scene['data']).name}` at {width}×{height} ({side}), {scene['train_views']} training "
        f"views, {scene['test_views']} test views (nerfstudio-data's split)"
    )


def header_notes(config: dict, baseline: Baseline, at: float | None) -> str:
    """What a capture's baseline row and the equal-time column mean, under the header line."""
    notes = []
    if config["scene"].get("kind") == "capture":
        rgb = ", ".join(f"{c:.2f}" for c in baseline.rgb)
        notes.append(
            f"Baseline row: the mean training colour ({rgb}) predicted everywhere (a capture has no known "
            "background)."
        )
    if at is not None:
        curve = config["curve"]
        notes.append(
            f"Curve PSNR at {at:.1f} s: each run's test PSNR on the {len(curve['views'])} curve views "
            f"(test views {', '.join(map(str, curve['views']))}) at the shortest training time of any run "
            f"in the table, linear between its curve points (every {curve['every']} iterations and the "
            "last; curve evaluations are not training time)."
        )
    stop = config.get("stop")
    if stop:
        rules = []
        if stop["gain"] is not None:
            gain, window = stop["gain"], stop["window"]
            rules.append(
                f"converged: the best curve PSNR gained < {gain} dB in the last {window} iterations"
                f" and the latest is within {gain} dB of it"
            )
        if stop["seconds"] is not None:
            rules.append(f"time limit: {stop['seconds']:.0f} s of training, curve evaluations included")
        notes.append(
            f"A run stops at the first curve point where {' or '.join(rules)} (the iterations column: where "
            f"each stopped, of {config['iterations']} planned; learning rates decay over the planned run)."
        )
    if config.get("ngp_mlp"):
        layers, width = config["ngp_mlp"]
        registered = registered_ngp_mlp()
        notes.append(
            f"ngp's position MLP: {layers} linear layers × {width} (the registered muon-ngp: "
            f"{registered.num_layers} × {registered.width})."
        )
    return "".join(note + "\n\n" for note in notes)


def where_ran(runs: list[dict], mach: dict) -> str:
    """Where a table's runs ran, in words, from each run's own machine record: runs kept or merged
    from elsewhere name their machine, not this invocation's (``mach``). One GPU, or the CPUs
    (each once, in run order) and their thread counts."""
    machines = [r.get("machine", mach) for r in runs] or [mach]
    gpus = {m.get("gpu") for m in machines}
    if len(gpus) == 1 and None not in gpus:
        return gpus.pop()
    cpus = ", ".join(dict.fromkeys(m.get("cpu", mach["cpu"]) for m in machines))
    return f"{cpus} ({thread_counts([m.get('threads', mach['threads']) for m in machines], 'runs')})"


def write_results(cfg: NerfBenchConfig, state: dict, truth: np.ndarray) -> str:
    """``results.json``, ``results.md`` and the figures (``renders.png``; ``curves.png`` when the
    runs have curves), rewritten whole (atomically)."""
    runs, baseline = state["runs"], Baseline(**state["baseline"])
    at = equal_time(runs)
    table, rows = summarize(runs, baseline, at)
    config, mach = state["config"], state["machine"]
    done = len(runs) == state["planned_runs"]
    state["minutes"] = (
        sum(r["setup_seconds"] + r["seconds"] + r["eval_seconds"] + r.get("curve_seconds", 0) for r in runs)
        / 60
    )
    status = "" if done else f" (partial: {len(runs)} of {state['planned_runs']} runs)"
    where = where_ran(runs, mach)
    torches = ", ".join(dict.fromkeys(r.get("machine", mach).get("torch", mach["torch"]) for r in runs))
    header = (
        f"Profile `{config['profile']}`{' (dry run)' if cfg.dry_run else ''} on {where}, torch "
        f"{torches or mach['torch']}: {scene_words(config['scene'])}; {config['iterations']} iterations of "
        f"{config['rays']} rays"
        + (  # the position-MLP archs' model; ngp and the peers bring their own (each run's "model")
            f" × ({samples_per_ray(config['model'])}) samples, "
            f"{config['model']['num_layers']}×{config['model']['width']} field"
            if any(r["arch"] in ARCHITECTURES for r in runs) or not runs
            else " (each method's own model and samples)"
        )
        + f"; {state['minutes']:.1f} min{status}.\n\n"
        + header_notes(config, baseline, at)
    )
    atomic_write_bytes(cfg.output / "results.md", (header + table).encode())
    summary = {"summary": rows, **({"equal_time_seconds": at} if at is not None else {})}
    write_json(cfg.output / "results.json", {**state, "complete": done, **summary})
    title = Path(config["scene"]["data"]).name
    if config["scene"].get("kind") == "capture":
        capture_figure(runs, cfg.output, truth, title)
    else:
        renders = load_renders(cfg.output, runs)
        if renders:
            figure(renders, truth, cfg.output / "renders.png")
    curves_figure(runs, title, cfg.output / "curves.png")
    return header + table


COMPARABLE = ("profile", "iterations", "rays", "tf32", "device", "model", "stop", "ngp_mlp")
"""What a kept run must share with this invocation (and the scene's selection and views)."""
SCENE_KEYS = {
    "blender": ("size", "stride", "train_views", "test_views"),
    "capture": ("max_side", "source", "train_views", "test_views"),
}
"""Per scene kind, what makes two scenes the same: the selection of views and their size."""


def _comparable(config: dict, key: str) -> object:
    """``config[key]`` as two runs must share it: a stop rule without its time limit (the limit is a
    lease's budget, not a setting of the measurement; each run records whether it stopped there),
    and none at all without a convergence gain (a time limit alone, or no rule)."""
    value = config.get(key)
    if key == "stop":
        rule = {k: v for k, v in (value or {}).items() if k != "seconds"}
        return rule if rule.get("gain") is not None else None
    return value


def _differences(old: dict, new: dict) -> list[str]:
    """The settings in which an earlier ``results.json``'s config differs from this one's."""
    # results from before the proposal sampler existed were all coarse/fine
    old = {**old, "model": {"sampler": "coarse_fine", **old.get("model", {})}}
    differs = [k for k in COMPARABLE if _comparable(old, k) != _comparable(new, k)]
    # results from before captures were all Blender scenes
    old_scene, scene = old.get("scene", {}), new["scene"]
    kind = scene.get("kind", "blender")
    if old_scene.get("kind", "blender") != kind:
        return [*differs, "scene.kind"]
    differs += [f"scene.{k}" for k in SCENE_KEYS[kind] if old_scene.get(k) != scene[k]]
    # a curve's views decide what its points measure; runs without curves have none
    if (old.get("curve") or {}).get("views") != (new.get("curve") or {}).get("views"):
        differs.append("curve views")
    return differs


def read_results(path: Path) -> dict:
    """An earlier ``results.json``, with its ``config`` and ``runs``, or one line saying why not."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read {path}: {err}") from None
    if (
        not isinstance(old, dict)
        or not isinstance(old.get("config"), dict)
        or not isinstance(old.get("runs"), list)
    ):
        raise InputError(f"cannot read {path}: not a benchmark's results.json (no config and runs)")
    return old


def kept_runs(path: Path, config: dict, old: dict | None = None) -> list[dict]:
    """The runs of an earlier ``results.json`` (``old``: already read), after checking that they
    were measured at the same scale (mixing profiles in one table would be silently wrong); each
    carries its machine."""
    old = read_results(path) if old is None else old
    old_config, runs = old["config"], old["runs"]
    differs = _differences(old_config, config)
    if differs:
        raise InputError(
            f"{path} was measured with other settings ({', '.join(differs)}): its runs cannot join "
            "this table; choose another --output"
        )
    return [{"machine": old.get("machine", {}), **r} for r in runs]


def gather_runs(cfg: NerfBenchConfig, config: dict) -> list[dict]:
    """Runs kept from OUTPUT (``--resume``) and from each ``--merge`` folder, the first of each
    (arch, optimizer, seed) winning; merged runs' renders (and depths) are copied into OUTPUT."""
    sources = ([cfg.output] if cfg.resume else []) + list(cfg.merge)
    for folder in cfg.merge:
        if not (folder / "results.json").is_file():
            raise InputError(f"--merge {folder}: no results.json there")
    runs: dict[tuple[str, str, int], dict] = {}
    for folder in sources:
        if not (folder / "results.json").is_file():
            continue  # --resume on a fresh OUTPUT
        for r in kept_runs(folder / "results.json", config):
            key = (r["arch"], r["optimizer"], r["seed"])
            if key in runs:
                continue
            check_kept_lrs(folder, r, cfg.lrs, cfg.tuned_table)
            runs[key] = r
            for image in RENDERS:
                source, target = render_path(folder, *key, image), render_path(cfg.output, *key, image)
                if folder != cfg.output and source.is_file() and not target.exists():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    atomic_write_bytes(target, source.read_bytes())
    return list(runs.values())


def chosen_lrs(arch: str, choice: str, table: Path | None = None) -> Lrs | None:
    """The lrs a run of ours trains with under ``--lrs choice``: the untuned ones; for tuned, the
    row of ``--tuned-table``, or None without one (the method's own, ``method_lrs``)."""
    if choice == "untuned":
        return untuned_lrs(arch)
    return None if table is None else method_lrs(arch, table)[0]


def check_tuned_table(cfg: NerfBenchConfig) -> None:
    """``--tuned-table`` only with the tuned lrs, and only a table that reads as one."""
    if cfg.tuned_table is None:
        return
    if cfg.lrs != "tuned":
        raise InputError("--tuned-table sets the tuned lrs: it does not go with --lrs untuned")
    try:
        tuned_table(cfg.tuned_table)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(f"--tuned-table {cfg.tuned_table}: {err}") from None


def check_kept_lrs(folder: Path, run: dict, choice: str, table: Path | None = None) -> None:
    """Refuse a kept run of ours that trained at other lrs than ``--lrs choice`` gives its
    method now: a table row mixes no lrs. A run recorded before runs recorded their lrs trained
    at the untuned ones (the only ones there were)."""
    arch, optimizer = run["arch"], run["optimizer"]
    if arch in PEERS:
        return
    trained = trained_lrs(run)
    want = group_lrs(chosen_lrs(arch, choice, table) or method_lrs(arch)[0], optimizer)
    if trained != want:
        raise InputError(
            f"{folder}: {arch} {optimizer} seed {run['seed']} trained at lrs {trained}, not the "
            f"{choice} {want}: give --lrs {'untuned' if choice == 'tuned' else 'tuned'} or another --output"
        )


def planned_archs(cfg: NerfBenchConfig, kind: SceneKind = "blender") -> tuple[str, ...]:
    """``--archs``, or the default: on a Blender scene the paper's field archs, and the peer that
    samples as they do (a proposal-sampled table holds field archs only); on a capture
    ``CAPTURE_ARCHS`` (relu_pe alone with the proposal sampler)."""
    if cfg.archs is not None:
        return cfg.archs
    if kind == "capture":
        return CAPTURE_ARCHS if cfg.sampler == "coarse_fine" else ("relu_pe",)
    return FIELD_ARCHS + (("vanilla-nerf",) if cfg.sampler == "coarse_fine" else ())


def run_plan(cfg: NerfBenchConfig, profile: Profile) -> list[tuple[str, str, int]]:
    """(arch, optimizer, seed) of every planned run, each seed's Adam/Muon pair together; a peer
    runs as it ships (Adam)."""
    return [
        (arch, optimizer, seed)
        for arch in planned_archs(cfg, profile.kind)
        for seed in (cfg.seeds if cfg.seeds is not None else profile.seeds.get(arch, (0,)))
        for optimizer in (("adam",) if arch in PEERS else cfg.optimizers)
    ]


def run_order(archs: tuple[str, ...]) -> Callable[[dict], tuple]:
    """Table order: the given archs first (then others as they come), seeds, Adam before Muon."""
    return lambda r: (
        archs.index(r["arch"]) if r["arch"] in archs else len(archs),
        r["arch"],
        r["seed"],
        OPTIMIZERS.index(r["optimizer"]),
    )


def select_profile(cfg: NerfBenchConfig, kind: SceneKind) -> Profile:
    """The profile of this invocation: ``--profile`` for the scene kind (the toy one with
    ``--dry-run``), with ``--full``, the sampler, ``--iterations`` and ``--curve-every`` applied."""
    if cfg.dry_run:
        profile = DRY_CAPTURE if kind == "capture" else DRY
    else:
        profile = (CAPTURE_PROFILES if kind == "capture" else PROFILES)[cfg.profile]
    if cfg.full:
        if cfg.dry_run or kind != "blender" or cfg.profile != "gpu":
            raise InputError("--full is a Blender gpu-profile option (400×400, all training views)")
        profile = replace(profile, **FULL)
    if cfg.sampler == "proposal":
        coarse_fine = SAMPLER_KEYS["coarse_fine"]
        model = {k: v for k, v in profile.model.items() if k not in coarse_fine}
        profile = replace(profile, model={**model, **profile.proposal})
    else:
        profile = replace(profile, model={"sampler": "coarse_fine", **profile.model})
    if cfg.iterations is not None:
        if cfg.iterations < 1:
            raise InputError(f"--iterations must be >= 1, got {cfg.iterations}")
        profile = replace(profile, iterations=cfg.iterations)
    if cfg.curve_every is not None:
        if cfg.curve_every < 0:
            raise InputError(f"--curve-every must be >= 0 (0: no curve), got {cfg.curve_every}")
        profile = replace(profile, curve_every=cfg.curve_every)
    if cfg.curve_views < 1:
        raise InputError(f"--curve-views must be >= 1, got {cfg.curve_views}")
    return profile


def stop_rule(cfg: NerfBenchConfig, profile: Profile) -> StopRule | None:
    """``--stop-gain`` / ``--time-limit`` as a rule for the curve points (None: neither given),
    refused in one line when invalid or without a curve to check them on."""
    if cfg.stop_gain is None and cfg.time_limit is None:
        return None
    if not profile.curve_every:
        raise InputError("--stop-gain and --time-limit are checked at curve points: give --curve-every K")
    try:
        return StopRule(gain=cfg.stop_gain, window=cfg.stop_window, seconds=cfg.time_limit)
    except ValueError as e:
        raise InputError(f"--stop-gain/--stop-window/--time-limit: {e}") from None


def check_ngp_mlp(cfg: NerfBenchConfig, archs: tuple[str, ...]) -> None:
    if cfg.ngp_mlp is None:
        return
    layers, width = cfg.ngp_mlp
    if NGP not in archs:
        raise InputError("--ngp-mlp resizes the ngp arch's MLP: add ngp to --archs")
    if not (2 <= layers <= 16 and 8 <= width <= 1024):
        raise InputError(f"--ngp-mlp takes LAYERS in 2..16 and WIDTH in 8..1024, got {layers} {width}")


def check_archs(cfg: NerfBenchConfig, archs: tuple[str, ...], kind: SceneKind) -> None:
    """Refuse, before any work, archs that do not exist or cannot run as asked."""
    unknown = [a for a in archs if a not in ARCHITECTURES and a != NGP and a not in PEERS]
    if unknown:
        choices = ", ".join((*ARCHITECTURES, NGP, *PEERS))
        raise InputError(f"unknown arch {', '.join(unknown)}: choose from {choices}")
    own = [a for a in archs if a in PEERS or a == NGP]
    if cfg.sampler != "coarse_fine" and own:
        raise InputError(f"--sampler is for the field archs; {', '.join(own)} sample as they ship")
    elsewhere = [a for a in archs if a in PEERS and kind not in PEERS[a]]
    if elsewhere:
        raise InputError(f"{', '.join(elsewhere)} is not run on a {kind} here: no scene contraction")
    if cfg.seeds == () or not archs or not cfg.optimizers:
        raise InputError("need at least one arch, optimizer and seed")


def scene_record(cfg: NerfBenchConfig, profile: Profile, scene: Path, views: SceneViews) -> dict[str, Any]:
    """The scene of the results' config: what ``--resume`` compares (``SCENE_KEYS``)."""
    data = str(cfg.data if not cfg.dry_run else scene)
    counts = {"train_views": views.train_views, "test_views": views.test_views}
    if profile.kind == "blender":
        return {"data": data, "size": profile.size, "stride": profile.stride, **counts}
    # a full-resolution run reads the capture itself: its own source
    selection = capture_subset_selection(scene) or {"source": str(scene.resolve()), "max_side": None}
    if cfg.dry_run:
        data = selection["source"]
    height, width = views.truth.shape[:2]
    return {
        "kind": "capture",
        "data": data,
        "max_side": selection["max_side"],
        "source": selection["source"],
        "image_size": [width, height],
        **counts,
    }


def default_output(cfg: NerfBenchConfig, kind: SceneKind) -> Path:
    if kind == "blender":
        return Path("outputs/bench/nerf")
    return Path("outputs/bench/captures") / ("synthetic" if cfg.dry_run else cfg.data.resolve().name)


def main(cfg: NerfBenchConfig) -> dict:
    console = Console()
    kind = scene_kind(cfg)
    profile = select_profile(cfg, kind)
    cfg = replace(cfg, output=cfg.output or default_output(cfg, kind))
    device = cfg.device or profile.device
    archs = planned_archs(cfg, kind)
    check_archs(cfg, archs, kind)
    check_ngp_mlp(cfg, archs)
    check_tuned_table(cfg)
    stop = stop_rule(cfg, profile)
    if cfg.table_only and not (cfg.resume or cfg.merge):
        raise InputError("--table-only needs runs to tabulate: give --resume or --merge FOLDER")
    if cfg.table_only and cfg.extend:
        raise InputError("--extend trains the runs it continues: it does not go with --table-only")
    if device.startswith("cuda") and not cfg.table_only:  # a table alone runs nothing there
        if not torch.cuda.is_available():
            raise InputError(f"device {device} requested but torch sees no CUDA device")
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = profile.tf32
    work = cfg.work or cfg.output / "work"
    made = missing_folders(work)  # deepest first: made[-1] is the outermost folder this run makes
    scene = prepare_scene(cfg, profile, work)
    views = SCENE_VIEWS[kind](scene)
    plan = run_plan(cfg, profile)
    curve_views = evenly_spaced(views.test_views, cfg.curve_views) if profile.curve_every else None
    # the position-MLP model at this profile, for the record before any run
    _, first_model = run_config(scene, "relu_pe", "muon", 0, profile, device, work)
    record_model = {k: v for k, v in first_model.items() if k not in ("arch", "hidden_optimizer")}
    baseline = views.baseline
    state: dict[str, Any] = {
        # the keys tables had before captures: their baseline was always the white background
        **({"background_psnr": baseline.psnr, "background": "white"} if kind == "blender" else {}),
        "baseline": asdict(baseline),
        "config": {
            "profile": "dry-run" if cfg.dry_run else cfg.profile,
            "iterations": profile.iterations,
            "rays": profile.rays,
            "tf32": profile.tf32 and device.startswith("cuda"),
            "device": device,
            "archs": list(archs),
            "optimizers": list(cfg.optimizers),
            "scene": scene_record(cfg, profile, scene, views),
            "model": record_model,
            **({"curve": {"every": profile.curve_every, "views": curve_views}} if curve_views else {}),
            "stop": asdict(stop) if stop else None,
            "ngp_mlp": list(cfg.ngp_mlp) if cfg.ngp_mlp else None,
            "lrs": cfg.lrs,
            "args": asdict(cfg),
        },
        "machine": machine(device),
        "seeds": sorted({s for _, _, s in plan}),
        "runs": [],
    }
    try:
        state["runs"] = gather_runs(cfg, state["config"])
        done = {(r["arch"], r["optimizer"], r["seed"]) for r in state["runs"]}
        todo = [run for run in plan if run not in done]
        carried = carried_runs(cfg, state["config"], todo, state["machine"])
    except InputError:  # refused before any run: the scene subset written for it goes too
        if made:
            shutil.rmtree(made[-1], ignore_errors=True)
        raise
    state["planned_runs"] = len(done) + len(todo)
    if cfg.table_only:
        todo = []
    order = run_order(archs)
    state["runs"].sort(key=order)
    console.print(
        f"[bold]{len(todo)} runs[/]{f' ({len(done)} kept)' if done else ''} on {scene} "
        f"({views.train_views} training views, {views.test_views} test views); "
        f"{baseline.row} test PSNR {baseline.psnr:.2f} dB"
    )
    if device.startswith("cuda") and todo:  # cuBLAS initializes here, not inside the first timed run
        torch.ones(64, 64, device=device).matmul(torch.ones(64, 64, device=device))
        torch.cuda.synchronize()
    table = write_results(cfg, state, views.truth)
    kept_images = ("rgb", "depth") if kind == "capture" else ("rgb",)  # what its renders.png shows
    for i, (arch, optimizer, seed) in enumerate(todo, 1):
        carry = carried.get((arch, optimizer, seed))
        console.print(
            f"[bold][{i}/{len(todo)}][/] {arch} {optimizer} seed {seed}: {profile.iterations} iterations"
            + (f", on from iteration {carry.iterations} ({carry.folder})" if carry else "")
        )
        record, renders = train_and_score(
            scene,
            arch,
            optimizer,
            seed,
            profile,
            device,
            work,
            cfg.output,
            curve_views,
            stop,
            cfg.ngp_mlp,
            chosen_lrs(arch, cfg.lrs, cfg.tuned_table),
            carry,
        )
        for image in kept_images:
            save_render(render_path(cfg.output, arch, optimizer, seed, image), renders[image])
        state["runs"].append(record)
        state["runs"].sort(key=order)
        curve = record.get("curve") or []
        stopped = record["stopped"]
        console.print(
            f"    test PSNR {record['test_psnr']:.2f} dB, SSIM {record['test_ssim']:.3f}, "
            f"{record['iterations_per_s']:.2f} it/s, {record['seconds']:.0f} s"
            + (f"; stopped after {record['iterations']} iterations ({stopped})" if stopped else "")
            + (f"; curve {len(curve)} points, {record['curve_seconds']:.0f} s of evaluation" if curve else "")
        )
        table = write_results(cfg, state, views.truth)  # after every run: a stop keeps it
    print(table)  # plain: a Markdown table must not be re-wrapped to the terminal's width
    figures = "renders.png" + (", curves.png" if curve_views else "")
    console.print(f"wrote {cfg.output}/results.json, results.md, {figures}")
    return state


if __name__ == "__main__":
    run_cli(lambda: main(cli(NerfBenchConfig, sys.argv[1:], "scripts/bench_nerf.py")))
