"""Parsing a task's command line: tyro over the task's config, with ``--profile`` and ``--preset``.

Flags are flat (``--arch``, ``--muon-lr``, ``--steps``) as in the paper's scripts; tyro also
accepts the underscore spellings (``--muon_lr``) those scripts used.

- ``--profile NAME`` picks one of the task's named default sets (``muon-sdf fit --profile paper``).
- ``--preset FILE`` starts from a JSON file of the task's whole config, as ``muon-sweep`` writes it.

Either only replaces the defaults: flags given with it still win.
"""

from __future__ import annotations

from typing import TypeVar

import tyro

from muon_nerf.fit.errors import InputError
from muon_nerf.fit.presets import load_preset, pop_option
from muon_nerf.fit.task import TaskConfig

TYRO_CONFIG = (tyro.conf.OmitArgPrefixes,)
T = TypeVar("T", bound=TaskConfig)


def task_default(task: str, cls: type[T], args: list[str]) -> tuple[list[str], T | None]:
    """Remove ``--profile``/``--preset`` from ``args`` and build the default they ask for."""
    args, profile = pop_option(args, "--profile")
    args, preset = pop_option(args, "--preset")
    profiles = cls.profiles()
    if profile is not None and preset is not None:
        raise InputError("give --profile or --preset, not both (a preset holds a whole config)")
    if preset is not None:
        return args, load_preset(preset, task, cls)
    if profile is None:
        return args, None
    if profile not in profiles:
        choices = ", ".join(profiles) or "none for this task"
        raise InputError(f"--profile must be one of: {choices}; got {profile!r}")
    return args, profiles[profile]()


def parse_task(task: str, cls: type[T], args: list[str], prog: str, description: str | None = None) -> T:
    """The task config from ``args`` (see the module docstring)."""
    args, default = task_default(task, cls, args)
    return tyro.cli(cls, args=args, default=default, config=TYRO_CONFIG, prog=prog, description=description)
