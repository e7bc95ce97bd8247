"""``muon-sweep <task> [task flags] [sweep flags]``: the task's own flags (flat, as ``--arch``,
``--steps``, ``--image``) plus the sweep's (``--grid 3x3``, ``--lr-range``, ``--asha``…).

``--optimizer``, ``--lr``, ``--muon-lr`` and ``--compare`` are set per trial by the sweep.
``--preset FILE`` or ``--profile NAME`` start from a preset or a named profile, as with the
task's own command.
"""

from __future__ import annotations

import sys

from muon_nerf.fit.errors import dispatch_task, run_cli
from muon_nerf.runs.cli import parse_command
from muon_nerf.runs.task import TaskConfig
from muon_nerf.sweep.config import SweepConfig
from muon_nerf.tasks import EXTRA_MODULES, TASKS, require_extra, task_config


def parse(task: str, args: list[str] | None = None) -> tuple[TaskConfig, SweepConfig]:
    """The task's config (its lrs resolved as for the task's own command; each trial sets its
    own) and the sweep's, from one flat flag list."""
    task_cls = task_config(task)
    description = (
        f"Sweep --lr × --muon-lr for the {task_cls.__name__} task on Ray Tune: every trial is a "
        "fit of the task's own command; writes a table of trials, a preset per optimizer and a heat map."
    )
    args = sys.argv[1:] if args is None else list(args)
    base, extra, _ = parse_command(
        task, task_cls, args, f"muon-sweep {task}", description, extra={"sweep": SweepConfig}
    )
    return base, extra["sweep"]


def main(task: str, args: list[str] | None = None):
    def body():
        base, cfg = parse(task, args)
        require_extra("sweep", EXTRA_MODULES["sweep"], "muon-sweep")
        from muon_nerf.sweep.runner import run_sweep

        return run_sweep(task, base, cfg)

    return run_cli(body)


def entrypoint() -> None:
    dispatch_task("muon-sweep", tuple(TASKS), main, usage="[--preset FILE | --profile NAME] ")
