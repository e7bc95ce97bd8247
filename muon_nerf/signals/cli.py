"""``muon-fit <task>``: one tyro CLI over every signal's task config.

Flags are flat (``--arch``, ``--muon-lr``, ``--steps``) as in the paper's scripts; tyro also
accepts the underscore spellings (``--muon_lr``) those scripts used.
"""

from __future__ import annotations

import sys

import tyro

from muon_nerf.errors import dispatch_task, run_cli
from muon_nerf.presets import load_preset, pop_preset
from muon_nerf.signals.audio import AudioTask
from muon_nerf.signals.ct import CTTask
from muon_nerf.signals.image import ImageTask
from muon_nerf.signals.run import TaskConfig, execute
from muon_nerf.signals.sisr import SISRTask

TASKS: dict[str, type[TaskConfig]] = {"image": ImageTask, "audio": AudioTask, "ct": CTTask, "sisr": SISRTask}

TYRO_CONFIG = (tyro.conf.OmitArgPrefixes,)


def all_tasks() -> dict[str, type[TaskConfig]]:
    """Every fitting task: ``muon-fit``'s plus SDF (its own ``muon-sdf`` front end, same
    ``TaskConfig``), for tools that drive any task (sweeps, benchmarks)."""
    from muon_nerf.sdf.signal import SdfTask  # sdf builds on signals: imported only when asked

    return {**TASKS, "sdf": SdfTask}


def parse(task: str, args: list[str] | None = None, tasks: dict[str, type[TaskConfig]] = TASKS) -> TaskConfig:
    """Parse one task's flags (what ``scripts/fit_<task>.py`` uses). ``--preset FILE`` (written by
    ``muon-sweep``) replaces the defaults; flags given with it still override the preset."""
    args, preset = pop_preset(sys.argv[1:] if args is None else list(args))
    default = load_preset(preset, task, tasks[task]) if preset else None
    return tyro.cli(tasks[task], args=args, default=default, config=TYRO_CONFIG, prog=f"muon-fit {task}")


def main(task: str, args: list[str] | None = None) -> None:
    run_cli(lambda: execute(parse(task, args)))


def entrypoint() -> None:
    dispatch_task("muon-fit", TASKS, main, usage="[--preset FILE] ")
