"""Learning rates: where each unset one comes from, and the tuned table, one of those places.

A task command's config leaves its lrs None until its command line is parsed (once, by tyro,
``runs/cli.py``); then :func:`resolve_lrs` fills each from the first level that sets it:

1. the flag (``--lr``, ``--muon-lr``, ``--muon-adam-lr``);
2. the config the command started from: ``--preset FILE``, ``--profile NAME``, or the run
   ``--resume`` finishes;
3. the tuned table, at the sweeps' scale only (no ``--profile``, or ``cpu``): what our own sweeps
   found best for the task and ``--arch``;
4. the task's default (``TaskConfig.default_lrs``, declared once per task);
5. the optimizer's own default (``OptimConfig()``'s: ``ADAM_LR``, ``MUON_LR``).

``--lr`` keeps its meaning of the Adam lr of both optimizers: the Adam part of a Muon run is
``--muon-adam-lr`` from the first level that sets it *or* ``--lr`` (None then: "= --lr"). Every
fit prints the lrs with their sources (``learning rates: …``).

The table ships in the package (``assets/tuned_lrs.json``) and is written by
``scripts/tuned_lrs.py`` from the sweeps kept under ``docs/results/sweeps/``; every entry names the
sweeps that chose it. Each optimizer gets the values best for it: the Adam baseline its own best
``--lr``, Muon its best (``--muon-adam-lr``, ``--muon-lr``) pair, so a comparison with the
defaults is a comparison of tuned runs. The sweeps run at the task's default scale, so a named
profile of another scale (``muon-sdf fit --profile paper``) skips the table.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from muon_nerf.optim import OptimConfig
from muon_nerf.runs.task import Lrs, TaskConfig

TUNED_PATH = Path(__file__).resolve().parent.parent / "assets" / "tuned_lrs.json"
TUNED_FORMAT = "muon-nerf-tuned-lrs/1"
TUNED_PROFILES = (None, "cpu")
"""The ``--profile`` values (None: none given) whose configs the table tunes: the sweeps' scale."""
OPTIMIZER_DEFAULT = Lrs.of(OptimConfig())
"""The last level: the optimizer's own defaults (``muon_nerf.optim.muon.DEFAULTS``)."""

T = TypeVar("T", bound=TaskConfig)


@dataclass(frozen=True)
class TunedLrs:
    """One (task, arch) row: the best lr of Adam-only runs and the best pair of Muon runs."""

    task: str
    arch: str
    adam_lr: float
    """--lr of the Adam baseline."""
    muon_adam_lr: float
    """Adam lr of the parameters Muon leaves to Adam, in Muon runs (--muon-adam-lr)."""
    muon_lr: float
    """--muon-lr."""
    sources: tuple[str, ...]
    """The sweep files (relative to the repository) whose mean metric chose these values."""


@functools.cache
def tuned_table(path: Path = TUNED_PATH) -> dict[tuple[str, str], TunedLrs]:
    """Every row of the shipped table, by (task, arch)."""
    data = json.loads(path.read_text())
    if data.get("format") != TUNED_FORMAT:
        raise ValueError(f'{path} is not a tuned-lr table (expected "format": "{TUNED_FORMAT}")')
    rows = [TunedLrs(**{**row, "sources": tuple(row["sources"])}) for row in data["rows"]]
    for row in rows:
        lrs = (row.adam_lr, row.muon_adam_lr, row.muon_lr)
        if not all(isinstance(lr, float | int) and math.isfinite(lr) and lr > 0 for lr in lrs):
            raise ValueError(f"{path}: row {row.task}/{row.arch} has an lr that is not a positive number")
    return {(row.task, row.arch): row for row in rows}


def tuned_lrs(task: str, arch: str, path: Path = TUNED_PATH) -> Lrs | None:
    """The row for ``task`` and ``arch`` of the table at ``path`` (the shipped one unless a
    benchmark tries a freshly written one) as flags, or None where no sweep tuned it."""
    row = tuned_table(path).get((task, arch))
    return None if row is None else Lrs(row.adam_lr, row.muon_lr, row.muon_adam_lr)


def resolve_lrs(cfg: T, task: str, given: Lrs, start: tuple[str, Lrs] | None = None, tuned: bool = True) -> T:
    """``cfg`` (of ``task``) with every lr set, each from the first level that sets it (the module
    docstring): ``given`` (the flags), ``start`` (a ``(name, lrs)`` of the preset, profile or resumed run the
    command started from), the tuned row of the task and arch (when ``tuned``), the task's
    default, the optimizer's. Records each one's source in ``cfg.optim.lr_sources``."""
    levels = [("flag", given), *([start] if start is not None else [])]
    row = tuned_lrs(task, cfg.field.arch) if tuned else None
    if row is not None:
        levels.append((f"tuned: {task}/{cfg.field.arch}", row))
    levels += [("task default", type(cfg).default_lrs), ("optimizer default", OPTIMIZER_DEFAULT)]
    values, sources = {}, {}
    for name in ("lr", "muon_lr"):
        sources[name], values[name] = next(
            (source, getattr(lrs, name)) for source, lrs in levels if getattr(lrs, name) is not None
        )
    # the first level that sets --lr or --muon-adam-lr decides the Adam part of Muon runs
    source, level = next((s, lrs) for s, lrs in levels if lrs.lr is not None or lrs.muon_adam_lr is not None)
    values["muon_adam_lr"] = level.muon_adam_lr
    sources["muon_adam_lr"] = source if level.muon_adam_lr is not None else f"= --lr, {source}"
    optim = dataclasses.replace(cfg.optim, **values)
    optim.lr_sources = sources
    return dataclasses.replace(cfg, optim=optim)
