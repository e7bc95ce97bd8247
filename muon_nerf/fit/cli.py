"""Parsing a task's command line: tyro over the task's config, with ``--profile`` and ``--preset``.

Flags are flat (``--arch``, ``--muon-lr``, ``--steps``) as in the paper's scripts; tyro also
accepts the underscore spellings (``--muon_lr``) those scripts used.

- ``--profile NAME`` picks one of the task's named default sets (``muon-sdf fit --profile paper``).
- ``--preset FILE`` starts from a JSON file of the task's whole config, as ``muon-sweep`` writes it.
- ``--resume FOLDER`` finishes an interrupted run with the config it saved (``parse_run``).

Either only replaces the defaults: flags given with it still win. Without ``--preset`` and at the
tuned scale (no ``--profile``, or ``cpu``), the learning rates not given as flags are the tuned
ones of the task and arch (``fit/tuned.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import re
import sys
from pathlib import Path
from typing import Any, TypeVar

import tyro

from muon_nerf.fit.errors import InputError
from muon_nerf.fit.presets import load_preset, merge_config, pop_option
from muon_nerf.fit.progress import Progress, refused_changes
from muon_nerf.fit.task import TaskConfig
from muon_nerf.fit.tuned import TUNABLE, TUNED_PROFILES, with_tuned_lrs

TYRO_CONFIG = (tyro.conf.OmitArgPrefixes,)
T = TypeVar("T", bound=TaskConfig)
C = TypeVar("C")

BOX = re.compile(r"[╭╮╰╯│─┌┐└┘├┤]+")


def tyro_error_line(text: str) -> str:
    """The message of tyro's error box as one line: the box's title and first section (which
    names the flag and what it expected), without borders, help text or line wrapping."""
    lines = []
    for raw in text.splitlines():
        if set(raw.strip()) <= set("│─ ") and "─" in raw:
            break  # the separator before the helptext section
        line = BOX.sub(" ", raw).strip()
        if line:
            lines.append(line)
    title, *body = lines or ["invalid command line"]
    message = " ".join(body) if body else title
    return " ".join(message.split())


def cli(cls: type[C], args: list[str], prog: str, **kwargs: Any) -> C:
    """``tyro.cli`` whose parse errors are one line, ``error: … (see PROG --help)``, exit 2;
    ``--help`` still prints tyro's help (exit 0)."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            parsed = tyro.cli(cls, args=args, prog=prog, config=TYRO_CONFIG, **kwargs)
    except SystemExit as stop:
        if stop.code in (0, None):
            sys.stderr.write(captured.getvalue())
            raise
        print(f"error: {tyro_error_line(captured.getvalue())} (see {prog} --help)", file=sys.stderr)
        raise SystemExit(2) from None
    sys.stderr.write(captured.getvalue())  # tyro's warnings, if any, still reach the user
    return parsed


def task_default(task: str, cls: type[T], args: list[str]) -> tuple[list[str], T | None]:
    """Remove ``--profile``/``--preset`` from ``args`` and build the default they ask for."""
    args, profile = pop_option(args, "--profile")
    args, preset = pop_option(args, "--preset")
    return args, named_default(task, cls, profile, preset)


def named_default(task: str, cls: type[T], profile: str | None, preset: str | None) -> T | None:
    """The default config a ``--profile`` name or a ``--preset`` file asks for (None: neither)."""
    profiles = cls.profiles()
    if profile is not None and preset is not None:
        raise InputError("give --profile or --preset, not both (a preset holds a whole config)")
    if preset is not None:
        return load_preset(preset, task, cls)
    if profile is None:
        return None
    if profile not in profiles:
        choices = ", ".join(profiles) or "none for this task"
        raise InputError(f"--profile must be one of: {choices}; got {profile!r}")
    return profiles[profile]()


def parse_task(task: str, cls: type[T], args: list[str], prog: str, description: str | None = None) -> T:
    """The task config from ``args`` (see the module docstring); without ``--preset`` and at the
    tuned scale (no ``--profile``, or ``cpu``), the lrs not given on the command line are the
    tuned ones for the task and arch (``fit/tuned.py``)."""
    args, profile = pop_option(args, "--profile")
    args, preset = pop_option(args, "--preset")
    default = named_default(task, cls, profile, preset)
    cfg = cli(cls, args, prog, default=default, description=description)
    if preset is not None or profile not in TUNED_PROFILES:
        return cfg
    return with_tuned_lrs(cfg, task, lambda: given_lr_flags(cls, args, prog, default))


def given_lr_flags(cls: type[T], args: list[str], prog: str, default: T | None) -> set[str]:
    """Which of the tunable lr fields ``args`` set: parsed again over a default holding NaN in
    each, a field still NaN was not given (whatever spelling tyro accepted for it)."""
    base = default if default is not None else cls()
    unset = dataclasses.replace(base.optim, **{name: math.nan for name in TUNABLE})
    parsed = cli(cls, args, prog, default=dataclasses.replace(base, optim=unset))
    return {name for name in TUNABLE if not math.isnan(getattr(parsed.optim, name))}


RESUME_HELP = (
    "--resume FOLDER finishes an interrupted run (its outputs/<task>/<run>.incomplete folder) "
    "from its last checkpoint, with the settings it was started with."
)


def parse_run(
    task: str, cls: type[T], args: list[str], prog: str, description: str
) -> tuple[T, Progress | None]:
    """``parse_task``, or with ``--resume FOLDER`` the config saved in that unfinished run (flags
    given with it may change only what no started fit has used, e.g. ``--muon-lr`` when only the
    Adam half of a comparison finished) and the run's progress."""
    args, folder = pop_option(list(args), "--resume")
    description = f"{description} {RESUME_HELP}"
    if folder is None:
        return parse_task(task, cls, args, prog, description), None
    if any(a.split("=")[0] in ("--preset", "--profile") for a in args):
        raise InputError("--resume continues a run with its own settings: drop --preset/--profile")
    progress = Progress.open(Path(folder))
    if progress.record["task"] != task:
        raise InputError(f"{progress.folder} is a {progress.record['task']} run, not {task}")
    saved = merge_config(cls(), progress.config, str(progress.folder / "progress.json"))
    cfg = cli(cls, args, prog, default=saved, description=description)
    refused = refused_changes(progress.config, dataclasses.asdict(cfg), progress.started())
    if refused:
        raise InputError(
            f"--resume finishes the run as it was started: cannot change {', '.join(refused)} "
            f"(started: {', '.join(progress.started())})"
        )
    return cfg, progress
