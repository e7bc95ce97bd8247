"""Test PSNR and SSIM during training: a learning curve in training seconds and iterations.

A few fixed test views are scored every K iterations and after the last one by a nerfstudio
``TrainingCallback`` appended to ``trainer.callbacks``, so ``trainer.train()`` runs unchanged. The
callback times itself and its points carry the training seconds *without* the evaluations: curves
of methods that differ in speed then compare at equal training time (``value_at``), which is the
question a benchmark of optimizers asks. Evaluation renders in ``eval`` mode without gradients and
draws no random numbers (no jitter, no pixel sampling), so the training it interrupts is the
training it would have been.

The views are scored as the model scores them in ``ns-eval`` (the eval dataloader's camera and
image, the image blended with the model's background, the render clamped to [0, 1]) with
``muon_nerf.fit.metrics``: the same PSNR and SSIM as every table of this project.
"""

from __future__ import annotations

import bisect
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from jaxtyping import Float
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackLocation
from nerfstudio.engine.trainer import Trainer
from nerfstudio.pipelines.base_pipeline import Pipeline
from torch import Tensor

from muon_nerf.fit.metrics import psnr, ssim


def evenly_spaced(total: int, count: int) -> list[int]:
    """``count`` indices spread over ``range(total)``, first and last included; all of them when
    ``count >= total``."""
    if count >= total:
        return list(range(total))
    if count == 1:
        return [0]
    return sorted({round(i * (total - 1) / (count - 1)) for i in range(count)})


def curve_steps(iterations: int, every: int) -> tuple[int, ...]:
    """The 0-based training steps after which a point is taken: each ``every``-th iteration and
    the last (nerfstudio's step s ends iteration s + 1)."""
    return tuple(sorted({s - 1 for s in range(every, iterations + 1, every)} | {iterations - 1}))


def rgb_of(outputs: dict[str, Tensor]) -> Float[Tensor, "h w 3"]:
    """The rendered colour: ``rgb`` (ours, nerfacto) or the fine pass's ``rgb_fine`` (vanilla-nerf)."""
    return outputs["rgb" if "rgb" in outputs else "rgb_fine"]


def depth_of(outputs: dict[str, Tensor]) -> tuple[Float[Tensor, "h w 1"], Float[Tensor, "h w 1"]]:
    """Rendered depth and accumulation, of the fine pass where there are two."""
    tag = "" if "depth" in outputs else "_fine"
    return outputs[f"depth{tag}"], outputs[f"accumulation{tag}"]


def render_view(pipeline: Pipeline, index: int) -> tuple[dict[str, Tensor], Float[Tensor, "h w 3"]]:
    """The model's outputs for eval view ``index`` and its ground truth, exactly as
    ``get_average_eval_image_metrics`` renders and scores it: the eval dataloader's camera and
    image, the image blended with the model's background (a no-op for RGB captures)."""
    camera, batch = pipeline.datamanager.fixed_indices_eval_dataloader.get_camera(index)
    with torch.no_grad():
        outputs = pipeline.model.get_outputs_for_camera(camera)
        image = pipeline.model.renderer_rgb.blend_background(batch["image"].to(rgb_of(outputs).device))
    return outputs, image


def score_views(pipeline: Pipeline, views: list[int]) -> dict[str, float]:
    """Mean PSNR and SSIM over ``views`` (per view, then averaged, as the pipeline averages)."""
    scores = []
    for index in views:
        outputs, image = render_view(pipeline, index)
        rgb = rgb_of(outputs).clamp(0, 1)
        scores.append((psnr(rgb, image), ssim(rgb, image)))
    return {"psnr": statistics.mean(p for p, _ in scores), "ssim": statistics.mean(s for _, s in scores)}


@dataclass(frozen=True)
class StopRule:
    """When a run with a curve stops before its last iteration, checked at each curve point:
    ``converged`` once the curve's best gained less than ``gain`` dB over the last ``window``
    iterations (its best so far against its best up to ``window`` iterations ago: a short dip of a
    noisy curve is not convergence) while its latest point is within ``gain`` of that best (a run
    still climbing back from a long dip after an early peak has not converged either), ``time
    limit`` once ``seconds`` of wall time have passed since the start, curve evaluations included
    (a budget for a lease, not a measurement). None disables either rule."""

    gain: float | None = None
    window: int = 2000
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.gain is not None and not (math.isfinite(self.gain) and self.gain >= 0):
            raise ValueError(f"a convergence gain must be finite and >= 0 dB, got {self.gain}")
        if self.window < 1:
            raise ValueError(f"a convergence window must be at least one iteration, got {self.window}")
        if self.seconds is not None and not (math.isfinite(self.seconds) and self.seconds > 0):
            raise ValueError(f"a time limit must be finite and > 0 s, got {self.seconds}")

    def reason(self, points: list[dict[str, float]], wall_seconds: float) -> str | None:
        """Why to stop after the last of ``points`` (None: go on); a run that has converged says
        so even when its time is up too."""
        if self.gain is not None and points:
            last = points[-1]
            before = [p["psnr"] for p in points if p["iteration"] <= last["iteration"] - self.window]
            best = max(p["psnr"] for p in points)
            if before and best - max(before) < self.gain and best - last["psnr"] < self.gain:
                return "converged"
        if self.seconds is not None and wall_seconds >= self.seconds:
            return "time limit"
        return None


class LearningCurve:
    """Points ``{iteration, seconds, psnr, ssim}`` on fixed test views during training.

    ``seconds`` is training time only: from ``start()`` (call it right before ``trainer.train()``)
    to the point, less every evaluation so far (``eval_seconds``). ``sync`` (CUDA) waits for
    queued kernels at both ends of an evaluation so its time is its own. With a ``stop`` rule,
    ``stopped`` says why training should end after the latest point (None: it should not).
    ``sink`` gets the points so far after each one (a benchmark writes them out, so a run killed
    before its end keeps the curve it took)."""

    def __init__(
        self,
        pipeline: Pipeline,
        views: list[int],
        steps: tuple[int, ...],
        sync: bool = False,
        stop: StopRule | None = None,
        sink: Callable[[list[dict[str, float]]], None] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.views = list(views)
        self.steps = steps
        self.points: list[dict[str, float]] = []
        self.eval_seconds = 0.0
        self.stop = stop
        self.stopped: str | None = None
        self._sink = sink
        self._sync = sync
        self._start = time.perf_counter()

    def _now(self) -> float:
        if self._sync:
            torch.cuda.synchronize()
        return time.perf_counter()

    def start(
        self, carried: Sequence[dict[str, float]] = (), seconds: float = 0.0, evaluations: float = 0.0
    ) -> None:
        """Start the clock. A run that continues an earlier one (stopped at its time limit and
        trained on from its checkpoint) carries that run's points, training ``seconds`` and curve
        ``evaluations`` seconds: its points go on from them, and a time limit counts from the
        earlier run's start."""
        self._start = self._now() - seconds - evaluations
        self.points, self.eval_seconds, self.stopped = list(carried), evaluations, None

    def __call__(self, step: int) -> None:
        t0 = self._now()
        seconds = t0 - self._start - self.eval_seconds
        self.pipeline.eval()
        try:
            scores = score_views(self.pipeline, self.views)
        finally:
            self.pipeline.train()
        self.points.append({"iteration": step + 1, "seconds": seconds, **scores})
        t1 = self._now()
        self.eval_seconds += t1 - t0
        if self.stop is not None:
            self.stopped = self.stop.reason(self.points, t1 - self._start)
        if self._sink is not None:
            self._sink(self.points)


def attach_curve(
    trainer: Trainer,
    views: list[int],
    every: int,
    iterations: int,
    sync: bool = False,
    stop: StopRule | None = None,
    sink: Callable[[list[dict[str, float]]], None] | None = None,
) -> LearningCurve:
    """A ``LearningCurve`` on ``views`` of the trainer's eval dataset, every ``every`` iterations and
    after the last of ``iterations``, appended to the set-up trainer's callbacks (``sink``: see
    ``LearningCurve``). With ``stop``,
    a point that meets the rule ends training there (nerfstudio's ``stop_training``: the loop
    leaves before the next iteration and saves its checkpoint as at the end)."""
    if every < 1:
        raise ValueError(f"a curve needs a period of at least one iteration, got {every}")
    steps = curve_steps(iterations, every)
    curve = LearningCurve(trainer.pipeline, views, steps, sync=sync, stop=stop, sink=sink)

    def take(step: int) -> None:
        curve(step)
        if curve.stopped is not None:
            trainer.stop_training = True

    trainer.callbacks.append(
        TrainingCallback([TrainingCallbackLocation.AFTER_TRAIN_ITERATION], take, iters=curve.steps)
    )
    return curve


def value_at(points: list[dict[str, Any]], seconds: float, key: str = "psnr") -> float | None:
    """``key`` at ``seconds`` of training, linear between the two points around it; None before
    the first point or after the last (a curve is not extrapolated)."""
    times = [p["seconds"] for p in points]
    if not points or seconds < times[0] or seconds > times[-1]:
        return None
    i = bisect.bisect_left(times, seconds)
    if times[i] == seconds:
        return float(points[i][key])
    (t0, v0), (t1, v1) = (times[i - 1], points[i - 1][key]), (times[i], points[i][key])
    return float(v0 + (v1 - v0) * (seconds - t0) / (t1 - t0))


def time_to_reach(
    points: list[dict[str, Any]], target: float, key: str = "psnr", at: str = "seconds"
) -> float | None:
    """Training seconds (``at``: or the iteration) at which ``key`` first reaches ``target``,
    linear between the two points around the crossing (from the first point, if it is already
    there); None if it never does."""
    for i, point in enumerate(points):
        if point[key] >= target:
            if i == 0:
                return float(point[at])
            before = points[i - 1]
            fraction = (target - before[key]) / (point[key] - before[key])
            return float(before[at] + fraction * (point[at] - before[at]))
    return None
