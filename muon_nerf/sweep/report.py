"""A sweep's outputs: the table of every trial, the best config per optimizer and the heat map."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.table import Table

from muon_nerf.runs.io import atomic_write_bytes
from muon_nerf.runs.plotting import new_figure, save_figure
from muon_nerf.sweep.trial import Mode

FAILED = ("diverged", "error")
"""Statuses of trials that produced no usable result (grey ✗ cells, never the best)."""


@dataclass
class TrialRecord:
    """One trial as the sweep saw it last: ``ok``, ``diverged`` (the fit's divergence rule),
    ``error`` (raised) or
    ``stopped`` (ended early by ASHA; ``value`` is then its last evaluation)."""

    index: int
    optimizer: str
    lr: float
    muon_lr: float | None
    status: str
    value: float
    """The task's primary metric (NaN when the trial never got to an evaluation)."""
    step: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    error: str = ""

    def flags(self) -> str:
        """The trial as ``muon-fit`` flags."""
        muon = f" --muon-lr {self.muon_lr:.4g}" if self.muon_lr is not None else ""
        return f"--optimizer {self.optimizer} --lr {self.lr:.4g}{muon}"


def is_better(a: float, b: float, mode: Mode) -> bool:
    return a > b if mode == "max" else a < b


def best_trials(records: list[TrialRecord], mode: Mode) -> dict[str, TrialRecord]:
    """The best finished trial of each optimizer (diverged, errored and stopped trials never count)."""
    best: dict[str, TrialRecord] = {}
    for rec in records:
        if rec.status != "ok" or not math.isfinite(rec.value):
            continue
        if rec.optimizer not in best or is_better(rec.value, best[rec.optimizer].value, mode):
            best[rec.optimizer] = rec
    return best


def _fmt(value: float | None, spec: str = ".4g") -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


SHORT = {"stable_rank": "rank", "train_seconds": "train s"}
"""Table headers for the trial's own numbers (the signal's metrics keep their names)."""


def trial_table(records: list[TrialRecord], primary: str, mode: Mode, title: str) -> Table:
    """Every trial, best first within each optimizer; the best row of each optimizer in bold."""
    best = {id(r) for r in best_trials(records, mode).values()}
    shown = [k for k in sorted({k for r in records for k in r.metrics}) if k != "loss" and k not in SHORT]
    shown += [k for k in SHORT if any(k in r.metrics for r in records)]
    table = Table(title=title)
    for name in ("#", "opt", "lr", "muon lr", "status", primary, *(SHORT.get(k, k) for k in shown)):
        table.add_column(name, justify="left" if name in ("opt", "status") else "right")
    table.add_column("note", no_wrap=True, overflow="ellipsis", max_width=40)

    def order(rec: TrialRecord) -> tuple:
        good = rec.status not in FAILED and math.isfinite(rec.value)
        key = (-rec.value if mode == "max" else rec.value) if good else 0.0
        return (rec.optimizer, not good, key)

    for rec in sorted(records, key=order):
        note = rec.error if rec.error else f"at step {rec.step}" if rec.status == "stopped" else ""
        table.add_row(
            str(rec.index),
            rec.optimizer,
            _fmt(rec.lr, ".2g"),
            _fmt(rec.muon_lr, ".2g"),
            rec.status,
            _fmt(rec.value if math.isfinite(rec.value) else math.nan, ".2f"),
            *(_fmt(rec.metrics.get(k, math.nan), ".3g") for k in shown),
            note,
            style="bold" if id(rec) in best else ("dim" if rec.status in FAILED else None),
        )
    return table


def write_csv(path: Path, records: list[TrialRecord], primary: str) -> None:
    metrics = sorted({k for r in records for k in r.metrics} - {primary})
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["index", "optimizer", "lr", "muon_lr", "status", "step", primary, *metrics, "error"])
    for rec in sorted(records, key=lambda r: r.index):
        writer.writerow(
            [rec.index, rec.optimizer, rec.lr, "" if rec.muon_lr is None else rec.muon_lr, rec.status]
            + [rec.step, rec.value if math.isfinite(rec.value) else ""]
            + [rec.metrics.get(k, "") for k in metrics]
            + [rec.error]
        )
    atomic_write_bytes(path, buf.getvalue().encode())


def heatmap(records: list[TrialRecord], primary: str, mode: Mode, path: Path, title: str) -> None:
    """The primary metric over the learning rates: Adam's row (lr) beside Muon's grid (lr × muon lr)
    on one colour scale. Diverged and errored trials are grey cells marked ✗, stopped ones are
    labelled; points not on a grid (random search) are drawn as a scatter on log axes."""
    adam = [r for r in records if r.optimizer == "adam"]
    muon = [r for r in records if r.optimizer == "muon"]
    panels = [(name, recs) for name, recs in (("adam", adam), ("muon", muon)) if recs]
    finite = [r.value for r in records if r.status not in FAILED and math.isfinite(r.value)]
    vmin, vmax = (min(finite), max(finite)) if finite else (0.0, 1.0)
    cmap = _cmap(mode)
    widths = [1.6 + 0.9 * len({r.lr for r in recs}) for _, recs in panels]
    fig, axes = new_figure(1, len(panels), size=(sum(widths) + 1.2, 3.6))
    image = None
    best = {id(r) for r in best_trials(records, mode).values()}
    for ax, (name, recs) in zip(axes[0], panels, strict=True):
        lrs = sorted({r.lr for r in recs})
        rows = sorted({r.muon_lr for r in recs}) if name == "muon" else [None]
        if len(lrs) * len(rows) == len(recs):
            image = _grid_panel(ax, recs, lrs, rows, cmap, vmin, vmax, best)
        else:
            image = _scatter_panel(ax, recs, name, cmap, vmin, vmax)
        ax.set_title(f"{name}: {primary}", fontsize=9)
    if image is not None:
        better = "higher" if mode == "max" else "lower"
        fig.colorbar(image, ax=list(axes[0]), shrink=0.85, label=f"{primary} ({better} is better)")
    fig.suptitle(title, fontsize=9)
    save_figure(fig, path)


def _cmap(mode: Mode):
    import matplotlib

    return matplotlib.colormaps["viridis" if mode == "max" else "viridis_r"].with_extremes(bad="lightgrey")


def _grid_panel(ax, recs, lrs, rows, cmap, vmin, vmax, best):
    grid = np.full((len(rows), len(lrs)), np.nan)
    labels = {}
    for rec in recs:
        i, j = rows.index(rec.muon_lr), lrs.index(rec.lr)
        if rec.status not in FAILED and math.isfinite(rec.value):
            grid[i, j] = rec.value
        labels[i, j] = (
            "✗ " + rec.status
            if rec.status in FAILED
            else f"{rec.value:.2f}" + ("\nstopped" if rec.status == "stopped" else "")
        )
    image = ax.imshow(grid, cmap=cmap, vmin=vmin, vmax=vmax, origin="lower", aspect="auto")
    for (i, j), text in labels.items():
        level = image.norm(grid[i, j])
        bright = np.isnan(grid[i, j]) or (level < 0.5 if cmap.name.endswith("_r") else level > 0.5)
        ax.text(j, i, text, ha="center", va="center", fontsize=7, color="black" if bright else "white")
    for rec in recs:
        if id(rec) in best:
            i, j = rows.index(rec.muon_lr), lrs.index(rec.lr)
            ax.add_patch(_box(j, i))
    ax.set_xticks(range(len(lrs)), [f"{v:.2g}" for v in lrs], fontsize=7)
    ax.set_xlabel("--lr (Adam)")
    if rows == [None]:
        ax.set_yticks([])
    else:
        ax.set_yticks(range(len(rows)), [f"{v:.2g}" for v in rows], fontsize=7)
        ax.set_ylabel("--muon-lr")
    return image


def _box(x: float, y: float):
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2)


def _scatter_panel(ax, recs, name, cmap, vmin, vmax):
    ok = [r for r in recs if r.status not in FAILED and math.isfinite(r.value)]
    bad = [r for r in recs if r not in ok]

    def y(r: TrialRecord) -> float:
        return r.muon_lr if name == "muon" else 1.0

    image = ax.scatter(
        [r.lr for r in ok], [y(r) for r in ok], c=[r.value for r in ok], cmap=cmap, vmin=vmin, vmax=vmax, s=60
    )
    if bad:
        label = "diverged / error"
        ax.scatter([r.lr for r in bad], [y(r) for r in bad], marker="x", color="grey", label=label)
        ax.legend(fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("--lr (Adam)")
    if name == "muon":
        ax.set_yscale("log")
        ax.set_ylabel("--muon-lr")
    else:
        ax.set_yticks([])
    return image
