"""``muon-sweep <task> [task flags] [sweep flags]``: the task's own flags (flat, as ``--arch``,
``--steps``, ``--image``) plus the sweep's (``--grid 3x3``, ``--lr-range``, ``--asha``…).

``--optimizer``, ``--lr``, ``--muon-lr`` and ``--compare`` are set per trial by the sweep.
``--preset FILE`` or ``--profile NAME`` start from a preset or a named profile, as with the
task's own command.
"""

from __future__ import annotations

import atexit
import os
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


def _end_now(status: list[int]) -> None:
    """The last exit handler: once Ray was loaded, end the process with the command's status.

    A stop that lands in the middle of ``ray.init`` leaves Ray's native threads running after
    ``ray.shutdown()``, and they crash the interpreter's own teardown (a segfault after the
    command's line, its cleanup and every exit handler have run), so a sweep stopped by Ctrl-C
    would end with a crash's status instead of 130. Nothing is left to do by then but flush."""
    if "ray" not in sys.modules:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(status[0])


def entrypoint() -> None:
    status = [1]  # an uncaught error: Python's own status
    atexit.register(_end_now, status)  # registered before Ray is imported: runs after Ray's own
    try:
        dispatch_task("muon-sweep", tuple(TASKS), main, usage="[--preset FILE | --profile NAME] ")
        status[0] = 0
    except SystemExit as stop:
        status[0] = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
        raise
