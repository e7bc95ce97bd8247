"""Parsing a task's command line: one tyro parse over the task's config, then its learning rates.

Flags are flat (``--arch``, ``--muon-lr``, ``--steps``) as in the paper's scripts; tyro also
accepts the underscore spellings (``--muon_lr``) those scripts used. Three options choose what the
parse starts from (``StartFrom``, listed in ``--help`` with the rest):

- ``--profile NAME`` one of the task's named default sets (``muon-sdf fit --profile paper``);
- ``--preset FILE`` a JSON file of the task's whole config, as ``muon-sweep`` writes it;
- ``--resume FOLDER`` the config an interrupted run saved, to finish it (``parse_run``).

Its values are the parse's defaults, so flags given with it still win (the three are looked up in
the arguments first, with ``argparse``, because they choose those defaults; the one tyro parse
then reads them with the rest). The lrs stay out of those defaults: after the parse, the lrs the
flags left unset come from it, else from the tuned table, else from the task's defaults
(``runs/tuned.py``); every fit prints where each came from.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import tyro

from muon_nerf.fit.errors import InputError
from muon_nerf.runs.presets import load_preset, merge_config
from muon_nerf.runs.state import Progress, refused_changes
from muon_nerf.runs.task import Lrs, TaskConfig
from muon_nerf.runs.tuned import TUNED_PROFILES, resolve_lrs

TYRO_CONFIG = (tyro.conf.OmitArgPrefixes,)
T = TypeVar("T", bound=TaskConfig)
C = TypeVar("C")
S = TypeVar("S", bound="StartFrom")

SIDES = "│ "
"""The sides of tyro's error box (drawn with ``─`` rules between its sections) and its padding."""


def tyro_error_line(text: str) -> str:
    """The message of tyro's error box (what it printed to stderr before exiting 2) as one line:
    the first section after the title, which names the flag and what it expected, without the
    box's borders, the help section or line wrapping."""
    lines = [line.strip().strip(SIDES) for line in text.splitlines()]
    body: list[str] = []
    for line in [line for line in lines if line][1:]:  # the first line is the box's title
        if set(line) <= set("─-"):
            if body:
                break  # the rule before the helptext section
            continue  # the rule under the title (boxes drawn without UTF-8)
        body.append(line)
    return " ".join(" ".join(body).split()) or "invalid command line"


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


@dataclass
class StartFrom:
    """What the defaults start from, instead of the task's own (one at most); flags given with it
    still win."""

    preset: Path | None = None
    """A JSON file of the task's whole config, as muon-sweep writes one (preset-<optimizer>.json)."""
    profile: str | None = None
    """One of the task's named default sets (muon-sdf fit: cpu, paper)."""


@dataclass
class ResumeFrom(StartFrom):
    """What the defaults start from, instead of the task's own (one at most); flags given with it
    still win (with --resume, only those no started fit has used)."""

    resume: Path | None = None
    """Finish an interrupted run (its <output-dir>/<task>/<run>.incomplete folder) from its last checkpoint.
    It keeps the settings the run was started with."""


def read_start(kind: type[S], args: list[str]) -> S:
    """The ``StartFrom`` options in ``args``. Read before tyro's parse, as they choose its
    defaults (that parse reads, checks and lists them too); a flag without its value is left
    to it, which reports it."""
    hints = typing.get_type_hints(kind)
    reader = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False)
    for f in dataclasses.fields(kind):
        reader.add_argument(f"--{f.name}", type=typing.get_args(hints[f.name])[0])
    try:
        known, _ = reader.parse_known_args(args)
    except argparse.ArgumentError:
        return kind()
    return kind(**vars(known))


def without_lrs(cfg: T) -> T:
    """``cfg`` with its lrs unset: what a parse starts from, so the lrs it holds were flags."""
    optim = dataclasses.replace(cfg.optim, lr=None, muon_lr=None, muon_adam_lr=None)
    return dataclasses.replace(cfg, optim=optim)


@dataclass
class StartingConfig:
    """The config a command line starts from and the name of that source."""

    config: TaskConfig
    source: str | None
    """Named in the lr provenance line (None: the task's own defaults)."""
    tuned: bool
    """Whether the tuned table applies (the sweeps' scale)."""
    progress: Progress | None = None
    """The run ``--resume`` finishes."""


def start_config(task: str, cls: type[TaskConfig], start: StartFrom) -> StartingConfig:
    """The config ``--preset``/``--profile``/``--resume`` ask for (the task's defaults: none)."""
    resume = getattr(start, "resume", None)
    if resume is not None:
        if start.preset is not None or start.profile is not None:
            raise InputError("--resume continues a run with its own settings: drop --preset/--profile")
        progress = Progress.open(Path(resume))
        if progress.record["task"] != task:
            raise InputError(f"{progress.folder} is a {progress.record['task']} run, not {task}")
        saved = merge_config(cls(), progress.config, str(progress.folder / "progress.json"))
        return StartingConfig(saved, "resumed run", tuned=False, progress=progress)
    if start.preset is not None:
        if start.profile is not None:
            raise InputError("give --profile or --preset, not both (a preset holds a whole config)")
        return StartingConfig(load_preset(start.preset, task, cls), "preset", tuned=True)
    if start.profile is None:
        return StartingConfig(cls(), None, tuned=True)
    profiles = cls.profiles()
    if start.profile not in profiles:
        choices = ", ".join(profiles) or "none for this task"
        raise InputError(f"--profile must be one of: {choices}; got {start.profile!r}")
    tuned = start.profile in TUNED_PROFILES
    return StartingConfig(profiles[start.profile](), f"profile {start.profile}", tuned)


def command_class(cls: type[TaskConfig], kind: type[StartFrom], extra: dict[str, type]) -> type:
    """The dataclass tyro parses: the task's config, ``extra`` configs (``muon-sweep``'s) and the
    ``StartFrom`` options, all flat (one flag list); described as the task is. The task's and the
    start's own flags are listed as the command's, their nested sections under their own names."""
    top = {"task": cls, "start": kind}
    fields = [
        (
            name,
            Annotated[typ, tyro.conf.arg(name="")] if name in top else typ,
            dataclasses.field(default_factory=typ),
        )
        for name, typ in {"task": cls, **extra, "start": kind}.items()
    ]
    command = dataclasses.make_dataclass(f"{cls.__name__}Command", fields)
    command.__doc__ = cls.__doc__
    return command


def parse_command(
    task: str,
    cls: type[T],
    args: list[str],
    prog: str,
    description: str | None = None,
    extra: dict[str, type] | None = None,
    resume: bool = False,
) -> tuple[T, dict[str, Any], Progress | None]:
    """The task config of ``args`` with every lr resolved, the ``extra`` configs and, with
    ``resume`` and ``--resume FOLDER``, the run to finish (flags given with it may change only
    what no started fit has used, e.g. ``--muon-lr`` when only the Adam half of a comparison
    finished)."""
    extra = extra or {}
    kind = ResumeFrom if resume else StartFrom
    start = start_config(task, cls, read_start(kind, args))
    command = command_class(cls, kind, extra)
    default = command(task=without_lrs(start.config), **{name: typ() for name, typ in extra.items()})
    parsed = cli(command, args, prog, default=default, description=description)
    known = None if start.source is None else (start.source, Lrs.of(start.config.optim))
    cfg = resolve_lrs(parsed.task, task, Lrs.of(parsed.task.optim), known, start.tuned)
    if start.progress is not None:
        refused = refused_changes(start.progress.config, dataclasses.asdict(cfg), start.progress.started())
        if refused:
            raise InputError(
                f"--resume finishes the run as it was started: cannot change {', '.join(refused)} "
                f"(started: {', '.join(start.progress.started())})"
            )
    return cfg, {name: getattr(parsed, name) for name in extra}, start.progress


def parse_task(task: str, cls: type[T], args: list[str], prog: str, description: str | None = None) -> T:
    """The task config of ``args`` (see the module docstring), every lr resolved."""
    return parse_command(task, cls, args, prog, description)[0]


def parse_run(
    task: str, cls: type[T], args: list[str], prog: str, description: str
) -> tuple[T, Progress | None]:
    """``parse_task`` that also takes ``--resume FOLDER``: then also the run's progress."""
    cfg, _, progress = parse_command(task, cls, args, prog, description, resume=True)
    return cfg, progress
