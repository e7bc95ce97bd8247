"""One sweep trial: the task's config with the trial's learning rates, fitted by ``fit_one`` (the
function ``muon-fit`` itself runs), reported as a flat dict. Needs no Ray, so tests call it too."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch

from muon_nerf.fit.device import flush_denormals
from muon_nerf.fit.errors import DivergedError
from muon_nerf.fit.metrics import lower_is_better
from muon_nerf.fit.signal import Signal
from muon_nerf.runs.run import fit_one
from muon_nerf.runs.task import TaskConfig

Mode = Literal["max", "min"]


def metric_mode(signal: Signal) -> Mode:
    """Whether the signal's primary metric is maximized (PSNR, SNR, IoU) or minimized (Chamfer)."""
    explicit = getattr(signal, "primary_mode", None)
    if explicit in ("max", "min"):
        return explicit
    return "min" if lower_is_better(signal.primary_metric) else "max"


def worst(mode: Mode) -> float:
    """The metric value reported for a diverged trial, so schedulers rank it last."""
    return -math.inf if mode == "max" else math.inf


def with_point_lrs(base: TaskConfig, optimizer: str, lr: float, muon_lr: float | None) -> TaskConfig:
    """``base`` with a sweep point's optimizer and learning rates (a trial's, a preset's)."""
    # the point's lr is the Adam lr of either optimizer: a base --muon-adam-lr would hide it
    optim = dataclasses.replace(base.optim, optimizer=optimizer, lr=float(lr), muon_adam_lr=None)
    if muon_lr is not None:
        optim = dataclasses.replace(optim, muon_lr=float(muon_lr))
    return dataclasses.replace(base, optim=optim)


def trial_config(base: TaskConfig, point: dict) -> TaskConfig:
    """``base`` with the point's optimizer and learning rates; no progress bar inside a trial."""
    cfg = with_point_lrs(base, point["optimizer"], point["lr"], point.get("muon_lr"))
    fit = dataclasses.replace(base.fit, progress=False)
    return dataclasses.replace(cfg, fit=fit, compare=False, print_split=False)


def run_trial(
    point: dict,
    base: TaskConfig,
    signal: Signal,
    threads: int = 1,
    report: Callable[[dict], None] | None = None,
) -> dict:
    """Fit one point; return ``status`` (ok or diverged), the metrics and timings.

    A diverged fit (the loop's divergence rule: NaN/inf loss, or a final loss over 100× the
    step-1 loss; or non-finite metrics) is a *diverged trial*, not an error of the sweep: its
    primary metric is the worst value so it is never chosen.
    ``report`` receives every evaluation (step, loss, metrics) while the fit runs.
    """
    flush_denormals()  # a Ray worker is a process of its own: set it before the first torch op
    torch.set_num_threads(max(1, threads))
    cfg = trial_config(base, point)
    primary, mode = signal.primary_metric, metric_mode(signal)
    signal = signal.to(cfg.fit.device)

    def on_eval(row: dict[str, float]) -> None:
        # The last evaluation is reported once, with the final result below.
        if report is not None and row["step"] < cfg.fit.steps:
            report({**row, "status": "running"})

    try:
        result = fit_one(signal, cfg, point["optimizer"], on_eval=on_eval)
    except DivergedError as err:
        return {"status": "diverged", "error": str(err), primary: worst(mode), "step": cfg.fit.steps}
    metrics = {k: float(v) for k, v in result.metrics.items()}
    if not all(math.isfinite(v) for v in metrics.values()):
        return {
            "status": "diverged",
            "error": f"non-finite metrics {metrics}",
            primary: worst(mode),
            "step": cfg.fit.steps,
        }
    stable = result.ranks.final_stable()
    return {
        "status": "ok",
        **metrics,
        "step": cfg.fit.steps,
        "loss": result.history[-1]["loss"],
        "stable_rank": float(np.mean(list(stable.values()))) if stable else math.nan,
        "train_seconds": result.train_seconds,
        "wall_seconds": result.wall_seconds,
    }
