#!/usr/bin/env python3
"""The paper's comparison as one command: Adam vs Muon for every architecture and task.

Profiles:
  cpu    Kodak images box-downscaled ×4 (192×128), fields narrowed ×4 (width 75, 64 Fourier
         features) so the values-to-parameters ratio stays that of the paper's full-resolution
         5×300 fields (the comparison must stay capacity-limited: a wide field on a tiny image
         memorizes with either optimizer and says nothing); 1000 steps. ~45 min on 2 CPU cores.
  paper  full-resolution Kodak, 5×300 fields, 5000 steps, the paper's task defaults: for a GPU.

Images run every architecture; audio, CT, SISR (and SDF when available) run with their task
defaults, scaled by the profile. Writes ``results.json`` (every run's config, metrics, stable
ranks, time, hardware), ``results.md`` (mean ± std over images, Muon − Adam gain) and
``quality.png``.

    python3 scripts/bench_quality.py --profile cpu
    python3 scripts/bench_quality.py --profile paper --device cuda
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from muon_nerf.fields import ARCHITECTURES  # noqa: E402
from muon_nerf.fit.errors import InputError, run_cli  # noqa: E402
from muon_nerf.fit.hardware import hardware, thread_counts  # noqa: E402
from muon_nerf.fit.metrics import lower_is_better  # noqa: E402
from muon_nerf.runs.cli import cli  # noqa: E402
from muon_nerf.runs.io import atomic_write_bytes, write_json  # noqa: E402
from muon_nerf.runs.plotting import OPTIMIZER_COLORS, new_figure, save_figure  # noqa: E402
from muon_nerf.runs.run import OPTIMIZERS, fit_one  # noqa: E402
from muon_nerf.signals.cli import parse  # noqa: E402
from muon_nerf.tasks import TASKS  # noqa: E402

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@dataclass(frozen=True)
class Profile:
    image_args: tuple[str, ...]
    """Flags for every image run (scale, width, schedule)."""
    task_args: dict[str, tuple[str, ...]]
    """Flags per extra task (audio, ct, sisr, sdf), on top of each task's paper defaults."""
    arch_args: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    """Flags per image arch, after ``image_args`` (the later value of a repeated flag wins)."""
    task_arch_args: dict[str, dict[str, tuple[str, ...]]] = dataclasses.field(default_factory=dict)
    """Extra rows: per task, per arch, flags after the task's (e.g. the SDF task with a hash grid)."""


PROFILES: dict[str, Profile] = {
    "cpu": Profile(
        image_args=("--downscale", "4", "--width", "75", "--ff-features", "64", "--steps", "1000"),
        # widths keep each task's paper values-to-parameters ratio at the smaller CPU signal
        task_args={
            "audio": tuple(
                f"--audio {DATA}/audio/gt_bach.wav --offset 2 --duration 0.5 --width 68 --steps 1000".split()
            ),
            "ct": tuple(
                f"--image {DATA}/ct/chest.png --downscale 2 --width 128 --ff-features 32 --steps 1000".split()
            ),
            # ×2 from a 128-px input, 4×128: at ×4 (a 64-px input) neither optimizer got clearly
            # above bicubic at any tried width or σ (docs/signals.md). Fourier σ scaled down with
            # the input (σ 10, the full-scale value, puts most features above a small input's
            # Nyquist frequency, and both optimizers then alias far below bicubic).
            "sisr": tuple(
                f"--image {DATA}/div2k/tancik512_01.png --downscale 2 --scale 2 --width 128 "
                "--ff-features 32 --ff-sigma 2 --steps 1000".split()
            ),
            "sdf": ("--mesh", str(DATA / "shapes/bunny/bun_zipper.ply")),
        },
        # A hash table is large: sized so the values-to-parameters ratio stays near the other
        # rows' (image ≈ 4, SDF ≈ 7–9). Image: 8 levels up to the 192-px side, 512 rows per
        # level, a 5×52 MLP. SDF: 6 levels at resolutions 8 … 64 (4096 rows per level), a 4×64
        # MLP (finer levels in a table this small are mostly hash collisions: floaters). Tables
        # at instant-ngp's lr 1e-2.
        arch_args={
            "hash": tuple(
                "--width 52 --hash-levels 8 --hash-log2-table-size 9 --hash-finest-resolution 192 "
                "--encoding-lr 1e-2".split()
            ),
        },
        task_arch_args={
            "sdf": {
                "hash": tuple(
                    "--arch hash --num-layers 4 --width 64 --hash-levels 6 --hash-log2-table-size 12 "
                    "--hash-base-resolution 8 --hash-finest-resolution 64 --encoding-lr 1e-2".split()
                ),
            },
        },
    ),
    "paper": Profile(
        image_args=(),
        task_args={
            "audio": ("--audio", str(DATA / "audio/gt_bach.wav")),
            "ct": ("--image", str(DATA / "ct/chest.png")),
            "sisr": ("--image", str(DATA / "div2k/0001_1216x832.png")),
            # muon-sdf's paper profile (FINER/BACON's 2 hidden layers × 256, long schedule)
            "sdf": ("--profile", "paper", "--mesh", str(DATA / "shapes/bunny/bun_zipper.ply")),
        },
    ),
}


@dataclass
class QualityConfig:
    profile: Literal["cpu", "paper"] = "cpu"
    images: tuple[Path, ...] = tuple(DATA / "kodak" / f"kodim{i:02d}.png" for i in (1, 5, 13))
    archs: tuple[str, ...] = tuple(ARCHITECTURES)
    """Image architectures: the paper's seven and hash (sized per profile, ``arch_args``)."""
    tasks: tuple[str, ...] = ("audio", "ct", "sisr", "sdf")
    """Extra tasks to run when registered in muon-fit (skipped with a note otherwise)."""
    extra: str = ""
    """Flags appended to every run, e.g. ``--extra="--steps 20"`` for a smoke run."""
    device: str = "cpu"
    output_dir: Path = Path("outputs/bench/quality")
    resume: bool = False
    """Keep the runs already in OUTPUT_DIR/results.json whose task and flags this plan repeats
    (refused unless the profile is the same) and run only the others."""


def run_pair(task: str, args: list[str], device: str) -> dict:
    """Adam and Muon on the same signal and initial weights: metrics, ranks, time, sizes."""
    cfg = parse(task, [*args, "--no-progress", "--device", device])
    cfg.check()
    signal = cfg.signal().to(device)
    described = signal.describe()
    out = {"task": task, "args": args, "signal": described, "config": dataclasses.asdict(cfg), "runs": {}}
    values = int(signal.train.target.numel())  # before the fits: a failure here costs nothing
    for name in OPTIMIZERS:
        res = fit_one(signal, cfg, name)
        out["runs"][name] = {
            "metrics": res.metrics,
            "final_stable_rank": res.ranks.final_stable(),
            "train_seconds": res.train_seconds,
            "num_params": res.extra["num_params"],
        }
    out["values_per_param"] = values / out["runs"]["adam"]["num_params"]
    out["primary_metric"] = signal.primary_metric
    out["hardware"] = hardware()
    return out


def _mean_std(xs: list[float]) -> str:
    return f"{statistics.mean(xs):.2f} ± {statistics.stdev(xs):.2f}" if len(xs) > 1 else f"{xs[0]:.2f}"


def summarize(runs: list[dict]) -> tuple[str, list[dict]]:
    """Markdown table: one row per (task, arch), mean ± std over signals."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["task"], r["config"]["field"]["arch"]), []).append(r)
    rows, lines = (
        [],
        [
            "| task | arch | n | values/params | lrs: Adam · Muon (Adam part, Muon) | metric | Adam | Muon "
            "| Muon − Adam | stable rank Adam → Muon | time Muon/Adam |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ],
    )
    for (task, arch), rs in groups.items():
        metric = rs[0]["primary_metric"]
        adam = [r["runs"]["adam"]["metrics"][metric] for r in rs]
        muon = [r["runs"]["muon"]["metrics"][metric] for r in rs]
        gain = [m - a for a, m in zip(adam, muon, strict=True)]
        ranks = {
            n: statistics.mean(statistics.mean(r["runs"][n]["final_stable_rank"].values()) for r in rs)
            for n in OPTIMIZERS
        }
        time_ratio = statistics.mean(
            r["runs"]["muon"]["train_seconds"] / r["runs"]["adam"]["train_seconds"] for r in rs
        )
        ratio = statistics.mean(r["values_per_param"] for r in rs)
        lrs = {run_lrs(r["config"]) for r in rs}
        lr_text = " / ".join(f"{a:.2g} · {ma:.2g}, {m:.2g}" for a, m, ma in sorted(lrs))
        row = dict(
            task=task,
            arch=arch,
            n=len(rs),
            metric=metric,
            adam=adam,
            muon=muon,
            gain=gain,
            values_per_param=ratio,
            rank_adam=ranks["adam"],
            rank_muon=ranks["muon"],
            time_ratio=time_ratio,
            lrs=sorted(lrs),
        )
        rows.append(row)
        lines.append(
            f"| {task} | {arch} | {len(rs)} | {ratio:.1f} | {lr_text} | {metric} | {_mean_std(adam)} "
            f"| {_mean_std(muon)} | {_mean_std(gain)} | {ranks['adam']:.1f} → {ranks['muon']:.1f} "
            f"| {time_ratio:.2f} |"
        )
    return "\n".join(lines) + "\n", rows


def run_lrs(config: dict) -> tuple[float, float, float]:
    """(Adam lr, Muon lr, Adam lr of the Muon run) of a pair's saved config (before
    --muon-adam-lr existed, the Muon run's Adam part used --lr)."""
    optim = config["optim"]
    return optim["lr"], optim["muon_lr"], optim.get("muon_adam_lr") or optim["lr"]


def figure(rows: list[dict], path: Path) -> None:
    """Per-row grouped bars (Adam, Muon; mean ± std) and the gain."""
    fig, axes = new_figure(1, 2, size=(max(6, 0.9 * len(rows) + 3), 3.4))
    labels = [f"{r['task']}\n{r['arch']}" for r in rows]
    x = np.arange(len(rows))
    for k, name in enumerate(OPTIMIZERS):
        vals = [r[name] for r in rows]
        axes[0, 0].bar(
            x + (k - 0.5) * 0.4,
            [np.mean(v) for v in vals],
            0.4,
            yerr=[np.std(v) for v in vals],
            label=name,
            color=OPTIMIZER_COLORS[name],
        )
    units = "dB; SDF: Chamfer-L1 ×10³"
    axes[0, 0].set(xticks=x, ylabel="primary metric", title=f"Adam vs Muon ({units})")
    axes[0, 0].set_xticklabels(labels, fontsize=7)
    axes[0, 0].legend()
    # improvement, so that up is better on every row: Muon − Adam, or Adam − Muon where lower is better
    improvement = [[-g for g in r["gain"]] if lower_is_better(r["metric"]) else r["gain"] for r in rows]
    means, stds = [np.mean(v) for v in improvement], [np.std(v) for v in improvement]
    axes[0, 1].bar(x, means, yerr=stds, color="tab:red")
    axes[0, 1].axhline(0, color="k", linewidth=0.5)
    axes[0, 1].set(xticks=x, ylabel="Muon's improvement", title=f"Muon's improvement over Adam ({units})")
    axes[0, 1].set_xticklabels(labels, fontsize=7)
    save_figure(fig, path)


def write_results(cfg: QualityConfig, runs: list[dict], seconds: float, done: bool, planned: int):
    """``results.md`` (header with machine and scale + table), ``results.json`` and the figure."""
    table, rows = summarize(runs)
    hw = hardware()
    status = "" if done else f" (partial: {len(runs)} of {planned} runs so far)"
    threads = [(r.get("hardware") or hw)["threads"] for r in runs] or [hw["threads"]]  # kept pairs: theirs
    where = thread_counts(threads, "pairs")
    header = (
        f"Profile `{cfg.profile}` on {hw['processor']} ({where}, torch {hw['torch']}"
        f"{', ' + hw['gpu'] if 'gpu' in hw else ''}), {seconds / 60:.1f} min{status}.\n\n"
    )
    atomic_write_bytes(cfg.output_dir / "results.md", (header + table).encode())
    write_json(
        cfg.output_dir / "results.json",
        {
            "profile": cfg.profile,
            "hardware": hw,
            "minutes": seconds / 60,
            "complete": done,
            "summary": rows,
            "runs": runs,
        },
    )
    figure(rows, cfg.output_dir / "quality.png")
    return header + table, rows


def kept_runs(
    cfg: QualityConfig, planned: dict[tuple[str, tuple[str, ...]], tuple[float, float, float]]
) -> tuple[list[dict], float]:
    """``--resume``: the pairs of an earlier results.json that this plan repeats (same task, flags
    and learning rates: the tuned defaults behind the same flags may have changed), each with the
    machine it ran on, and their share of its minutes; another profile's file is refused."""
    path = cfg.output_dir / "results.json"
    if not path.is_file():
        return [], 0.0
    try:
        old = json.loads(path.read_text())
        old_profile, runs = old["profile"], old["runs"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(f"--resume: cannot read {path}: {err}") from None
    if old_profile != cfg.profile:
        raise InputError(
            f"--resume: {path} holds profile {old_profile}, not {cfg.profile}: choose another --output-dir"
        )
    kept = [
        {"hardware": old.get("hardware"), **r}
        for r in runs
        if planned.get((r["task"], tuple(r["args"]))) == run_lrs(r["config"])
    ]
    return kept, old.get("minutes", 0.0) * len(kept) / max(len(runs), 1)


def main(cfg: QualityConfig) -> dict:
    console = Console()
    profile = PROFILES[cfg.profile]
    plan: list[tuple[str, list[str]]] = []
    for image in cfg.images:
        for arch in cfg.archs:
            image_args = [*profile.image_args, *profile.arch_args.get(arch, ())]
            plan.append(
                ("image", ["--image", str(image), "--arch", arch, *image_args, *shlex.split(cfg.extra)])
            )
    for task in cfg.tasks:
        if task not in TASKS:
            console.print(f"[yellow]{task}: not registered in muon-fit here, skipped")
            continue
        task_args = [*profile.task_args.get(task, ()), *shlex.split(cfg.extra)]
        plan.append((task, task_args))
        for arch, arch_args in profile.task_arch_args.get(task, {}).items():
            if arch in cfg.archs:
                plan.append((task, [*task_args, *arch_args]))
    if not plan:
        raise SystemExit("error: nothing to run (no images and no registered tasks)")
    position = {(task, tuple(args)): k for k, (task, args) in enumerate(plan)}  # a pair's place in the table
    if cfg.resume:
        lrs = {key: run_lrs(dataclasses.asdict(parse(key[0], list(key[1])))) for key in position}
        runs, minutes = kept_runs(cfg, lrs)
    else:
        runs, minutes = [], 0.0
    kept = {(r["task"], tuple(r["args"])) for r in runs}
    todo = [(task, args) for task, args in plan if (task, tuple(args)) not in kept]
    if runs:
        console.print(f"{len(runs)} pairs kept from {cfg.output_dir / 'results.json'}, {len(todo)} to run")
    start = time.perf_counter()
    for i, (task, args) in enumerate(todo, 1):
        console.print(f"[bold][{i}/{len(todo)}][/] {task} {' '.join(args)}")
        runs.append(run_pair(task, args, cfg.device))
        r = runs[-1]
        m = r["primary_metric"]
        console.print(
            f"    adam {r['runs']['adam']['metrics'][m]:.2f}  muon {r['runs']['muon']['metrics'][m]:.2f} "
            f"({m}; values/params {r['values_per_param']:.1f})"
        )
        # rewritten after every pair: a long benchmark stopped early keeps what it measured
        runs.sort(key=lambda r: position[r["task"], tuple(r["args"])])
        seconds = 60 * minutes + time.perf_counter() - start
        table, rows = write_results(cfg, runs, seconds, done=len(runs) == len(plan), planned=len(plan))
    if not todo:
        table, rows = write_results(cfg, runs, 60 * minutes, done=True, planned=len(plan))
    console.print(table)
    console.print(f"wrote {cfg.output_dir}/results.json, results.md, quality.png")
    return {"rows": rows, "runs": runs}


if __name__ == "__main__":
    run_cli(lambda: main(cli(QualityConfig, sys.argv[1:], "scripts/bench_quality.py")))
