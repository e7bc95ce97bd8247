"""What every fitting task is configured by: the field, the optimizer, the schedule and the run.

Front ends subclass ``TaskConfig`` with their signal's own config and defaults; they nest these
configs, never re-declare them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from muon_nerf.fields import FieldConfig
from muon_nerf.fit.errors import InputError
from muon_nerf.fit.loop import FitConfig
from muon_nerf.fit.signal import Signal
from muon_nerf.optim import OptimConfig
from muon_nerf.runs.io import check_run_name


@dataclass(frozen=True)
class Lrs:
    """Learning rates as the flags name them; None: not set at this level (a task's defaults, a
    tuned row, a preset, the command line), so a lower level decides (``runs/tuned.py``)."""

    lr: float | None = None
    """--lr: Adam's lr (and the Adam part of Muon runs where --muon-adam-lr is not set)."""
    muon_lr: float | None = None
    """--muon-lr."""
    muon_adam_lr: float | None = None
    """--muon-adam-lr."""

    @classmethod
    def of(cls, optim: OptimConfig) -> Lrs:
        return cls(optim.lr, optim.muon_lr, optim.muon_adam_lr)


def unset_lrs() -> OptimConfig:
    """The optimizer config every task config starts from: its lrs unset (None), until the task's
    command resolves them after its parse (``runs/tuned.py``)."""
    return OptimConfig(lr=None, muon_lr=None, muon_adam_lr=None)


@dataclass
class TaskConfig:
    """Flags common to every fitting task (subclasses add the signal's own and set defaults).

    Every subclass redeclares ``data`` with its signal's config (``--image``, ``--audio``,
    ``--mesh``…). It is declared first here because a redeclared dataclass field keeps its base
    class's place in the field order, which is the order tyro lists flags in: so each task's own
    flags come before the shared ``field``/``optim``/``fit`` ones in ``--help``, whatever the order
    of the subclass's body. (``kw_only`` would not do it: it reorders ``__init__`` only.) No
    attribute docstring on ``data``: it would replace each signal config's own docstring as the
    description of its ``--help`` section.
    """

    data: Any = None
    field: FieldConfig = dataclasses.field(default_factory=FieldConfig)
    optim: OptimConfig = dataclasses.field(default_factory=unset_lrs)
    fit: FitConfig = dataclasses.field(default_factory=FitConfig)
    compare: bool = False
    """Fit the same field with Adam and with Muon; print a table and write one figure."""
    output_dir: Path = Path("outputs")
    """Folder that holds every run; a run is written to <output-dir>/<task>/<run-name>/."""
    run_name: str | None = None
    """Folder name under <output-dir>/<task>/; default: a timestamp.
    An existing run is never replaced unless --overwrite is given."""
    overwrite: bool = False
    """Replace an existing run of the same --run-name (atomically, once the new run is complete)."""
    print_split: bool = False
    """Print which tensor goes to Muon and which to Adam, with shapes."""

    default_lrs: ClassVar[Lrs] = Lrs()
    """The task's default lrs: its only declaration of them, used where no flag, preset, profile
    or tuned row sets one (``runs/tuned.py``); what it leaves unset is the optimizer's own default
    (``OptimConfig()``'s). The config's lr fields stay None until then (``unset_lrs``)."""

    def signal(self) -> Signal:
        raise NotImplementedError

    @classmethod
    def profiles(cls) -> dict[str, Callable[[], TaskConfig]]:
        """Named default sets for ``--profile`` (e.g. ``cpu``, ``paper``); none by default."""
        return {}

    def check(self, device: bool = True) -> None:
        """Refuse bad values with one line before any work; ``device=False`` skips checking that
        --device exists here (a sweep on a cluster runs its fits elsewhere)."""
        self.field.check()
        self.optim.check()
        self.fit.check(device)
        check_finite(self.data)
        if self.run_name is not None:
            check_run_name(self.run_name, self.output_dir)


def check_finite(config: Any) -> None:
    """Refuse NaN or ±inf in any float of a signal's config (nested configs too), naming the flag
    as the command line spells it (flat: ``--coordinate-scale``): no signal setting means anything
    infinite, and one would fail late (an overflow, a NaN loss) instead of here."""
    if not dataclasses.is_dataclass(config):
        return
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"--{f.name.replace('_', '-')} must be a finite number, got {value}")
        check_finite(value)
