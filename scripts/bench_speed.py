#!/usr/bin/env python3
"""Speed benchmark: Adam vs Muon per training step, split into forward / backward / optimizer step.

Every variant is timed in the same run, interleaved step by step (the machine's load changes
over seconds; interleaving gives each variant the same load), and reported as min and median
with the spread (inter-quartile range). Ratios, never absolute times, are the result.

Variants (same field, same initial weights):
  adam           MuonWithAuxAdam with everything on Adam
  muon           MuonWithAuxAdam, hidden weights on Muon (batched Newton–Schulz + foreach momentum)
  muon-ref       MuonWithAuxAdam, per-parameter torch.optim.Muon functional (batched=False)
  torch-muon+adam  torch.optim.Muon (hidden) + torch.optim.Adam (rest): the baseline to beat
  muon-compiled  (CUDA only) ``muon`` with the chain through torch.compile
  muon-graphed   (CUDA only) ``muon`` with the chain compiled in ``reduce-overhead`` mode (CUDA graph)

Phases are timed with a device sync at each boundary (what each phase costs); the whole-step
ratio is also measured as a *stream*: ``stream_steps`` steps back to back with one sync at the
end, as a training loop runs them, so the optimizer's launch overhead can hide behind the GPU.

Also measured: the fit loop's overhead against a minimal plain-PyTorch loop doing the same work,
and time to quality (first step/second at which Muon reaches Adam's final PSNR).

    python3 scripts/bench_speed.py                      # CPU defaults, writes outputs/bench/speed.json
    python3 scripts/bench_speed.py --device cuda --sizes 65536 262144 --widths 256 512
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from muon_nerf.fields import FieldConfig, MLPField  # noqa: E402
from muon_nerf.fit.errors import InputError, run_cli  # noqa: E402
from muon_nerf.fit.hardware import hardware  # noqa: E402
from muon_nerf.fit.loop import (  # noqa: E402
    FitConfig,
    check_device,  # noqa: E402
    fit,
)
from muon_nerf.fit.metrics import mse  # noqa: E402
from muon_nerf.optim import MuonWithAuxAdam, OptimConfig, build_optimizer, split_by_role  # noqa: E402
from muon_nerf.runs.cli import cli  # noqa: E402
from muon_nerf.runs.io import check_writable_parent, write_json  # noqa: E402
from muon_nerf.signals.image import ImageSignal, downscale, read_image  # noqa: E402

VARIANTS = ("adam", "muon", "muon-ref", "torch-muon+adam")
CUDA_VARIANTS = {"muon-compiled": "default", "muon-graphed": "reduce-overhead"}
PHASES = ("forward", "backward", "optimizer", "total")
DEFAULT_IMAGE = Path(__file__).resolve().parent.parent.parent / "shared/data/kodak/kodim01.png"


@dataclass
class SpeedConfig:
    sizes: tuple[int, ...] = (6144, 24576)
    """Numbers of coordinates per step (full-batch signal sizes)."""
    widths: tuple[int, ...] = (256,)
    num_layers: int = 5
    reps: int = 30
    warmup: int = 5
    stream_steps: int = 20
    """Steps per back-to-back stream timing (0 skips it)."""
    lr: float = 1e-3
    muon_lr: float = 0.05
    loop_steps: int = 300
    """Steps of each fit-loop overhead run (0 skips the overhead measurement)."""
    loop_reps: int = 7
    ttq_image: Path | None = DEFAULT_IMAGE
    """Image for the time-to-quality run (None skips it)."""
    ttq_downscale: int = 8
    ttq_width: int = 75
    ttq_steps: int = 600
    device: str = "cuda" if torch.cuda.is_available() else "cpu"
    output: Path = Path("outputs/bench/speed.json")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Variant:
    """One field + optimizer(s); ``step()`` returns the seconds of each phase."""

    def __init__(self, name: str, field_: MLPField, cfg: SpeedConfig) -> None:
        self.name, self.field = name, field_
        if name == "torch-muon+adam":
            split = split_by_role(field_)
            self.opts = [
                torch.optim.Muon([p.param for p in split["muon"]], lr=cfg.muon_lr, weight_decay=0.0),
                torch.optim.Adam([p.param for p in split["adam"]], lr=cfg.lr),
            ]
        else:
            groups = OptimConfig(lr=cfg.lr, muon_lr=cfg.muon_lr).param_groups(
                field_, "adam" if name == "adam" else "muon"
            )
            self.opts = [MuonWithAuxAdam(groups, batched=name != "muon-ref", compile=CUDA_VARIANTS.get(name))]

    def train_step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        for o in self.opts:
            o.zero_grad(set_to_none=True)
        mse(self.field(x), y).backward()
        for o in self.opts:
            o.step()

    def stream(self, x: torch.Tensor, y: torch.Tensor, steps: int) -> float:
        """Seconds per step over ``steps`` back-to-back steps (one sync at the end)."""
        _sync(x.device)
        t = time.perf_counter()
        for _ in range(steps):
            self.train_step(x, y)
        _sync(x.device)
        return (time.perf_counter() - t) / steps

    def step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        dev = x.device
        for o in self.opts:
            o.zero_grad(set_to_none=True)
        _sync(dev)
        t0 = time.perf_counter()
        loss = mse(self.field(x), y)
        _sync(dev)
        t1 = time.perf_counter()
        loss.backward()
        _sync(dev)
        t2 = time.perf_counter()
        for o in self.opts:
            o.step()
        _sync(dev)
        t3 = time.perf_counter()
        return {"forward": t1 - t0, "backward": t2 - t1, "optimizer": t3 - t2, "total": t3 - t0}


def _stats(values: list[float]) -> dict[str, float]:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return {"min": min(values), "median": statistics.median(values), "iqr": q[2] - q[0]}


def _rotations(variants: list[Variant], reps: int) -> Iterator[tuple[int, list[Variant]]]:
    """Each repetition visits every variant, starting one further along (interleaving)."""
    for rep in range(reps):
        k = rep % len(variants)
        yield rep, variants[k:] + variants[:k]


def make_variants(cfg: SpeedConfig, size: int, width: int) -> tuple[list[Variant], dict[str, str]]:
    """All variants on the same initial field; CUDA-only ones that fail to build are reported."""
    device = torch.device(cfg.device)
    torch.manual_seed(0)
    base = MLPField(FieldConfig(arch="relu", num_layers=cfg.num_layers, width=width), 2, 3).to(device)
    names = list(VARIANTS) + (list(CUDA_VARIANTS) if device.type == "cuda" else [])
    variants, failed = [], {}
    x, y = torch.zeros(size, 2, device=device), torch.zeros(size, 3, device=device)
    for name in names:
        field_ = MLPField(FieldConfig(arch="relu", num_layers=cfg.num_layers, width=width), 2, 3).to(device)
        field_.load_state_dict(base.state_dict())
        variant = Variant(name, field_, cfg)
        if name in CUDA_VARIANTS:
            try:  # compile now, so that a toolchain problem drops this variant instead of the run
                for _ in range(3):
                    variant.train_step(x, y)
                field_.load_state_dict(base.state_dict())
            except Exception as err:  # noqa: BLE001 - recorded in the results, the run goes on
                failed[name] = f"{type(err).__name__}: {err}".splitlines()[0]
                continue
        variants.append(variant)
    return variants, failed


def time_steps(cfg: SpeedConfig, size: int, width: int) -> tuple[dict, dict, dict]:
    """Per-phase stats and stream seconds/step of every variant, plus variants that failed."""
    device = torch.device(cfg.device)
    torch.manual_seed(0)
    x = torch.rand(size, 2, device=device) * 2 - 1
    y = torch.rand(size, 3, device=device)
    variants, failed = make_variants(cfg, size, width)
    samples = {v.name: {p: [] for p in PHASES} for v in variants}
    for rep, order in _rotations(variants, cfg.warmup + cfg.reps):
        for v in order:
            phases = v.step(x, y)
            if rep >= cfg.warmup:
                for p, t in phases.items():
                    samples[v.name][p].append(t)
    streams: dict[str, list[float]] = {v.name: [] for v in variants}
    if cfg.stream_steps:
        for _, order in _rotations(variants, max(3, cfg.reps // 10)):
            for v in order:
                streams[v.name].append(v.stream(x, y, cfg.stream_steps))
    stats = {name: {p: _stats(ts) for p, ts in by_phase.items()} for name, by_phase in samples.items()}
    stream_stats = {name: _stats(ts) for name, ts in streams.items() if ts}
    return stats, stream_stats, failed


def loop_overhead(cfg: SpeedConfig, size: int, width: int) -> dict:
    """Our ``fit`` (with its default eval/rank cadence, no progress bar) vs a bare loop."""
    device = torch.device(cfg.device)
    torch.manual_seed(0)
    side = int(size**0.5)
    signal = ImageSignal(torch.rand(side, side, 3)).to(device)
    fit_cfg = FitConfig(steps=cfg.loop_steps, progress=False, device=cfg.device)

    def fresh():
        torch.manual_seed(1)
        field_ = MLPField(FieldConfig(arch="relu", num_layers=cfg.num_layers, width=width), 2, 3).to(device)
        return field_, build_optimizer(field_, "muon", lr=cfg.lr, muon_lr=cfg.muon_lr)

    def ours() -> tuple[float, float]:
        field_, opt = fresh()
        t = time.perf_counter()
        result = fit(signal, field_, opt, fit_cfg)
        return time.perf_counter() - t, result.train_seconds

    def minimal() -> tuple[float, float]:
        field_, opt = fresh()
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.loop_steps, eta_min=fit_cfg.eta_min)
        t = time.perf_counter()
        for _ in range(cfg.loop_steps):
            opt.zero_grad(set_to_none=True)
            mse(field_(signal.coords), signal.values).backward()
            opt.step()
            sched.step()
        _sync(device)
        seconds = time.perf_counter() - t
        return seconds, seconds

    times: dict[str, list[float]] = {"ours": [], "ours_steps_only": [], "minimal": []}
    for rep in range(cfg.loop_reps):
        order = (("ours", ours), ("minimal", minimal))
        for name, fn in order if rep % 2 == 0 else order[::-1]:
            total, steps_only = fn()
            times[name].append(total)
            if name == "ours":
                times["ours_steps_only"].append(steps_only)
    minimal_median = statistics.median(times["minimal"])
    return {
        "size": side * side,
        "width": width,
        "steps": cfg.loop_steps,
        "eval_every": fit_cfg.eval_every,
        "rank_every": fit_cfg.rank_every,
        "seconds": times,
        "ratio": statistics.median(times["ours"]) / minimal_median,
        # the loop's own mechanics, without its evaluations and rank recordings
        "ratio_steps_only": statistics.median(times["ours_steps_only"]) / minimal_median,
    }


def time_to_quality(cfg: SpeedConfig) -> dict:
    """First step (and training seconds) at which Muon reaches Adam's final PSNR."""
    arr, _ = read_image(cfg.ttq_image)
    signal = ImageSignal(downscale(torch.from_numpy(arr), cfg.ttq_downscale)).to(cfg.device)
    fit_cfg = FitConfig(
        steps=cfg.ttq_steps, eval_every=10, rank_every=cfg.ttq_steps, progress=False, device=cfg.device
    )
    histories = {}
    for name in ("adam", "muon"):
        torch.manual_seed(0)
        field_ = MLPField(FieldConfig(arch="relu", width=cfg.ttq_width), 2, 3).to(cfg.device)
        opt = build_optimizer(field_, name, lr=1e-3, muon_lr=0.1)
        histories[name] = fit(signal, field_, opt, fit_cfg).history
    target = histories["adam"][-1]["psnr"]
    hit = next((h for h in histories["muon"] if h["psnr"] >= target), None)
    return {
        "image": str(cfg.ttq_image),
        "downscale": cfg.ttq_downscale,
        "width": cfg.ttq_width,
        "steps": cfg.ttq_steps,
        "adam_final_psnr": target,
        "muon_final_psnr": histories["muon"][-1]["psnr"],
        "muon_step_to_adam_final": hit["step"] if hit else None,
        "muon_seconds_to_adam_final": hit["seconds"] if hit else None,
        "adam_total_seconds": histories["adam"][-1]["seconds"],
    }


def check(cfg: SpeedConfig) -> None:
    """Refuse, before measuring anything, what would fail or mean nothing."""
    check_device(cfg.device)
    if not cfg.sizes or not cfg.widths or min(cfg.sizes) < 1 or min(cfg.widths) < 1:
        raise InputError("--sizes and --widths need values >= 1")
    check_writable_parent(cfg.output)


def main(cfg: SpeedConfig) -> dict:
    check(cfg)
    console = Console()
    hw = hardware()
    console.print(f"[bold]bench_speed[/] on {cfg.device}: {hw}")
    results = {
        "config": dataclasses.asdict(cfg),
        "hardware": hw,
        "steps": [],
        "loop_overhead": [],
        "ttq": None,
    }
    table = Table(title=f"time per step ({cfg.device}, {cfg.reps} interleaved reps; median ms [min])")
    for col in ("points", "width", "variant", *PHASES):
        table.add_column(col, justify="right")
    ratios = Table(title="ratios (medians, same run)")
    for col in (
        "points",
        "width",
        "muon/adam step",
        "muon/adam stream",
        "ours/torch optimizer step",
        "muon/muon-ref optimizer",
        "compiled, graphed/torch optimizer",
    ):
        ratios.add_column(col, justify="right")
    for size in cfg.sizes:
        for width in cfg.widths:
            stats, streams, failed = time_steps(cfg, size, width)
            for name, err in failed.items():
                console.print(f"[yellow]{name} skipped at {size} points, width {width}: {err}")
            for name, by_phase in stats.items():
                table.add_row(
                    str(size),
                    str(width),
                    name,
                    *(f"{by_phase[p]['median'] * 1e3:.2f} [{by_phase[p]['min'] * 1e3:.2f}]" for p in PHASES),
                )
            med = {n: {p: s[p]["median"] for p in PHASES} for n, s in stats.items()}
            torch_opt = med["torch-muon+adam"]["optimizer"]
            row = {
                "size": size,
                "width": width,
                "stats": stats,
                "stream_seconds_per_step": streams,
                "failed_variants": failed,
                "muon_over_adam_step": med["muon"]["total"] / med["adam"]["total"],
                "muon_over_adam_stream": (
                    streams["muon"]["median"] / streams["adam"]["median"] if streams else None
                ),
                "ours_over_torch_optimizer": med["muon"]["optimizer"] / torch_opt,
                "batched_over_reference_optimizer": med["muon"]["optimizer"] / med["muon-ref"]["optimizer"],
                "compiled_over_torch_optimizer": {
                    name: med[name]["optimizer"] / torch_opt for name in CUDA_VARIANTS if name in med
                },
                "compiled_over_adam_stream": {
                    name: streams[name]["median"] / streams["adam"]["median"]
                    for name in CUDA_VARIANTS
                    if name in streams
                },
            }
            results["steps"].append(row)
            ratios.add_row(
                str(size),
                str(width),
                f"{row['muon_over_adam_step']:.3f}",
                "-" if row["muon_over_adam_stream"] is None else f"{row['muon_over_adam_stream']:.3f}",
                f"{row['ours_over_torch_optimizer']:.3f}",
                f"{row['batched_over_reference_optimizer']:.3f}",
                ", ".join(f"{r:.3f}" for r in row["compiled_over_torch_optimizer"].values()) or "-",
            )
    console.print(table)
    console.print(ratios)
    if cfg.loop_steps:
        overhead = loop_overhead(cfg, cfg.sizes[0], cfg.widths[0])
        results["loop_overhead"].append(overhead)
        console.print(
            f"fit loop / minimal loop ({overhead['size']} points, width {overhead['width']}, "
            f"{overhead['steps']} steps, eval every {overhead['eval_every']}, ranks every "
            f"{overhead['rank_every']}, median of {cfg.loop_reps}): [bold]{overhead['ratio']:.3f}[/] "
            f"(training steps alone: {overhead['ratio_steps_only']:.3f})"
        )
    if cfg.ttq_image is not None:
        if not Path(cfg.ttq_image).is_file():
            console.print(f"time to quality skipped: {cfg.ttq_image} not found")
        else:
            ttq = time_to_quality(cfg)
            results["ttq"] = ttq
            console.print(
                f"time to quality ({Path(ttq['image']).name} /{ttq['downscale']}, relu 5×{ttq['width']}): "
                f"Adam final PSNR {ttq['adam_final_psnr']:.2f} dB after {ttq['steps']} steps "
                f"({ttq['adam_total_seconds']:.1f} s); "
                f"Muon reaches it at step {ttq['muon_step_to_adam_final']} "
                f"({ttq['muon_seconds_to_adam_final'] or float('nan'):.1f} s), "
                f"final {ttq['muon_final_psnr']:.2f} dB"
            )
    write_json(cfg.output, results)
    console.print(f"wrote {cfg.output}")
    return results


if __name__ == "__main__":
    run_cli(lambda: main(cli(SpeedConfig, sys.argv[1:], "scripts/bench_speed.py")))
