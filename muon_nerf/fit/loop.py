"""The one fit loop that every signal (image, audio, CT, SISR, SDF) plugs into."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import Tensor, nn

from muon_nerf.fit.device import check_device
from muon_nerf.fit.diagnostics import RankTracker
from muon_nerf.fit.errors import DivergedError, raise_swallowed_stop
from muon_nerf.fit.signal import Signal

DIVERGENCE_FACTOR = 100.0
"""A fit whose loss at any evaluation exceeds this many times its loss at step 1 has diverged
(stopped there: a diverging fit does not train on to its last step)."""


@dataclass
class FitConfig:
    """Training schedule shared by every task. A fit that diverges stops with an error: a loss
    that is NaN or infinite at an evaluation, or a loss at an evaluation over 100 times the loss at
    step 1 (the untrained field's); it stops at the first evaluation where either holds."""

    steps: int = 5000
    """Training steps (optimizer updates) per fit."""
    batch_size: int | None = None
    """Coordinates per step; None = full batch (the paper's setting)."""
    scheduler: Literal["cosine", "none"] = "cosine"
    """Learning-rate schedule of every group: cosine decay to --eta-min over --steps, or constant."""
    eta_min: float = 1e-6
    """Final LR of the cosine schedule (every group decays to it)."""
    eval_every: int = 100
    """Steps between full evaluations (metrics curve); also the NaN check interval."""
    rank_every: int = 250
    """Steps between stable/effective-rank recordings of the hidden weights."""
    checkpoint_every: int = 500
    """Steps between checkpoints of the whole fit state (field, optimizer, schedule, step, random
    state) in the unfinished run folder, so an interrupted fit can be finished with --resume;
    0 = none. A checkpoint is a few times the field's size and written atomically."""
    seed: int = 0
    """Seed of the field's initialization and of batch sampling (Adam and Muon share it)."""
    progress: bool = True
    """Show a progress bar."""
    device: str = "cpu"
    """Where the fit runs: cpu, cuda or cuda:N (checked before any work)."""
    tf32: bool = False
    """CUDA only: let fp32 matmuls use TF32 tensor cores (several times faster on Ampere and later,
    ~1e-3 relative matmul precision). Off by default: results then match the paper's fp32."""

    def check(self, device: bool = True) -> None:
        """Refuse bad values with a one-line message (called before any work starts); with
        ``device``, also a --device this machine does not have."""
        if device:
            check_device(self.device)
        if self.steps < 1:
            raise ValueError(f"--steps must be >= 1, got {self.steps}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.eval_every < 1 or self.rank_every < 1:
            raise ValueError("--eval-every and --rank-every must be >= 1")
        if not self.eta_min >= 0:
            raise ValueError(f"--eta-min must be >= 0, got {self.eta_min}")
        if self.checkpoint_every < 0:
            raise ValueError(f"--checkpoint-every must be >= 0 (0: none), got {self.checkpoint_every}")


@dataclass
class FitResult:
    metrics: dict[str, float]
    history: list[dict[str, float]]
    ranks: RankTracker
    prediction: Tensor
    field: nn.Module
    train_seconds: float
    """Time spent in training steps only (no evaluation)."""
    wall_seconds: float
    extra: dict = field(default_factory=dict)

    def summary(self) -> dict:
        return {
            "metrics": self.metrics,
            "train_seconds": self.train_seconds,
            "wall_seconds": self.wall_seconds,
            "final_stable_rank": self.ranks.final_stable(),
            "history": self.history,
            "ranks": self.ranks.to_dict(),
            **self.extra,
        }


def _progress(enabled: bool, label: str) -> Progress:
    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=False,
    )


@contextmanager
def _matmul_precision(device: torch.device, tf32: bool) -> Iterator[None]:
    """Allow TF32 matmuls on CUDA for the fit only (restored afterwards: it is process-global)."""
    if device.type != "cuda" or not tf32:
        yield
        return
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


FitState = dict[str, Any]
"""A fit between two steps: what a checkpoint holds (``fit(..., start=state)`` continues it)."""


def fit(
    signal: Signal,
    field: nn.Module,
    optimizer: torch.optim.Optimizer,
    cfg: FitConfig,
    label: str = "fit",
    on_eval: Callable[[dict[str, float]], None] | None = None,
    checkpoint: Callable[[FitState], None] | None = None,
    start: FitState | None = None,
) -> FitResult:
    """Minimize ``signal.loss(field, batch)`` for ``cfg.steps`` steps.

    Evaluation (full prediction + metrics) and rank recording happen every few steps only, so
    the loop costs what the training arithmetic costs; the loss is checked at those points
    without a device sync every step: NaN/inf, or over ``DIVERGENCE_FACTOR`` times the step-1
    loss, raises ``DivergedError`` naming the step, at the first evaluation where it holds.
    ``on_eval`` receives each evaluation's history row (sweeps report it to Ray Tune, so hopeless
    trials can be stopped early).

    Every ``cfg.checkpoint_every`` steps ``checkpoint`` receives the whole state between two steps
    (field, optimizer, schedule, sampling and global RNG, curves, timings); ``start`` continues
    from such a state, so an interrupted fit ends where an uninterrupted one would. A stop signal
    whose exception a library caught is raised again before the next step.
    """
    cfg.check()
    device = next(field.parameters()).device
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.steps, eta_min=cfg.eta_min)
        if cfg.scheduler == "cosine"
        else None
    )
    tracker, history = RankTracker(), []
    hidden = getattr(field, "hidden_weights", dict)
    train_seconds, wall_start = 0.0, time.perf_counter()
    prediction: Tensor | None = None
    metrics: dict[str, float] = {}
    initial_loss, first = math.nan, 1
    if start is None:
        tracker.record(0, hidden())
    else:
        field.load_state_dict(start["field"])
        optimizer.load_state_dict(start["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(start["scheduler"])
        generator.set_state(start["generator"])
        torch.set_rng_state(start["torch_rng"])
        tracker, history = RankTracker.from_dict(start["ranks"]), list(start["history"])
        train_seconds, initial_loss = start["train_seconds"], start["initial_loss"]
        wall_start -= start["wall_seconds"]
        first = start["step"] + 1

    def state(step: int) -> FitState:
        return {
            "step": step,
            "field": field.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "ranks": tracker.to_dict(),
            "history": history,
            "train_seconds": train_seconds,
            "wall_seconds": time.perf_counter() - wall_start,
            "initial_loss": initial_loss,
        }

    with _progress(cfg.progress, label) as bar, _matmul_precision(device, cfg.tf32):
        task = bar.add_task(label, total=cfg.steps, completed=first - 1, status="")
        segment_start = time.perf_counter()
        for step in range(first, cfg.steps + 1):
            raise_swallowed_stop()
            batch = signal.sample(cfg.batch_size, generator)
            loss = signal.loss(field, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            bar.advance(task)
            if step == 1:
                initial_loss = float(loss.detach())  # one sync: the reference of the divergence rule
            last = step == cfg.steps
            evaluate, record = step % cfg.eval_every == 0 or last, step % cfg.rank_every == 0 or last
            save = checkpoint is not None and cfg.checkpoint_every > 0 and step % cfg.checkpoint_every == 0
            if not (evaluate or record or save):
                continue  # no sync: on a GPU the next step's launches queue behind this one's work
            _sync(device)
            train_seconds += time.perf_counter() - segment_start
            if evaluate:
                value = float(loss.detach())
                if not math.isfinite(value):
                    hint = "lower --lr / --muon-lr"
                    raise DivergedError(f"{label}: loss became {value} at step {step}; {hint}")
                if initial_loss > 0 and value > DIVERGENCE_FACTOR * initial_loss:
                    raise DivergedError(
                        f"{label}: diverged: loss {value:.3g} at step {step} is over "
                        f"{DIVERGENCE_FACTOR:g}x its step-1 value {initial_loss:.3g}; lower --lr / --muon-lr"
                    )
                prediction = signal.predict(field)
                metrics = signal.evaluate(prediction)
                history.append({"step": step, "loss": value, "seconds": train_seconds, **metrics})
                if on_eval is not None:
                    on_eval(history[-1])
                shown = metrics.get(signal.primary_metric, value)
                bar.update(task, status=f"loss {value:.3e}  {signal.primary_metric} {shown:.2f}")
            if record:
                tracker.record(step, hidden())
            if save and not last:
                checkpoint(state(step))
            segment_start = time.perf_counter()
    assert prediction is not None
    wall = time.perf_counter() - wall_start
    return FitResult(metrics, history, tracker, prediction, field, train_seconds, wall)
