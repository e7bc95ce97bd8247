"""Running a task: build the field and optimizer, fit, write outputs; or compare Adam with Muon.

Every front end (``muon-fit``, ``scripts/fit_*.py``, sweeps, benchmarks) goes through
``execute``, so outputs and tables look the same everywhere.
"""

from __future__ import annotations

import dataclasses
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from muon_nerf.diagnostics import plot_ranks
from muon_nerf.fields import FieldConfig, MLPField
from muon_nerf.fields.fold import fold_omega, folds_under
from muon_nerf.io import default_run_name, staged_dir, write_json
from muon_nerf.optim import CompileMode, MuonWithAuxAdam, build_optimizer, format_split
from muon_nerf.plotting import OPTIMIZER_COLORS, draw_panel, new_figure, save_figure
from muon_nerf.signals.base import Signal
from muon_nerf.signals.loop import FitConfig, FitResult, fit

OPTIMIZERS = ("adam", "muon")


@dataclass
class OptimConfig:
    """The paper's optimizer flags: ``--optimizer``, ``--lr`` (Adam), ``--muon-lr``."""

    optimizer: Literal["adam", "muon"] = "muon"
    lr: float = 1e-3
    """Adam learning rate (all parameters with adam; first/last layers and biases with muon)."""
    muon_lr: float = 0.1
    """Muon learning rate for the hidden-layer weight matrices."""
    muon_first_layer: bool = False
    """Also give the first layer's weight matrix to Muon."""
    momentum: float = 0.95
    nesterov: bool = True
    ns_steps: int = 5
    muon_weight_decay: float = 0.0
    """torch.optim.Muon defaults to 0.1; the paper uses 0."""
    fold_omega: bool = True
    """SIREN/FINER/Gauss/WIRE under Muon: store ω0·W in the hidden layers (ω0: the activation's input
    frequency) so --muon-lr means what it means for ReLU (without it, Muon's step is ω0 times larger;
    see muon_nerf/fields/fold.py). Equivalent to dividing the Muon lr by ω0; the audio task keeps
    the paper's unfolded lr instead."""

    muon_compile: CompileMode | None = None
    """GPU: run the batched Newton–Schulz chain through torch.compile; ``reduce-overhead`` replays
    it as a CUDA graph (measured on an H200: optimizer step 0.46× torch.optim.Muon+Adam vs 0.60×
    eager, for a 5×256 field). Costs a compile at start-up; off by default."""

    def check(self) -> None:
        """Refuse bad values with a one-line message (called before any work starts)."""
        for name in ("lr", "muon_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"--{name.replace('_', '-')} must be > 0, got {getattr(self, name)}")

    def build(self, field_: MLPField, optimizer: str | None = None) -> MuonWithAuxAdam:
        return build_optimizer(
            field_,
            optimizer or self.optimizer,
            lr=self.lr,
            muon_lr=self.muon_lr,
            muon_first_layer=self.muon_first_layer,
            momentum=self.momentum,
            nesterov=self.nesterov,
            ns_steps=self.ns_steps,
            weight_decay=self.muon_weight_decay,
            compile=self.muon_compile,
        )


@dataclass
class TaskConfig:
    """Flags common to every fitting task (subclasses add the signal's own and set defaults)."""

    field: FieldConfig = dataclasses.field(default_factory=FieldConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)
    fit: FitConfig = dataclasses.field(default_factory=FitConfig)
    compare: bool = False
    """Fit the same field with Adam and with Muon; print a table and write one figure."""
    output_dir: Path = Path("outputs")
    run_name: str | None = None
    """Folder name under outputs/<task>/; default: a timestamp."""
    print_split: bool = False
    """Print which tensor goes to Muon and which to Adam, with shapes."""

    def signal(self) -> Signal:
        raise NotImplementedError

    def check(self) -> None:
        self.field.check()
        self.optim.check()
        self.fit.check()


def make_field(signal: Signal, cfg: FieldConfig, seed: int, device: str, fold: bool = False) -> MLPField:
    """Seeded, so Adam and Muon runs of a comparison start from the same function."""
    torch.manual_seed(seed)
    field_ = MLPField(cfg, signal.in_dim, signal.out_dim)
    if fold:
        fold_omega(field_)
    return field_.to(device)


def load_field(path: Path, device: str = "cpu") -> MLPField:
    """The field saved as ``field.pt`` by a run (``weights_only`` load; ω0 folding restored)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    field_ = MLPField(FieldConfig(**ckpt["field_config"]), ckpt["in_dim"], ckpt["out_dim"])
    if ckpt.get("omega_folded"):
        fold_omega(field_)
    field_.load_state_dict(ckpt["state_dict"])
    return field_.to(device).eval()


def hardware() -> dict:
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def fit_one(
    signal: Signal, cfg: TaskConfig, optimizer: str, on_eval: Callable[[dict[str, float]], None] | None = None
) -> FitResult:
    fold = cfg.optim.fold_omega and folds_under(cfg.field.arch, optimizer)
    field_ = make_field(signal, cfg.field, cfg.fit.seed, cfg.fit.device, fold)
    opt = cfg.optim.build(field_, optimizer)
    if cfg.print_split:
        Console().print(
            f"[bold]{optimizer}[/] parameter split\n{format_split(field_, cfg.optim.muon_first_layer)}"
        )
    result = fit(signal, field_, opt, cfg.fit, label=f"{signal.task}/{optimizer}", on_eval=on_eval)
    result.extra["num_params"] = sum(p.numel() for p in field_.parameters())
    result.extra["omega_folded"] = fold
    return result


def config_dict(cfg: TaskConfig) -> dict:
    return dataclasses.asdict(cfg)


def write_run(run_dir: Path, signal: Signal, cfg: TaskConfig, optimizer: str, result: FitResult) -> None:
    """``metrics.json``, the reconstruction, ``curves.png`` and the field's checkpoint."""
    write_json(
        run_dir / "metrics.json",
        {
            "optimizer": optimizer,
            "config": config_dict(cfg),
            "signal": signal.describe(),
            "hardware": hardware(),
            **result.summary(),
        },
    )
    signal.save(result.prediction, run_dir)
    curves_figure({optimizer: result}, signal.primary_metric, run_dir / "curves.png")
    plot_ranks(result.ranks, run_dir / "ranks.png", title=f"{signal.task} / {optimizer}")
    torch.save(
        {
            "field_config": dataclasses.asdict(cfg.field),
            "in_dim": signal.in_dim,
            "out_dim": signal.out_dim,
            "omega_folded": result.extra["omega_folded"],
            "state_dict": result.field.state_dict(),
        },
        run_dir / "field.pt",
    )


def curves_figure(results: dict[str, FitResult], primary: str, path: Path) -> None:
    """Primary metric and mean hidden-layer stable rank vs step, one line per optimizer."""
    fig, axes = new_figure(1, 2, size=(8, 3))
    for name, res in results.items():
        color = OPTIMIZER_COLORS.get(name)
        axes[0, 0].plot(
            [h["step"] for h in res.history], [h[primary] for h in res.history], label=name, color=color
        )
        if res.ranks.stable:
            mean_rank = np.mean(list(res.ranks.stable.values()), axis=0)
            axes[0, 1].plot(res.ranks.steps, mean_rank, label=name, color=color)
    axes[0, 0].set(xlabel="step", ylabel=primary, title=primary)
    axes[0, 1].set(xlabel="step", ylabel="stable rank", title="mean stable rank of hidden weights")
    for ax in axes[0]:
        ax.legend(fontsize=8)
    save_figure(fig, path)


def compare_figure(signal: Signal, results: dict[str, FitResult], path: Path) -> None:
    """Row 1: ground truth; one row per optimizer (reconstruction views); last row: curves."""
    gt = signal.panels(None)
    rows = {name: signal.panels(res.prediction) for name, res in results.items()}
    cols = max(len(gt), *(len(p) for p in rows.values()), 2)
    fig, axes = new_figure(len(rows) + 2, cols, size=(3.2 * cols, 2.9 * (len(rows) + 2)))
    for ax in axes.flat:
        ax.axis("off")
    for j, (title, data, cmap) in enumerate(gt):
        axes[0, j].axis("on")
        draw_panel(axes[0, j], title, data, cmap)
    for i, (name, panels) in enumerate(rows.items(), start=1):
        metric = results[name].metrics[signal.primary_metric]
        for j, (title, data, cmap) in enumerate(panels):
            axes[i, j].axis("on")
            draw_panel(axes[i, j], f"{name}: {title} ({signal.primary_metric} {metric:.2f})", data, cmap)
    ax_metric, ax_rank = axes[-1, 0], axes[-1, 1]
    for name, res in results.items():
        color = OPTIMIZER_COLORS.get(name)
        ax_metric.plot(
            [h["step"] for h in res.history],
            [h[signal.primary_metric] for h in res.history],
            label=name,
            color=color,
        )
        for layer, values in res.ranks.stable.items():
            ax_rank.plot(
                res.ranks.steps,
                values,
                color=color,
                alpha=0.7,
                label=name if layer == next(iter(res.ranks.stable)) else None,
            )
    for ax, ylabel in ((ax_metric, signal.primary_metric), (ax_rank, "stable rank (each hidden layer)")):
        ax.axis("on")
        ax.set(xlabel="step", ylabel=ylabel)
        ax.legend(fontsize=8)
    save_figure(fig, path)


def comparison_table(signal: Signal, results: dict[str, FitResult]) -> Table:
    table = Table(title=f"{signal.task}: Adam vs Muon")
    table.add_column("metric")
    for name in results:
        table.add_column(name, justify="right")
    if len(results) == 2:
        table.add_column("muon − adam", justify="right")
    names = list(results)
    for metric in results[names[0]].metrics:
        values = [results[n].metrics[metric] for n in names]
        delta = [f"{values[1] - values[0]:+.3f}"] if len(values) == 2 else []
        table.add_row(metric, *(f"{v:.3f}" for v in values), *delta)
    for layer in results[names[0]].ranks.stable:
        values = [results[n].ranks.final_stable()[layer] for n in names]
        delta = [f"{values[1] - values[0]:+.2f}"] if len(values) == 2 else []
        table.add_row(f"stable rank {layer}", *(f"{v:.2f}" for v in values), *delta)
    times = [results[n].train_seconds for n in names]
    table.add_row(
        "train time (s)",
        *(f"{t:.1f}" for t in times),
        *([f"×{times[1] / times[0]:.2f}"] if len(times) == 2 else []),
    )
    return table


def execute(
    cfg: TaskConfig, signal: Signal | None = None, console: Console | None = None
) -> dict[str, FitResult]:
    """Fit (or compare) and write ``outputs/<task>/<run>/`` atomically. Returns the results."""
    console = console or Console()
    cfg.check()
    signal = (signal or cfg.signal()).to(cfg.fit.device)
    names = OPTIMIZERS if cfg.compare else (cfg.optim.optimizer,)
    run_dir = cfg.output_dir / signal.task / (cfg.run_name or default_run_name("-".join(names)))
    described = signal.describe()
    console.print(f"[bold]{signal.task}[/]: {described}")
    results = {name: fit_one(signal, cfg, name) for name in names}
    with staged_dir(run_dir) as stage:
        if cfg.compare:
            for name, result in results.items():
                write_run(stage / name, signal, cfg, name, result)
            compare_figure(signal, results, stage / "compare.png")
            write_json(
                stage / "comparison.json",
                {
                    "signal": described,
                    "config": config_dict(cfg),
                    "hardware": hardware(),
                    "results": {
                        n: {
                            "metrics": r.metrics,
                            "final_stable_rank": r.ranks.final_stable(),
                            "train_seconds": r.train_seconds,
                        }
                        for n, r in results.items()
                    },
                },
            )
        else:
            write_run(stage, signal, cfg, names[0], results[names[0]])
    console.print(comparison_table(signal, results))
    console.print(f"outputs: {run_dir}")
    return results
