"""Training figures: ``curves.png``, ``ranks.png`` and ``compare.png``, all drawn by one curve
function so every figure of every front end reads the same (red Muon, blue Adam)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from muon_nerf.fit.diagnostics import RankTracker
from muon_nerf.fit.loop import FitResult
from muon_nerf.fit.signal import Signal
from muon_nerf.runs.plotting import OPTIMIZER_COLORS, draw_panel, new_figure, save_figure


@dataclass
class Curve:
    """One line of a training plot."""

    label: str | None
    steps: Sequence[int]
    values: Sequence[float]
    color: str | None = None
    alpha: float = 1.0


def draw_curves(ax, curves: Sequence[Curve], ylabel: str, title: str = "") -> None:  # noqa: ANN001 - Axes
    """Value vs step, one line per curve, legend for the labelled ones."""
    for c in curves:
        ax.plot(c.steps, c.values, label=c.label, color=c.color, alpha=c.alpha)
    ax.set(xlabel="step", ylabel=ylabel, title=title)
    if any(c.label for c in curves):
        ax.legend(fontsize=7)


def metric_curves(results: dict[str, FitResult], metric: str) -> list[Curve]:
    """``metric`` per evaluation, one curve per optimizer."""
    return [
        Curve(
            name, [h["step"] for h in r.history], [h[metric] for h in r.history], OPTIMIZER_COLORS.get(name)
        )
        for name, r in results.items()
    ]


def rank_curves(results: dict[str, FitResult], mean: bool) -> list[Curve]:
    """Stable rank of the hidden matrices per optimizer: their mean, or one curve per layer."""
    curves = []
    for name, r in results.items():
        color, series = OPTIMIZER_COLORS.get(name), r.ranks.stable
        if not series:
            continue
        if mean:
            curves.append(Curve(name, r.ranks.steps, np.mean(list(series.values()), axis=0), color))
        else:
            curves += [
                Curve(name if i == 0 else None, r.ranks.steps, values, color, 0.7)
                for i, values in enumerate(series.values())
            ]
    return curves


def layer_curves(ranks: RankTracker, kind: str) -> list[Curve]:
    """One curve per layer of ``ranks.stable`` or ``ranks.effective``."""
    return [Curve(name, ranks.steps, values) for name, values in getattr(ranks, kind).items()]


def curves_figure(results: dict[str, FitResult], primary: str, path: Path) -> None:
    """Primary metric and mean hidden-layer stable rank vs step, one line per optimizer."""
    fig, axes = new_figure(1, 2, size=(8, 3))
    draw_curves(axes[0, 0], metric_curves(results, primary), primary, primary)
    draw_curves(
        axes[0, 1], rank_curves(results, mean=True), "stable rank", "mean stable rank of hidden weights"
    )
    save_figure(fig, path)


def ranks_figure(ranks: RankTracker, path: Path, title: str = "") -> None:
    """Stable and effective rank vs step, one line per hidden layer."""
    fig, axes = new_figure(1, 2, size=(9, 3.2))
    draw_curves(axes[0, 0], layer_curves(ranks, "stable"), "stable rank")
    draw_curves(axes[0, 1], layer_curves(ranks, "effective"), "effective rank")
    fig.suptitle(title)
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
    for ax in axes[-1, :2]:
        ax.axis("on")
    draw_curves(axes[-1, 0], metric_curves(results, signal.primary_metric), signal.primary_metric)
    draw_curves(axes[-1, 1], rank_curves(results, mean=False), "stable rank (each hidden layer)")
    save_figure(fig, path)
