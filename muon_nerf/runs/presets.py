"""Preset files: a task's whole configuration as JSON, read by the task's command with
``--preset FILE`` (``muon-fit <task>``, ``muon-sdf fit``, ``muon-sweep <task>``).

``muon-sweep`` writes one per optimizer (its best trial); any flag given with ``--preset`` still
overrides the preset's value, because the preset only replaces tyro's defaults (``runs/cli.py``).
Its learning rates rank below the flags' and above the tuned table's (``runs/tuned.py``). The
same typed merge restores a field's config from a checkpoint and a run's for ``--resume``.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from muon_nerf.fit.errors import InputError
from muon_nerf.runs.io import write_json

PRESET_FORMAT = "muon-nerf-preset/2"
RUN_ONLY = ("output_dir", "run_name", "overwrite", "compare", "print_split")
"""Fields that describe one run rather than a configuration (where it is written, whether it may
replace another): never saved in a preset, and refused in one, so a preset can never redirect or
replace a run; only the command line sets them."""
NOT_IN_PRESET = (*RUN_ONLY, "resume")
"""Keys a preset is refused for (``--resume`` is a command-line option, never a setting)."""
PRESET_KEYS = ("format", "task", "optimizer", "config", "source")
"""A preset file's own keys (what ``save_preset`` writes)."""

T = TypeVar("T")


def save_preset(path: Path, task: str, cfg: Any, optimizer: str, source: dict | None = None) -> None:
    """Write ``cfg`` (a task config dataclass) minus its run-only fields, with its provenance."""
    config = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in RUN_ONLY}
    config["optim"]["optimizer"] = optimizer
    write_json(
        path,
        {"format": PRESET_FORMAT, "task": task, "optimizer": optimizer, "config": config, "source": source},
    )


def load_preset(path: Path, task: str, cls: type[T]) -> T:
    """The task config ``cls()`` with every value the preset sets, each checked as strictly as
    the same flag on the command line (type, choices, ranges); refuses other tasks' presets and
    any run-only setting (``RUN_ONLY``: output folder, run name, ``overwrite``…)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"preset not found: {path}")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"cannot read preset {path}: {err}") from None
    if not isinstance(data, dict) or data.get("format") != PRESET_FORMAT:
        raise InputError(f'{path} is not a muon-nerf preset (expected "format": "{PRESET_FORMAT}")')
    if data.get("task") != task:
        raise InputError(f"preset {path} is for task {data.get('task')!r}, not {task!r}")
    config = data.get("config")
    config = {} if config is None else config
    for key in (*data, *(config if isinstance(config, dict) else ())):
        if key in NOT_IN_PRESET:
            raise InputError(
                f"preset {path} sets {key!r}: a preset never sets where a run goes or whether it "
                f"replaces one; give --{key.replace('_', '-')} on the command line"
            )
    unknown = sorted(set(data) - set(PRESET_KEYS))
    if unknown:
        raise InputError(
            f"{path}: unknown preset key(s) {', '.join(unknown)}; a preset has {', '.join(PRESET_KEYS)}"
        )
    cfg = merge_config(cls(), config, str(path))
    try:
        cfg.check(device=False)  # ranges, as for flags; the device is checked where the fit runs
    except ValueError as err:
        raise InputError(f"preset {path}: {err}") from None
    return cfg


def merge_config(default: T, values: dict, source: str) -> T:
    """``default`` with every value of the (JSON-loaded) dict ``values`` set, nested configs
    included; ``source`` names the file in error messages."""
    return _merge(default, values, source, "")


def _merge(default: Any, values: Any, path: str, where: str) -> Any:
    """``dataclasses.replace(default, **values)``, recursing into nested configs; every value is
    checked against its field's annotation (``_value``)."""
    if not isinstance(values, dict):
        raise InputError(f"{path}: {where.rstrip('.') or 'config'} must be an object, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(default) if f.init}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise InputError(
            f"{path}: unknown setting(s) {', '.join(where + k for k in unknown)} for {type(default).__name__}"
        )
    hints = typing.get_type_hints(type(default))
    changes = {}
    for name, value in values.items():
        current = getattr(default, name)
        if dataclasses.is_dataclass(current):
            changes[name] = _merge(current, value, path, f"{where}{name}.")
        else:
            changes[name] = _value(hints[name], value, path, where + name)
    return dataclasses.replace(default, **changes)


def _value(hint: Any, value: Any, path: str, name: str) -> Any:
    """The JSON ``value`` as a field annotated ``hint`` holds it (``Path`` from a string, tuples
    from lists, floats from integers), or ``InputError``: the checks tyro makes of a flag (the
    type, a ``Literal``'s choices, a tuple's length), with no conversion between types."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            raise InputError(f"{path}: {name} cannot be null")
        for option in args:
            if option is not type(None):
                try:
                    return _value(option, value, path, name)
                except InputError:
                    continue
        raise InputError(f"{path}: {name} must be {_describe(hint)}, got {value!r}")
    if value is None:
        raise InputError(f"{path}: {name} cannot be null")
    if origin is typing.Literal:
        if any(type(value) is type(choice) and value == choice for choice in args):
            return value
        raise InputError(f"{path}: {name} must be {_describe(hint)}, got {value!r}")
    if origin is tuple:
        if not isinstance(value, list):
            raise InputError(f"{path}: {name} must be {_describe(hint)}, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            args = (args[0],) * len(value)
        elif len(value) != len(args):
            raise InputError(f"{path}: {name} must be {_describe(hint)} ({len(args)} values), got {value!r}")
        pairs = enumerate(zip(args, value, strict=True))
        return tuple(_value(h, v, path, f"{name}[{i}]") for i, (h, v) in pairs)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is Path and isinstance(value, str):
        return Path(value)
    if hint in (bool, int, str) and type(value) is hint:
        return value
    if hint in (bool, int, float, str, Path):
        raise InputError(f"{path}: {name} must be {_describe(hint)}, got {value!r}")
    raise InputError(f"{path}: {name} cannot be set from a file (type {hint})")  # fail closed


def _describe(hint: Any) -> str:
    """A type as a message says it: ``int``, ``one of cosine, none``, ``a list of float``…"""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(map(str, args))
    if origin is tuple:
        return f"a list of {_describe(args[0])}" if args else "a list"
    return getattr(hint, "__name__", str(hint))
