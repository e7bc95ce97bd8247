"""``muon-fit <task>``: one tyro CLI over the 2D tasks (image, audio, CT, SISR) of the task registry.

``--preset FILE`` (written by ``muon-sweep``) or ``--profile NAME`` replace the defaults; flags
given with them still win (``muon_nerf.runs.cli``). ``--resume FOLDER`` finishes an interrupted run.
"""

from __future__ import annotations

import sys

from muon_nerf.fit.errors import dispatch_task, run_cli
from muon_nerf.runs.cli import parse_run, parse_task
from muon_nerf.runs.run import execute
from muon_nerf.runs.task import TaskConfig
from muon_nerf.tasks import FIT_TASKS, task_config


def parse(task: str, args: list[str] | None = None) -> TaskConfig:
    """Parse one task's flags (``--resume`` is ``main``'s)."""
    args = sys.argv[1:] if args is None else list(args)
    return parse_task(task, task_config(task), args, prog=f"muon-fit {task}")


def main(task: str, args: list[str] | None = None) -> None:
    """``muon-fit TASK [FLAGS]`` (what ``scripts/fit_<task>.py`` runs)."""

    def body() -> None:
        prog = f"muon-fit {task}"
        args_ = sys.argv[1:] if args is None else list(args)
        description = f"{prog}: fit an INR to the {task} signal."
        cfg, progress = parse_run(task, task_config(task), args_, prog, description)
        execute(cfg, progress=progress, command=prog)

    run_cli(body)


FRONT_ENDS = """\
the other front ends, each with its pip extra (pip install -e ".[all]" brings them all):
  muon-sdf fit|extract|eval    signed distance fields of meshes            [sdf]
  muon-sweep <task>            learning-rate sweeps on Ray Tune            [sweep]
  ns-train muon-nerf|muon-ngp  NeRF: our methods in nerfstudio's ns-*      [nerf]
without its extra, muon-sdf and muon-sweep say which to install; ns-train is nerfstudio's own
command, so it is missing altogether until the [nerf] extra brings nerfstudio."""


def entrypoint() -> None:
    dispatch_task("muon-fit", FIT_TASKS, main, usage="[--preset FILE | --profile NAME] ", epilog=FRONT_ENDS)
