#!/usr/bin/env python3
"""Novel-view benchmark of ``muon-nerf``: archs × {adam, muon} × seeds on a Blender scene.

Every run is the registered method's config (``muon-nerf[-ARCH][-adam]``), trained in this
process by nerfstudio's own ``Trainer`` (``trainer.train()``, as ``ns-train`` runs it) and scored
as ``ns-eval`` scores it (``pipeline.get_average_eval_image_metrics`` on held-out test views:
PSNR, SSIM, LPIPS only when its AlexNet weights are cached). Adam and Muon runs of one seed
start from the same initial field (the seed is set as ``ns-train`` sets it).

Profiles:
  cpu   lego at 100×100, the WIRE/FINER protocol's 25 training views (every 4th of 100), 10
        test views; 512 rays × (32 + 32) samples, 6×128 field, 2000 iterations: ≈ 0.3 s per
        iteration on 2 quiet cores (issue 13's probe), so one relu_pe Adam/Muon pair ≈ 20–25 min
        with evaluation, within the 40-minute budget with room for load.
  gpu   the FINER protocol (200×200, 25 views, 10 test views) with the registered model
        (1024 rays × (64 + 64) samples, 6×256), 2000 iterations, TF32 matmuls; ``--full`` trains
        on all 100 training views at 400×400 instead.
Both profiles plan relu, relu_pe, siren and finer (cpu: relu_pe over seeds 0, 1, 2) and, as a
peer at the same rays, samples and iterations, nerfstudio's ``vanilla-nerf``.
``--dry-run`` runs the whole pipeline on a toy sphere scene with a tiny model (2 iterations).

Writes to OUTPUT: ``results.json`` (``background_psnr``: the all-background (white) prediction on
the same test views; ``runs``: arch, optimizer, seed, test PSNR/SSIM, iterations, seconds, it/s,
final stable ranks; config, machine, seeds; ``seconds`` is ``trainer.train()``'s wall time,
its end-of-training checkpoint included), ``results.md`` (the table) and ``renders.png`` (one
test view per arch: ground truth, Adam, Muon, their error maps; each run's render is kept in
``renders/``). All three are rewritten after every run, so a benchmark stopped early keeps what
it measured, and ``--resume`` runs only what OUTPUT's ``results.json`` lacks (same profile, scale
and model; the runs it keeps carry the machine they ran on).

    python3 scripts/bench_nerf.py --profile cpu        # the committed cpu table, from scratch
    python3 scripts/bench_nerf.py --profile cpu --resume --output docs/results/nerf_cpu
    python3 scripts/bench_nerf.py --profile cpu --archs relu_pe --seeds 3 4 --resume
    python3 scripts/bench_nerf.py --profile gpu --data .devdata/lego200 --archs relu_pe siren finer
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
from nerfstudio.engine.trainer import Trainer, TrainerConfig
from nerfstudio.utils import writer
from PIL import Image
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from muon_nerf.fields import ARCHITECTURES  # noqa: E402
from muon_nerf.fit.cli import cli  # noqa: E402
from muon_nerf.fit.diagnostics import stable_rank  # noqa: E402
from muon_nerf.fit.errors import InputError, run_cli  # noqa: E402
from muon_nerf.fit.hardware import hardware, thread_counts  # noqa: E402
from muon_nerf.fit.io import atomic_write_bytes, missing_folders, write_json  # noqa: E402
from muon_nerf.fit.metrics import psnr, ssim  # noqa: E402
from muon_nerf.fit.plotting import draw_panel, new_figure, save_figure  # noqa: E402
from muon_nerf.nerf.bench import (  # noqa: E402
    SAMPLER_KEYS,
    StepTimer,
    cpu_name,
    local_config,
    samples_per_ray,
    set_model,
)
from muon_nerf.nerf.config import ngp_trainer_config, trainer_config  # noqa: E402
from muon_nerf.nerf.data import subset_selection, write_blender_subset, write_sphere_scene  # noqa: E402
from muon_nerf.nerf.lpips import cached_lpips  # noqa: E402
from muon_nerf.nerf.model import GROUP_NAMES, MuonNeRFModel  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LEGO = ROOT.parent / "shared" / "data" / "nerf_synthetic" / "lego"
OPTIMIZERS = ("adam", "muon")
FIELD_ARCHS = ("relu", "relu_pe", "siren", "finer")
"""The paper's NeRF comparison without its hash grid (``ngp``, which brings its own model)."""


@dataclass(frozen=True)
class Profile:
    size: int
    """Image side the scene is resized to."""
    stride: int
    """Keep every ``stride``-th training view (4: the protocol's 25 of lego's 100)."""
    test_views: int
    """Evenly spaced test views scored (and as many val views kept in the scene)."""
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


@dataclass
class NerfBenchConfig:
    profile: Literal["cpu", "gpu"] = "cpu"
    data: Path = LEGO
    """A Blender-format scene: the full one (subsampled here to the profile) or a subset that
    ``python -m muon_nerf.nerf.data subset`` wrote with exactly the profile's selection."""
    archs: tuple[str, ...] | None = None
    """Run in this order (each arch's Adam/Muon pairs together): position-MLP architectures of
    ``muon-nerf`` (relu, relu_pe, siren, …), ``ngp`` (``muon-ngp`` / ``muon-ngp-adam``), and
    nerfstudio's ``vanilla-nerf`` and ``nerfacto`` (Adam only). None: the paper's field archs
    and, with coarse/fine sampling, the ``vanilla-nerf`` peer at the same rays, samples and
    iterations."""
    optimizers: tuple[Literal["adam", "muon"], ...] = OPTIMIZERS
    """Optimizer of the hidden matrices (the rest is always Adam)."""
    sampler: Literal["coarse_fine", "proposal"] = "coarse_fine"
    """For the position-MLP archs: coarse_fine: the profile's coarse + importance samples;
    proposal: nerfacto's proposal networks pick the samples (the profile's proposal settings).
    ngp and the peers sample as they ship."""
    seeds: tuple[int, ...] | None = None
    """Seeds of every arch; None: the profile's plan (cpu: 0, 1, 2 for relu_pe, 0 for the others;
    gpu: 0)."""
    iterations: int | None = None
    """Training iterations per run; None: the profile's."""
    device: str | None = None
    """None: the profile's (cpu / cuda)."""
    full: bool = False
    """gpu profile: all 100 training views at 400×400 instead of the 25-view 200×200 protocol."""
    output: Path = Path("outputs/bench/nerf")
    work: Path | None = None
    """Where the scene subset and nerfstudio's run folders (checkpoints, tensorboard) go;
    None: OUTPUT/work."""
    dry_run: bool = False
    """Toy sphere scene, tiny model, 2 iterations, on the CPU: checks the whole pipeline."""
    resume: bool = False
    """Keep the runs already in OUTPUT/results.json (all of them, refused unless measured at the
    same profile, scale and model) and run only the planned ones it lacks."""
    merge: tuple[Path, ...] = ()
    """Other benchmark outputs (folders with results.json) whose runs join this table, under the
    same check as --resume: benchmarks run side by side on one machine end in one table."""


def prepare_scene(cfg: NerfBenchConfig, profile: Profile, work: Path) -> Path:
    """The scene the profile runs on: ``cfg.data`` itself when it already is that subset, else a
    subset of it written under ``work``."""
    if cfg.dry_run:
        views = {"train": 4, "val": 1, "test": profile.test_views}
        return write_sphere_scene(work / "sphere", size=profile.size, views=views)
    if not (cfg.data / "transforms_train.json").is_file():
        raise InputError(f"{cfg.data}/transforms_train.json not found: expected a Blender-format scene")
    want = {"size": profile.size, "stride": profile.stride, "views": None, "eval_views": profile.test_views}
    have = subset_selection(cfg.data)
    if have == want:
        return cfg.data
    if have is not None:
        raise InputError(
            f"{cfg.data} is already a subset ({have}) but the profile needs {want}: pass the full scene"
        )
    return write_blender_subset(
        cfg.data, work / "scene", size=profile.size, stride=profile.stride, eval_views=profile.test_views
    )


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


NGP = "ngp"
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


PEERS: dict[str, Callable[[Any, Profile], dict[str, Any]]] = {
    "vanilla-nerf": _vanilla_settings,
    "nerfacto": _nerfacto_settings,
}
"""nerfstudio's own methods that can join the table as an arch (Adam, as they ship), each with the
settings that make it run fairly at the profile's scale."""


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


def run_config(
    scene: Path, arch: str, optimizer: str, seed: int, profile: Profile, device: str, work: Path
) -> tuple[TrainerConfig, dict[str, Any]]:
    """The registered method's config (``muon-nerf[-ARCH][-adam]``) at the profile's scale, and
    its model settings for the record."""
    if arch == NGP:
        base = ngp_trainer_config(method_name(arch, optimizer), hidden_optimizer=optimizer)
    else:
        base = trainer_config(method_name(arch, optimizer), hidden_optimizer=optimizer, arch=arch)
    config = profile_config(base, scene, f"{arch}-{optimizer}-seed{seed}", seed, profile, device, work)
    # predict_normals only adds inference outputs (a backward pass per chunk), not metrics
    if arch == NGP:  # its own model and sampling
        chunk = {k: v for k, v in profile.model.items() if k == "eval_num_rays_per_chunk"}
        return config, set_model(config, predict_normals=False, **chunk)
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


def peer_config(
    scene: Path, name: str, seed: int, profile: Profile, device: str, work: Path
) -> tuple[TrainerConfig, dict[str, Any]]:
    """nerfstudio's registered ``name`` config at the profile's rays, samples and iterations (its
    own networks, optimizer and schedule), and its model for the record."""
    from nerfstudio.configs.method_configs import method_configs

    config = profile_config(method_configs[name], scene, f"{name}-seed{seed}", seed, profile, device, work)
    return config, {"method": name, **PEERS[name](config.pipeline.model, profile)}


def build_trainer(config: TrainerConfig, arch: str, seed: int) -> Trainer:
    """The trainer of one run, set up as ``ns-train`` would (seeded, test split for eval), without
    another run's event writers; a peer (``PEERS``) gets LPIPS from cached weights only and our
    SSIM, so every row is scored by the same functions."""
    # nerfstudio keeps event writers in a module-level list; one run's must not log the next's
    writer.EVENT_WRITERS.clear()
    _seed_everything(seed)
    trainer = config.setup(local_rank=0, world_size=1)
    # our model builds LPIPS from cached weights itself; a peer's must be kept from downloading
    offline = unittest.mock.patch(PEER_LPIPS, _offline_lpips()) if arch in PEERS else contextlib.nullcontext()
    with offline:
        trainer.setup(test_mode="test")  # the eval dataset is the test split
    if arch in PEERS:
        trainer.pipeline.model.ssim = _our_ssim
    return trainer


def train_and_score(
    scene: Path, arch: str, optimizer: str, seed: int, profile: Profile, device: str, work: Path
) -> tuple[dict, np.ndarray]:
    """One run, trained and scored. Returns its record and its render of the first test view.
    A peer (``PEERS``) is built with LPIPS from cached weights only and scored with our SSIM."""
    if arch in PEERS:
        config, model_record = peer_config(scene, arch, seed, profile, device, work)
    else:
        config, model_record = run_config(scene, arch, optimizer, seed, profile, device, work)
    t0 = time.perf_counter()
    trainer = build_trainer(config, arch, seed)
    timer = StepTimer(trainer.optimizers.optimizers, sync=device.startswith("cuda"))
    t1 = time.perf_counter()
    trainer.train()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t2 = time.perf_counter()
    timer.remove()
    pipeline = trainer.pipeline
    metrics = pipeline.get_average_eval_image_metrics(get_std=True)
    metrics = {k.removeprefix("fine_"): v for k, v in metrics.items()}  # a peer's fine_ssim, fine_lpips
    camera, _ = next(iter(pipeline.datamanager.fixed_indices_eval_dataloader))
    pipeline.eval()
    outputs = pipeline.model.get_outputs_for_camera(camera)
    render = outputs["rgb" if "rgb" in outputs else "rgb_fine"].clamp(0, 1).cpu().numpy()
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
        "test_psnr": _finite(metrics["psnr"]),
        "test_psnr_std": _finite(metrics.get("psnr_std", math.nan)),
        "test_ssim": _finite(metrics["ssim"]),
        "test_lpips": _finite(metrics["lpips"]) if "lpips" in metrics else None,
        "test_views": len(pipeline.datamanager.fixed_indices_eval_dataloader),
        "iterations": profile.iterations,
        "seconds": t2 - t1,
        "iterations_per_s": profile.iterations / (t2 - t1),
        "setup_seconds": t1 - t0,
        "eval_seconds": t3 - t2,
        "optimizer_step_seconds": timer.seconds,
        "optimizer_step_share": sum(timer.seconds.values()) / (t2 - t1),
        "muon_step_share": (
            timer.seconds[GROUP_NAMES["muon"]] / (t2 - t1) if GROUP_NAMES["muon"] in timer.seconds else None
        ),
        "final_stable_rank": {n: _finite(r) for n, r in ranks.items()},
        "mean_stable_rank": _finite(statistics.mean(ranks.values())) if ranks else None,
        "model": model_record,
        "machine": machine(device),
    }
    trainer.shutdown()
    del trainer, pipeline
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return record, render


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


def summarize(runs: list[dict], background: float) -> tuple[str, list[dict]]:
    """Markdown table: one row per (arch, optimizer), mean ± std over seeds, plus the
    all-background baseline so a collapsed model is visible at a glance."""
    lines = [
        "| arch | optimizer | seeds | test PSNR (dB) | over background (dB) | SSIM | LPIPS "
        "| stable rank | it/s | train s | optimizer steps (% of train s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| all-background (white) | – | – | {background:.2f} | 0.00 | – | – | – | – | – | – |",
    ]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["arch"], r["optimizer"]), []).append(r)
    rows = []
    for (arch, optimizer), rs in groups.items():
        psnrs = [r["test_psnr"] for r in rs]
        row = {
            "arch": arch,
            "optimizer": optimizer,
            "seeds": [r["seed"] for r in rs],
            "test_psnr": psnrs,
            "test_ssim": [r["test_ssim"] for r in rs],
            "mean_test_psnr": _finite(statistics.mean(p if p is not None else math.nan for p in psnrs)),
        }
        rows.append(row)
        lines.append(
            f"| {arch} | {optimizer} | {len(rs)} | {_mean_std(psnrs)} "
            f"| {_mean_std([p - background if p is not None else None for p in psnrs])} "
            f"| {_mean_std(row['test_ssim'], 3)} | {_mean_std([r['test_lpips'] for r in rs], 3)} "
            f"| {_mean_std([r['mean_stable_rank'] for r in rs], 1)} "
            f"| {_mean_std([r['iterations_per_s'] for r in rs])} "
            f"| {_mean_std([r['seconds'] for r in rs], 0)} | {_step_shares(rs)} |"
        )
    return "\n".join(lines) + "\n", rows


def render_path(output: Path, arch: str, optimizer: str, seed: int) -> Path:
    return output / "renders" / f"{arch}-{optimizer}-seed{seed}.png"


def save_render(path: Path, render: np.ndarray) -> None:
    buffer = io.BytesIO()
    Image.fromarray((render.clip(0, 1) * 255).round().astype(np.uint8)).save(buffer, format="PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())


def load_renders(output: Path, runs: list[dict]) -> dict[tuple[str, str], tuple[int, np.ndarray]]:
    """Per (arch, optimizer), in the order of ``runs`` (the table's): the lowest seed whose render
    of test view 0 was kept."""
    renders: dict[tuple[str, str], tuple[int, np.ndarray]] = {}
    for r in runs:
        key, path = (r["arch"], r["optimizer"]), render_path(output, r["arch"], r["optimizer"], r["seed"])
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


def machine(device: str) -> dict:
    info = {**hardware(), "cpu": cpu_name(), "load_average_1min": os.getloadavg()[0], "device": device}
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def write_results(cfg: NerfBenchConfig, state: dict, truth: np.ndarray) -> str:
    """``results.json``, ``results.md`` and ``renders.png``, rewritten whole (atomically)."""
    runs, background = state["runs"], state["background_psnr"]
    table, rows = summarize(runs, background)
    config, mach = state["config"], state["machine"]
    done = len(runs) == state["planned_runs"]
    state["minutes"] = sum(r["setup_seconds"] + r["seconds"] + r["eval_seconds"] for r in runs) / 60
    status = "" if done else f" (partial: {len(runs)} of {state['planned_runs']} runs)"
    threads = [r.get("machine", mach).get("threads") for r in runs] or [mach["threads"]]  # kept runs: theirs
    where = mach.get("gpu") or f"{mach['cpu']} ({thread_counts(threads, 'runs')})"
    header = (
        f"Profile `{config['profile']}`{' (dry run)' if cfg.dry_run else ''} on {where}, torch "
        f"{mach['torch']}: {config['scene']['train_views']} training views at {config['scene']['size']}², "
        f"{config['scene']['test_views']} test views; {config['iterations']} iterations of "
        f"{config['rays']} rays"
        + (  # the position-MLP archs' model; ngp and the peers bring their own (each run's "model")
            f" × ({samples_per_ray(config['model'])}) samples, "
            f"{config['model']['num_layers']}×{config['model']['width']} field"
            if any(r["arch"] in ARCHITECTURES for r in runs) or not runs
            else " (each method's own model and samples)"
        )
        + f"; {state['minutes']:.1f} min{status}.\n\n"
    )
    atomic_write_bytes(cfg.output / "results.md", (header + table).encode())
    write_json(cfg.output / "results.json", {**state, "complete": done, "summary": rows})
    renders = load_renders(cfg.output, runs)
    if renders:
        figure(renders, truth, cfg.output / "renders.png")
    return header + table


COMPARABLE = ("profile", "iterations", "rays", "tf32", "device", "model")
"""What a kept run must share with this invocation (and the scene's size and views)."""


def kept_runs(path: Path, config: dict) -> list[dict]:
    """The runs of an earlier ``results.json``, after checking that they were measured at the same
    scale (mixing profiles in one table would be silently wrong); each carries its machine."""
    try:
        old = json.loads(path.read_text())
        old_config, runs = old["config"], old["runs"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(f"cannot read {path}: {err}") from None
    # results from before the proposal sampler existed were all coarse/fine
    old_config = {**old_config, "model": {"sampler": "coarse_fine", **old_config.get("model", {})}}
    scene_keys = ("size", "stride", "train_views", "test_views")
    differs = [k for k in COMPARABLE if old_config.get(k) != config[k]] + [
        f"scene.{k}" for k in scene_keys if old_config.get("scene", {}).get(k) != config["scene"][k]
    ]
    if differs:
        raise InputError(
            f"{path} was measured with other settings ({', '.join(differs)}): its runs cannot join "
            "this table; choose another --output"
        )
    return [{"machine": old.get("machine", {}), **r} for r in runs]


def gather_runs(cfg: NerfBenchConfig, config: dict) -> list[dict]:
    """Runs kept from OUTPUT (``--resume``) and from each ``--merge`` folder, the first of each
    (arch, optimizer, seed) winning; merged runs' renders are copied into OUTPUT."""
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
            runs[key] = r
            source, target = render_path(folder, *key), render_path(cfg.output, *key)
            if folder != cfg.output and source.is_file() and not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(target, source.read_bytes())
    return list(runs.values())


def planned_archs(cfg: NerfBenchConfig) -> tuple[str, ...]:
    """``--archs``, or the default: the paper's field archs, and the peer that samples as they do
    (a proposal-sampled table holds field archs only)."""
    if cfg.archs is not None:
        return cfg.archs
    return FIELD_ARCHS + (("vanilla-nerf",) if cfg.sampler == "coarse_fine" else ())


def run_plan(cfg: NerfBenchConfig, profile: Profile) -> list[tuple[str, str, int]]:
    """(arch, optimizer, seed) of every planned run, each seed's Adam/Muon pair together; a peer
    runs as it ships (Adam)."""
    return [
        (arch, optimizer, seed)
        for arch in planned_archs(cfg)
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


def main(cfg: NerfBenchConfig) -> dict:
    console = Console()
    if cfg.dry_run:
        profile = DRY
    else:
        profile = PROFILES[cfg.profile]
        if cfg.full:
            if cfg.profile != "gpu":
                raise InputError("--full is a gpu-profile option (400×400, all training views)")
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
    device = cfg.device or profile.device
    archs = planned_archs(cfg)
    unknown = [a for a in archs if a not in ARCHITECTURES and a != NGP and a not in PEERS]
    if unknown:
        choices = ", ".join((*ARCHITECTURES, NGP, *PEERS))
        raise InputError(f"unknown arch {', '.join(unknown)}: choose from {choices}")
    own = [a for a in archs if a in PEERS or a == NGP]
    if cfg.sampler != "coarse_fine" and own:
        raise InputError(f"--sampler is for the field archs; {', '.join(own)} sample as they ship")
    if cfg.seeds == () or not archs or not cfg.optimizers:
        raise InputError("need at least one arch, optimizer and seed")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"device {device} requested but torch sees no CUDA device")
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = profile.tf32
    work = cfg.work or cfg.output / "work"
    made = missing_folders(work)  # deepest first: made[-1] is the outermost folder this run makes
    scene = prepare_scene(cfg, profile, work)
    truths = load_test_views(scene)
    plan = run_plan(cfg, profile)
    train_views = len(json.loads((scene / "transforms_train.json").read_text())["frames"])
    # the position-MLP model at this profile, for the record before any run
    _, first_model = run_config(scene, "relu_pe", "muon", 0, profile, device, work)
    record_model = {k: v for k, v in first_model.items() if k not in ("arch", "hidden_optimizer")}
    state: dict[str, Any] = {
        "background_psnr": background_psnr(truths),
        "background": "white",
        "config": {
            "profile": "dry-run" if cfg.dry_run else cfg.profile,
            "iterations": profile.iterations,
            "rays": profile.rays,
            "tf32": profile.tf32 and device.startswith("cuda"),
            "device": device,
            "archs": list(archs),
            "optimizers": list(cfg.optimizers),
            "scene": {
                "data": str(cfg.data if not cfg.dry_run else scene),
                "size": profile.size,
                "stride": profile.stride,
                "train_views": train_views,
                "test_views": len(truths),
            },
            "model": record_model,
            "args": asdict(cfg),
        },
        "machine": machine(device),
        "seeds": sorted({s for _, _, s in plan}),
        "runs": [],
    }
    try:
        state["runs"] = gather_runs(cfg, state["config"])
    except InputError:  # refused before any run: the scene subset written for it goes too
        if made:
            shutil.rmtree(made[-1], ignore_errors=True)
        raise
    done = {(r["arch"], r["optimizer"], r["seed"]) for r in state["runs"]}
    todo = [run for run in plan if run not in done]
    state["planned_runs"] = len(done) + len(todo)
    order = run_order(archs)
    state["runs"].sort(key=order)
    console.print(
        f"[bold]{len(todo)} runs[/]{f' ({len(done)} kept)' if done else ''} on {scene} "
        f"({train_views} training views, {len(truths)} test views); "
        f"all-background test PSNR {state['background_psnr']:.2f} dB"
    )
    if device.startswith("cuda"):  # cuBLAS initializes here, not inside the first timed run
        torch.ones(64, 64, device=device).matmul(torch.ones(64, 64, device=device))
        torch.cuda.synchronize()
    table = write_results(cfg, state, truths[0])
    for i, (arch, optimizer, seed) in enumerate(todo, 1):
        console.print(
            f"[bold][{i}/{len(todo)}][/] {arch} {optimizer} seed {seed}: {profile.iterations} iterations"
        )
        record, render = train_and_score(scene, arch, optimizer, seed, profile, device, work)
        save_render(render_path(cfg.output, arch, optimizer, seed), render)
        state["runs"].append(record)
        state["runs"].sort(key=order)
        console.print(
            f"    test PSNR {record['test_psnr']:.2f} dB, SSIM {record['test_ssim']:.3f}, "
            f"{record['iterations_per_s']:.2f} it/s, {record['seconds']:.0f} s"
        )
        table = write_results(cfg, state, truths[0])  # after every run: a stop keeps it
    print(table)  # plain: a Markdown table must not be re-wrapped to the terminal's width
    console.print(f"wrote {cfg.output}/results.json, results.md, renders.png")
    return state


if __name__ == "__main__":
    run_cli(lambda: main(cli(NerfBenchConfig, sys.argv[1:], "scripts/bench_nerf.py")))
