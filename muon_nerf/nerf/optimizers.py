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

from dataclasses import dataclass, field

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
    """nerfstudio's exponential decay with warmup, storing floats."""

    def get_scheduler(self, optimizer: Optimizer, lr_init: float) -> FloatLambdaLR:
        return as_float_lr(super().get_scheduler(optimizer, lr_init))


class FloatCosineDecayScheduler(CosineDecayScheduler):
    """nerfstudio's cosine decay with warmup, storing floats."""

    def get_scheduler(self, optimizer: Optimizer, lr_init: float) -> FloatLambdaLR:
        return as_float_lr(super().get_scheduler(optimizer, lr_init))


@dataclass
class FloatExponentialDecaySchedulerConfig(ExponentialDecaySchedulerConfig):
    """Same options as nerfstudio's ``ExponentialDecaySchedulerConfig``; checkpoint-safe."""

    _target: type = field(default_factory=lambda: FloatExponentialDecayScheduler)


@dataclass
class FloatCosineDecaySchedulerConfig(CosineDecaySchedulerConfig):
    """Same options as nerfstudio's ``CosineDecaySchedulerConfig``; checkpoint-safe."""

    _target: type = field(default_factory=lambda: FloatCosineDecayScheduler)
