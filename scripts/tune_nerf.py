#!/usr/bin/env python3
"""NeRF learning rates, tuned the way the 2D defaults were: a grid per arch, on views no table reports.

Every trial is one ``bench_nerf.py`` run (the registered method at ``--profile``'s scale, seed
``--seed``) on a tuning scene: lego's training views from ``--offsets`` (2: views 2, 6, …, 98,
disjoint from the tables' 0, 4, …, 96), scored on lego's val split (the tables score the test
split). Adam runs sweep ``--adam-lrs`` (the ``fields`` group); Muon runs sweep ``--muon-lrs`` (the
hidden matrices) × ``--muon-adam-lrs`` (everything Muon leaves to Adam). Each (arch, offset) is
one tuning signal: its trials go to ``OUTPUT/ARCH-viewsK/sweep.json`` in ``muon-sweep``'s format
(task ``nerf``), rewritten after every trial, so ``scripts/tuned_lrs.py`` picks the NeRF rows of
the tuned table by the same maximin rule as the 2D rows (several offsets: the point whose worst
scene is best).

Trials are independent runs: ``--shard I N`` runs every N-th trial from the I-th, so N processes
(one thread each) share a machine; each trial is kept as ``trials/NAME.json`` when it ends, and a
process started again skips the trials already kept (a killed run loses only its current trial).

    python3 scripts/tune_nerf.py --archs relu_pe --iterations 500 --shard 0 2 &
    python3 scripts/tune_nerf.py --archs relu_pe --iterations 500 --shard 1 2
    python3 scripts/tuned_lrs.py        # the tuned table, 2D and NeRF rows
    python3 scripts/tune_nerf.py --dry-run --output /tmp/tune    # the whole path on a toy scene
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import itertools
import json
import math
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_nerf import (  # noqa: E402
    DRY,
    LEGO,
    NGP,
    PROFILES,
    NerfBenchConfig,
    Profile,
    machine,
    prepare_scene,
    train_and_score,
)

from muon_nerf.fields import ARCHITECTURES  # noqa: E402
from muon_nerf.fit.errors import InputError, run_cli  # noqa: E402
from muon_nerf.nerf.config import NERF_TASK, untuned_lrs  # noqa: E402
from muon_nerf.runs.cli import cli  # noqa: E402
from muon_nerf.runs.io import write_json  # noqa: E402
from muon_nerf.runs.task import Lrs  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TUNED_ARCHS = ("relu_pe", "siren", "finer", NGP)
METRIC = "val_psnr"
ADAM_SCALES = {"field": (2.0, 4.0, 8.0, 16.0, 32.0), NGP: (0.5, 1.0, 2.0, 4.0)}
"""Default Adam grid: these multiples of the arch's untuned Adam lr (vanilla NeRF's for a position
MLP, instant-ngp's for ``ngp``). The MLP fields' grid sits high because vanilla NeRF's lr suits its
200k-iteration schedule, not a few thousand: relu_pe's sweep (docs/results/sweeps/nerf) found its
best well above it, and this grid is centred there; instant-ngp's lr is already a short-schedule one."""
MUON_ADAM_SCALES = {"field": (2.0, 8.0), NGP: (1.0, 2.0)}
"""Default grid of a Muon run's Adam part: these multiples of the same (centred likewise)."""


def scales(table: dict[str, tuple[float, ...]], arch: str) -> tuple[float, ...]:
    """``table``'s scales for ``arch``: its own for ``ngp``, the position fields' otherwise."""
    return table[NGP] if arch == NGP else table["field"]


@dataclass
class TuneNerfConfig:
    profile: Literal["cpu", "gpu"] = "cpu"
    data: Path = LEGO
    """The full Blender scene the tuning subsets are taken from."""
    archs: tuple[str, ...] = ("relu_pe",)
    """Position-field archs (relu, relu_pe, siren, finer, …) and/or ngp (muon-ngp's model)."""
    optimizers: tuple[Literal["adam", "muon"], ...] = ("adam", "muon")
    adam_lrs: tuple[float, ...] | None = None
    """Adam runs' ``fields`` lr grid; unset: the arch's untuned Adam lr × 2 … 32 (position fields) or
    × 0.5 … 4 (ngp)."""
    muon_lrs: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2)
    """Muon runs' lr grid of the hidden matrices (``fields_muon``)."""
    muon_adam_lrs: tuple[float, ...] | None = None
    """Muon runs' Adam lr grid (``fields``); unset: the arch's untuned Adam lr × 2, 8 (position
    fields) or × 1, 2 (ngp)."""
    offsets: tuple[int, ...] = (2,)
    """First training view of each tuning scene (every 4th view from there; 0 is the tables')."""
    iterations: int | None = None
    """Iterations per trial; unset: the profile's (2000). Shorter tuning is a proxy: say so."""
    seed: int = 0
    shard: tuple[int, int] = (0, 1)
    """I N: run the trials whose index is I modulo N (N processes side by side)."""
    output: Path = ROOT / "docs" / "results" / "sweeps" / "nerf"
    work: Path | None = None
    """Scenes and checkpoints (default OUTPUT/work, ignored by git)."""
    device: str | None = None
    dry_run: bool = False
    """A toy scene and model, 2 iterations: the whole path in seconds."""


@dataclass(frozen=True)
class Trial:
    arch: str
    optimizer: str
    lrs: Lrs

    @property
    def name(self) -> str:
        if self.optimizer == "adam":
            return f"{self.arch}-adam-lr{self.lrs.lr:g}"
        return f"{self.arch}-muon-lr{self.lrs.muon_adam_lr:g}-muonlr{self.lrs.muon_lr:g}"


def check(cfg: TuneNerfConfig) -> None:
    """Refuse, in one line, what would waste a run: unknown archs, empty or non-positive grids,
    offsets outside the stride, a shard outside its count."""
    unknown = [a for a in cfg.archs if a not in ARCHITECTURES and a != NGP]
    if unknown:
        raise InputError(f"--archs: unknown {unknown}; choose from {sorted(ARCHITECTURES)} or {NGP}")
    grids = {"--adam-lrs": cfg.adam_lrs, "--muon-lrs": cfg.muon_lrs, "--muon-adam-lrs": cfg.muon_adam_lrs}
    for flag, grid in grids.items():
        if grid is not None and (not grid or not all(math.isfinite(lr) and lr > 0 for lr in grid)):
            raise InputError(f"{flag} must be finite lrs > 0, got {list(grid)}")
    stride = PROFILES[cfg.profile].stride
    offsets = cfg.offsets
    if not offsets or any(not 0 < k < stride for k in offsets) or len(set(offsets)) != len(offsets):
        raise InputError(
            f"--offsets must be distinct views 1 … {stride - 1} (0 is the tables' scene), got {list(offsets)}"
        )
    index, count = cfg.shard
    if not 0 <= index < count:
        raise InputError(f"--shard I N needs 0 <= I < N, got {index} {count}")
    if cfg.iterations is not None and cfg.iterations < 1:
        raise InputError(f"--iterations must be >= 1, got {cfg.iterations}")


def trials(cfg: TuneNerfConfig) -> list[Trial]:
    """Every (arch, optimizer, lrs) of the grid, in a fixed order (what ``--shard`` divides): the
    archs' grids interleaved, so shards share the slow archs and a run cut short has tried every
    arch."""
    grids = []
    for arch in cfg.archs:
        base = untuned_lrs(arch).lr
        adam_lrs = cfg.adam_lrs or tuple(base * s for s in scales(ADAM_SCALES, arch))
        muon_adam_lrs = cfg.muon_adam_lrs or tuple(base * s for s in scales(MUON_ADAM_SCALES, arch))
        grid = []
        if "adam" in cfg.optimizers:
            grid += [Trial(arch, "adam", Lrs(lr=lr)) for lr in adam_lrs]
        if "muon" in cfg.optimizers:
            grid += [
                Trial(arch, "muon", Lrs(lr=adam, muon_lr=muon, muon_adam_lr=adam))
                for muon in cfg.muon_lrs
                for adam in muon_adam_lrs
            ]
        grids.append(grid)
    return [t for row in itertools.zip_longest(*grids) for t in row if t is not None]


def tuning_profile(cfg: TuneNerfConfig, offset: int) -> Profile:
    """The bench profile of one tuning scene: ``--profile``'s model and rays, training views from
    ``offset``, the val split scored, no curve."""
    profile = DRY if cfg.dry_run else PROFILES[cfg.profile]
    iterations = cfg.iterations or profile.iterations
    offset = 0 if cfg.dry_run else offset  # a dry run trains on its whole toy scene (stride 1)
    return replace(profile, iterations=iterations, offset=offset, eval_split="val", curve_every=0)


def signal_name(arch: str, offset: int) -> str:
    return f"{arch}-views{offset}"


def run_trial(trial: Trial, scene: Path, profile: Profile, cfg: TuneNerfConfig, work: Path) -> dict:
    """One trial, as the sweep records it: ``status`` ok with the val PSNR as ``value``, or
    ``error`` with the exception's last line (a diverged or failed run is a refused grid point,
    not the end of the sweep)."""
    device = cfg.device or profile.device
    lrs = trial.lrs
    record = {
        "optimizer": trial.optimizer,
        "lr": lrs.lr if trial.optimizer == "adam" else lrs.muon_adam_lr,
        "muon_lr": lrs.muon_lr if trial.optimizer == "muon" else None,
    }
    t0 = time.perf_counter()
    try:
        run, _ = train_and_score(
            scene, trial.arch, trial.optimizer, cfg.seed, profile, device, work, work, lrs=lrs
        )
    except Exception as err:  # noqa: BLE001 - a trial's failure is its record, as in muon-sweep
        lines = traceback.format_exception_only(err)
        return {**record, "status": "error", "value": None, "error": lines[-1].strip(), "metrics": {}}
    value = run["test_psnr"]  # the eval split's: val here
    ok = value is not None and math.isfinite(value)
    return {
        **record,
        "status": "ok" if ok else "diverged",
        "value": value,
        "step": run["iterations"],
        "seed": cfg.seed,
        "metrics": {
            "ssim": run["test_ssim"],
            "stable_rank": run["mean_stable_rank"],
            "train_seconds": run["seconds"],
            "iterations_per_s": run["iterations_per_s"],
            "lrs": run["lrs"],
            "wall_seconds": time.perf_counter() - t0,
        },
        "error": "",
        "machine": run["machine"],
    }


def sweep_record(cfg: TuneNerfConfig, arch: str, offset: int, profile: Profile, kept: dict) -> dict:
    """``sweep.json`` of one (arch, offset) in ``muon-sweep``'s format, from every trial kept in its
    folder: this invocation's grid in its order, then those an earlier grid left (an extended
    grid adds to a sweep, never drops from it)."""
    grid = [t.name for t in trials(cfg) if t.arch == arch]
    order = grid + sorted(set(kept) - set(grid))
    rows = [{"index": i, **kept[name]} for i, name in enumerate(order) if name in kept]
    best = {}
    for name in ("adam", "muon"):
        done = [r for r in rows if r["optimizer"] == name and r["status"] == "ok"]
        if done:
            best[name] = max(done, key=lambda r: r["value"])
    selection = {"size": profile.size, "stride": profile.stride, "offset": offset, "eval_split": "val"}
    # the first view under its own name: tuned_lrs.py reads a data "offset" as an audio clip's start
    data = {"scene": str(cfg.data), "size": profile.size, "stride": profile.stride, "first_view": offset}
    data |= {"eval_split": "val", "eval_views": profile.test_views}
    return {
        "task": NERF_TASK,
        "signal": {"task": NERF_TASK, "source": f"{cfg.data.name}@views{offset}", **selection},
        "primary_metric": METRIC,
        "mode": "max",
        "sweep": {
            "optimizers": list(cfg.optimizers),
            "search": "grid",
            "adam_lrs": sorted({r["lr"] for r in rows if r["optimizer"] == "adam"}),
            "muon_lrs": sorted({r["muon_lr"] for r in rows if r["optimizer"] == "muon"}),
            "muon_adam_lrs": sorted({r["lr"] for r in rows if r["optimizer"] == "muon"}),
            "seed": cfg.seed,
        },
        "config": {
            "field": {"arch": arch},
            "data": data,
            "profile": "dry-run" if cfg.dry_run else cfg.profile,
            "iterations": profile.iterations,
            "rays": profile.rays,
            "model": profile.model if arch != NGP else "muon-ngp's own",
        },
        "hardware": machine(cfg.device or profile.device),
        "planned_trials": len(order),
        "trials": rows,
        "best": best,
    }


def check_kept(folder: Path, profile: Profile, seed: int) -> None:
    """Refuse to add trials to a sweep whose kept trials trained another number of iterations or
    seed: one sweep compares lrs at one budget."""
    for path in sorted((folder / "trials").glob("*.json")):
        try:
            kept = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise InputError(f"cannot read {path}: {err}") from None
        ran = (kept.get("step"), kept.get("seed", seed))
        if kept.get("status") == "ok" and ran != (profile.iterations, seed):
            raise InputError(
                f"{path} trained {kept.get('step')} iterations (seed {kept.get('seed')}), not "
                f"{profile.iterations} (seed {seed}): choose another --output"
            )


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold ``folder/.lock`` (made with the folder): one shard at a time writes what all share."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def write_sweep(folder: Path, record_of: Callable[[dict], dict]) -> None:
    """Rebuild ``folder/sweep.json`` from every kept trial, under the lock: shards finishing at
    once would otherwise each write the sweep without the other's trial."""
    with locked(folder):
        kept = {p.stem: json.loads(p.read_text()) for p in sorted((folder / "trials").glob("*.json"))}
        write_json(folder / "sweep.json", record_of(kept))


def main(cfg: TuneNerfConfig) -> int:
    check(cfg)
    work = cfg.work or cfg.output / "work"
    index, count = cfg.shard
    mine = [t for i, t in enumerate(trials(cfg)) if i % count == index]
    for offset in cfg.offsets:  # before any training: every sweep this invocation adds to
        for arch in cfg.archs:
            check_kept(cfg.output / signal_name(arch, offset), tuning_profile(cfg, offset), cfg.seed)
    for offset in cfg.offsets:
        profile = tuning_profile(cfg, offset)
        bench_cfg = NerfBenchConfig(profile=cfg.profile, data=cfg.data, dry_run=cfg.dry_run)
        with locked(work / f"views{offset}"):  # shards started together write the scene once
            scene = prepare_scene(bench_cfg, profile, work / f"views{offset}")
        for arch in dict.fromkeys(t.arch for t in mine):
            folder = cfg.output / signal_name(arch, offset)
            (folder / "trials").mkdir(parents=True, exist_ok=True)
            record_of = functools.partial(sweep_record, cfg, arch, offset, profile)

            for trial in (t for t in mine if t.arch == arch):
                path = folder / "trials" / f"{trial.name}.json"
                if path.is_file():
                    print(f"{signal_name(arch, offset)} {trial.name}: kept")
                    continue
                print(f"{signal_name(arch, offset)} {trial.name}: {profile.iterations} it", flush=True)
                result = run_trial(trial, scene, profile, cfg, work / f"views{offset}")
                write_json(path, result)
                write_sweep(folder, record_of)
                value = "–" if result["value"] is None else f"{result['value']:.2f} dB"
                print(f"    {result['status']}: {METRIC} {value} {result['error']}", flush=True)
            write_sweep(folder, record_of)
    print(f"wrote {cfg.output}/*/sweep.json; the tuned table: python3 scripts/tuned_lrs.py")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(lambda: main(cli(TuneNerfConfig, sys.argv[1:], "scripts/tune_nerf.py"))))
