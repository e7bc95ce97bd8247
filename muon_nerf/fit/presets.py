"""Preset files: a task's whole configuration as JSON, read by the task's command with
``--preset FILE`` (``muon-fit <task>``, ``muon-sdf fit``, ``muon-sweep <task>``).

``muon-sweep`` writes one per optimizer (its best trial); any flag given with ``--preset`` still
overrides the preset's value, because the preset only replaces tyro's defaults. The same merge
restores a field's config from a checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from muon_nerf.fit.errors import InputError
from muon_nerf.fit.io import write_json

PRESET_FORMAT = "muon-nerf-preset/2"
RUN_ONLY = ("output_dir", "run_name", "overwrite", "compare", "print_split")
"""Fields that describe one run rather than a configuration: never saved in a preset."""

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
    """The task config ``cls()`` with every value the preset sets; refuses other tasks' presets."""
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
    return merge_config(cls(), data.get("config") or {}, str(path))


def pop_option(args: list[str], flag: str) -> tuple[list[str], str | None]:
    """Remove ``FLAG VALUE`` / ``FLAG=VALUE`` from ``args`` (tyro never sees it); the last one wins."""
    rest, value, i = [], None, 0
    while i < len(args):
        arg = args[i]
        if arg == flag:
            if i + 1 >= len(args):
                raise InputError(f"{flag} needs a value: {flag} VALUE")
            value, i = args[i + 1], i + 2
            continue
        if arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    return rest, value


def merge_config(default: T, values: dict, source: str) -> T:
    """``default`` with every value of the (JSON-loaded) dict ``values`` set, nested configs
    included; ``source`` names the file in error messages."""
    return _merge(default, values, source, "")


def _merge(default: Any, values: dict, path: str, where: str) -> Any:
    """``dataclasses.replace(default, **values)``, recursing into nested configs and restoring
    the types JSON loses (``Path``, tuples, floats written as integers)."""
    if not isinstance(values, dict):
        raise InputError(f"{path}: {where or 'config'} must be an object, got {values!r}")
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
            changes[name] = _coerce(hints[name], current, value, path, where + name)
    return dataclasses.replace(default, **changes)


def _coerce(hint: Any, current: Any, value: Any, path: str, name: str) -> Any:
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if value is None:
        if type(None) in options or hint is Any:
            return None
        raise InputError(f"{path}: {name} cannot be null")
    if Path in options and isinstance(value, str):
        return Path(value)
    if isinstance(value, list) and any(o is tuple or typing.get_origin(o) is tuple for o in options):
        return tuple(value)
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    scalar = (bool, int, float, str)
    if isinstance(current, scalar) and isinstance(value, scalar) and type(current) is not type(value):
        raise InputError(f"{path}: {name} must be {type(current).__name__}, got {value!r}")
    return value
