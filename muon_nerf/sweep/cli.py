"""``muon-sweep <task> [task flags] [sweep flags]``: the task's own ``muon-fit`` flags (flat, as
``--arch``, ``--steps``, ``--image``) plus the sweep's (``--grid 3x3``, ``--lr-range``, ``--asha``…).

``--optimizer``, ``--lr``, ``--muon-lr`` and ``--compare`` are set per trial by the sweep.
``--preset FILE`` starts from a preset, as with ``muon-fit``.
"""

from __future__ import annotations

import dataclasses
import sys

import tyro

from muon_nerf.errors import InputError, dispatch_task, run_cli
from muon_nerf.presets import load_preset, pop_preset
from muon_nerf.signals.cli import TYRO_CONFIG, all_tasks
from muon_nerf.signals.run import TaskConfig
from muon_nerf.sweep.config import SweepConfig


def command_class(task_cls: type[TaskConfig]) -> type:
    """A dataclass holding the task's config and the sweep's, so tyro gives one flat flag list."""
    cls = dataclasses.make_dataclass(
        f"{task_cls.__name__}Sweep",
        [
            ("task", task_cls, dataclasses.field(default_factory=task_cls)),
            ("sweep", SweepConfig, dataclasses.field(default_factory=SweepConfig)),
        ],
    )
    cls.__doc__ = (
        f"Sweep --lr × --muon-lr for the {task_cls.__name__} task on Ray Tune: every trial is a "
        "muon-fit run; writes a table of trials, a preset per optimizer and a heat map."
    )
    return cls


def parse(task: str, args: list[str] | None = None) -> tuple[TaskConfig, SweepConfig]:
    tasks = all_tasks()
    args, preset = pop_preset(sys.argv[1:] if args is None else list(args))
    cls = command_class(tasks[task])
    default = cls(task=load_preset(preset, task, tasks[task]), sweep=SweepConfig()) if preset else None
    cmd = tyro.cli(cls, args=args, default=default, config=TYRO_CONFIG, prog=f"muon-sweep {task}")
    return cmd.task, cmd.sweep


def main(task: str, args: list[str] | None = None):
    def body():
        base, cfg = parse(task, args)
        try:
            from muon_nerf.sweep.runner import run_sweep
        except ImportError as err:
            raise InputError(f"muon-sweep needs Ray Tune ({err}): pip install 'muon-nerf[sweep]'") from None
        return run_sweep(task, base, cfg)

    return run_cli(body)


def entrypoint() -> None:
    dispatch_task("muon-sweep", all_tasks(), main, usage="[--preset FILE] ")
