"""nerfstudio optimizer and scheduler configs for the Muon/Adam split.

``MuonOptimizerConfig`` builds our ``MuonWithAuxAdam`` with a single Muon group, made by
``MuonConfig.group`` as in every other front end, so nerfstudio's ``Optimizers`` (one optimizer
per param group name) steps, schedules and checkpoints it like any other torch optimizer.

The float-safe schedulers exist because nerfstudio's exponential/cosine schedules return numpy
scalars: ``LambdaLR`` then writes ``numpy.float64`` into ``param_group["lr"]`` and into its own
state, and torch ≥ 2.6 refuses to ``torch.load`` such checkpoints with ``weights_only=True`` (the
default), which breaks ``ns-eval``, ``ns-render`` and resuming.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from nerfstudio.engine.optimizers import OptimizerConfig
from nerfstudio.engine.schedulers import (
    CosineDecayScheduler,
    CosineDecaySchedulerConfig,
    ExponentialDecayScheduler,
    ExponentialDecaySchedulerConfig,
)
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from muon_nerf.optim import MUON_LR, MuonConfig, MuonWithAuxAdam


@dataclass
class MuonOptimizerConfig(OptimizerConfig, MuonConfig):
    """Muon for the ``fields_muon`` param group (hidden-layer weight matrices only): nerfstudio's
    optimizer config with :class:`MuonConfig`'s settings (the paper's: momentum 0.95 with
    Nesterov, 5 quintic Newton–Schulz steps, no weight decay). nerfstudio's ``eps`` is not used by
    Muon; the Newton–Schulz floor is ``ns_eps``."""

    _target: type = MuonWithAuxAdam
    lr: float = MUON_LR
    """Muon's step size: the spectral norm of each orthogonalized update (before shape scaling)."""
    batched: bool = True
    """One batched Newton–Schulz chain per matrix shape (faster); False: one chain per matrix."""

    def setup(self, params) -> MuonWithAuxAdam:  # noqa: ANN001 - nerfstudio passes a list of Parameters
        return self._target([self.group(params, self.lr)], batched=self.batched)


class FloatLambdaLR(LambdaLR):
    """``LambdaLR`` that stores Python floats whatever its lambdas return, so optimizer and
    scheduler state dicts hold no numpy scalars."""

    def get_lr(self) -> list[float]:
        return [float(lr) for lr in super().get_lr()]


def as_float_lr(scheduler: LambdaLR) -> FloatLambdaLR:
    """Re-create a nerfstudio ``LambdaLR`` with the same lambdas as a :class:`FloatLambdaLR`.

    The first scheduler already set ``initial_lr`` on the groups; the new one reads it back, so
    the schedule is unchanged and the current ``lr`` is rewritten as a float."""
    return FloatLambdaLR(scheduler.optimizer, lr_lambda=list(scheduler.lr_lambdas))


class FloatExponentialDecayScheduler(ExponentialDecayScheduler):
    """nerfstudio's exponential decay with warmup, storing floats; with ``decay`` set, its final
    lr is the optimizer's own lr over ``decay``, whatever lr the group was given."""

    config: FloatExponentialDecaySchedulerConfig

    def get_scheduler(self, optimizer: Optimizer, lr_init: float) -> FloatLambdaLR:
        config = self.config
        check_schedule(config)
        if config.max_steps is None:
            raise ValueError("max_steps unset: MuonNeRFTrainerConfig.resolve_schedules sets the run length")
        if config.decay is not None:
            self.config = replace(config, lr_final=lr_init / config.decay)
        try:
            return as_float_lr(super().get_scheduler(optimizer, lr_init))
        finally:
            self.config = config


def check_schedule(config: FloatExponentialDecaySchedulerConfig) -> None:
    """Refuse (one line) a schedule that would not do what it says: both a derived and a fixed
    final lr, a decay factor that is not a finite number ≥ 1, or max steps below 1."""
    if config.decay is not None:
        if config.lr_final is not None:
            raise ValueError(
                f"scheduler.decay ({config.decay}) and scheduler.lr-final ({config.lr_final}): set one"
            )
        if not (math.isfinite(config.decay) and config.decay >= 1):
            raise ValueError(
                f"scheduler.decay must be a finite factor >= 1 (10: ends 10x lower), got {config.decay}"
            )
    if config.max_steps is not None and config.max_steps < 1:
        raise ValueError(
            f"scheduler.max-steps must be >= 1 (unset: the run's max-num-iterations), got {config.max_steps}"
        )


class FloatCosineDecayScheduler(CosineDecayScheduler):
    """nerfstudio's cosine decay with warmup, storing floats."""

    def get_scheduler(self, optimizer: Optimizer, lr_init: float) -> FloatLambdaLR:
        return as_float_lr(super().get_scheduler(optimizer, lr_init))


@dataclass
class FloatExponentialDecaySchedulerConfig(ExponentialDecaySchedulerConfig):
    """nerfstudio's ``ExponentialDecaySchedulerConfig``, checkpoint-safe, with a schedule that
    follows the run: ``decay`` derives the final lr from the group's lr, and ``max_steps`` left
    unset follows ``--max-num-iterations``, so changing either never turns "10× lower at the end"
    into another ratio (or a rise)."""

    _target: type = field(default_factory=lambda: FloatExponentialDecayScheduler)
    decay: float | None = None
    """The factor the lr falls by over ``max_steps`` (lr_final = the optimizer's lr / decay);
    unset: ``lr_final`` as given (nerfstudio's meaning: unset there too is a constant lr)."""
    max_steps: int | None = None  # type: ignore[assignment]  # nerfstudio's is an int
    """Steps of the decay; unset: the run's ``max_num_iterations``."""


@dataclass
class FloatCosineDecaySchedulerConfig(CosineDecaySchedulerConfig):
    """Same options as nerfstudio's ``CosineDecaySchedulerConfig``; checkpoint-safe."""

    _target: type = field(default_factory=lambda: FloatCosineDecayScheduler)
