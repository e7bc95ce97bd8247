"""Tuned learning rates: what our own sweeps found best per task and architecture, used as the
defaults of ``muon-fit`` and ``muon-sdf fit`` when no lr flag is given.

The table ships in the package (``assets/tuned_lrs.json``) and is written by
``scripts/tuned_lrs.py`` from the sweeps kept under ``docs/results/sweeps/``; every entry names the
sweeps that chose it. Each optimizer gets the values best for it: the Adam baseline its own best
``--lr``, Muon its best (``--muon-adam-lr``, ``--muon-lr``) pair, so a comparison with the
defaults is a comparison of tuned runs. A flag given on the command line always wins, and a
``--preset`` is a whole configuration that the table never touches. The sweeps run at the task's
default scale (``--profile cpu`` where a task has profiles), so the table applies there only: a
named profile of another scale (``muon-sdf fit --profile paper``) keeps its own lrs.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from muon_nerf.fit.task import TaskConfig

TUNED_PATH = Path(__file__).resolve().parent.parent / "assets" / "tuned_lrs.json"
TUNED_FORMAT = "muon-nerf-tuned-lrs/1"
TUNED_PROFILES = (None, "cpu")
"""The ``--profile`` values (None: none given) whose configs the table tunes: the sweeps' scale."""
TUNABLE = ("lr", "muon_lr", "muon_adam_lr")
"""The ``OptimConfig`` fields the table sets (each only where the command line did not)."""

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
    return {(row.task, row.arch): row for row in rows}


def with_tuned_lrs(cfg: T, task: str, given_flags: Callable[[], set[str]]) -> T:
    """``cfg`` with the table's lrs for ``task`` and its arch, except the fields of
    :data:`TUNABLE` that ``given_flags()`` says the command line set (asked only where a row
    exists: it parses the command line again). ``--lr`` alone keeps its meaning of the Adam lr of
    both optimizers, so it also holds back ``--muon-adam-lr``; an arch without a row keeps the
    task's defaults."""
    row = tuned_table().get((task, cfg.field.arch))
    if row is None:
        return cfg
    values = {"lr": row.adam_lr, "muon_lr": row.muon_lr, "muon_adam_lr": row.muon_adam_lr}
    given = given_flags()
    if "lr" in given:
        given = given | {"muon_adam_lr"}
    updates = {name: value for name, value in values.items() if name not in given}
    return dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, **updates))
