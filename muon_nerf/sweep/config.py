"""What a sweep explores: the optimizers, the learning-rate ranges, grid or random points, and how
trials are placed on Ray (resources, concurrency, cluster address, early stopping)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

from muon_nerf.fit.memory import check_fits

TRIAL_BYTES = 64 * 1024
"""A budget per planned trial for what the driver holds of it (our point, Tune's trial object,
its config and last result): a plan of millions of trials is refused before it is built."""

OptimizerName = Literal["adam", "muon"]


@dataclass
class SweepConfig:
    """Sweep flags (task flags such as --arch or --steps apply to every trial)."""

    optimizers: tuple[OptimizerName, ...] = ("adam", "muon")
    """Adam sweeps --lr only; Muon sweeps --lr (its Adam part) × --muon-lr."""
    search: Literal["grid", "random"] = "grid"
    """grid: --grid points, log-spaced over the ranges; random: --random-trials log-uniform points."""
    grid: str = "3x3"
    """NxM: N values of --lr × M values of --muon-lr, log-spaced over the ranges (N alone: M = N)."""
    random_trials: int = 8
    """With --search random: log-uniform points per optimizer."""
    lr_range: tuple[float, float] = (1e-4, 1e-2)
    """Adam learning rates swept (inclusive, log scale)."""
    muon_lr_range: tuple[float, float] = (1e-2, 1.0)
    """Muon learning rates swept (inclusive, log scale)."""
    sweep_seed: int = 0
    """Seed of the random search's points (the fit itself uses --seed)."""
    cpus_per_trial: float = 1.0
    """Ray CPUs per trial; torch uses that many threads in the trial."""
    gpus_per_trial: float = 0.0
    """Ray GPUs per trial (fractions share a GPU); use with --device cuda."""
    max_concurrent: int | None = None
    """Trials running at once; default: as many as the resources allow (one per core locally)."""
    address: str | None = None
    """Attach to a running Ray cluster (e.g. auto or ray://head:10001); default: a local runtime."""
    num_cpus: int | None = None
    """CPUs of the local runtime; default: every core of this machine."""
    asha: bool = False
    """Stop hopeless trials early with ASHA (decided at every --eval-every step)."""
    grace_steps: int | None = None
    """ASHA: steps every trial runs before it may be stopped; default: a quarter of --steps."""
    reduction_factor: int = 3
    """ASHA: keep the best 1/reduction_factor of trials at each rung."""

    def check(self) -> None:
        """Refuse bad values with a one-line message before Ray starts."""
        if not self.optimizers:
            raise ValueError("--optimizers needs at least one of adam, muon")
        for flag, (lo, hi) in (("--lr-range", self.lr_range), ("--muon-lr-range", self.muon_lr_range)):
            if not (0 < lo <= hi and math.isfinite(hi)):
                raise ValueError(f"{flag} must be two finite values 0 < LO <= HI, got {lo} {hi}")
        n_lr, n_muon = self.grid_shape()
        if self.random_trials < 1:
            raise ValueError(f"--random-trials must be >= 1, got {self.random_trials}")
        if self.search == "grid":
            trials = n_lr * (("adam" in self.optimizers) + n_muon * ("muon" in self.optimizers))
            flag = f"--grid {self.grid} ({trials} trials)"
        else:
            trials = self.random_trials * len(self.optimizers)
            flag = f"--random-trials {self.random_trials} ({trials} trials)"
        check_fits(trials * TRIAL_BYTES, flag, "plan fewer trials")
        if not self.cpus_per_trial > 0 or self.gpus_per_trial < 0:
            raise ValueError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise ValueError(f"--max-concurrent must be >= 1, got {self.max_concurrent}")
        if self.num_cpus is not None and self.num_cpus < 1:
            raise ValueError(f"--num-cpus must be >= 1, got {self.num_cpus}")
        if self.grace_steps is not None and self.grace_steps < 1:
            raise ValueError(f"--grace-steps must be >= 1, got {self.grace_steps}")
        if self.reduction_factor < 2:
            raise ValueError(f"--reduction-factor must be >= 2, got {self.reduction_factor}")

    def grid_shape(self) -> tuple[int, int]:
        """(number of --lr values, number of --muon-lr values) from ``--grid``."""
        match = re.fullmatch(r"\s*(\d+)\s*(?:[xX×]\s*(\d+))?\s*", self.grid)
        if not match or int(match[1]) < 1 or (match[2] is not None and int(match[2]) < 1):
            raise ValueError(f"--grid must look like 3x3 (lr values x muon-lr values), got {self.grid!r}")
        n = int(match[1])
        return n, int(match[2]) if match[2] is not None else n


def log_values(lo: float, hi: float, n: int) -> list[float]:
    """``n`` log-spaced values from ``lo`` to ``hi`` inclusive; one value is their geometric mean."""
    values = [math.sqrt(lo * hi)] if n == 1 else np.geomspace(lo, hi, n)
    return [float(f"{v:.12g}") for v in values]  # 0.1, not 0.09999999999999999, in tables and presets


def trial_points(cfg: SweepConfig) -> list[dict]:
    """Every trial's ``{"index", "optimizer", "lr", "muon_lr"}`` (``muon_lr`` None for Adam).

    Points are drawn here, not by a Ray searcher, so the Adam row and the Muon grid are one list
    that Ray runs as a grid on one machine or a cluster alike, and a random search is reproducible.
    """
    points: list[tuple[str, float, float | None]] = []
    if cfg.search == "grid":
        n_lr, n_muon = cfg.grid_shape()
        lrs, muon_lrs = log_values(*cfg.lr_range, n_lr), log_values(*cfg.muon_lr_range, n_muon)
        for opt in cfg.optimizers:
            if opt == "adam":
                points += [("adam", lr, None) for lr in lrs]
            else:
                points += [("muon", lr, mlr) for mlr in muon_lrs for lr in lrs]
    else:
        rng = np.random.default_rng(cfg.sweep_seed)

        def draw(lo: float, hi: float) -> float:
            return float(np.exp(rng.uniform(math.log(lo), math.log(hi))))

        for opt in cfg.optimizers:
            for _ in range(cfg.random_trials):
                lr = draw(*cfg.lr_range)
                points.append((opt, lr, draw(*cfg.muon_lr_range) if opt == "muon" else None))
    return [{"index": i, "optimizer": o, "lr": lr, "muon_lr": m} for i, (o, lr, m) in enumerate(points)]
