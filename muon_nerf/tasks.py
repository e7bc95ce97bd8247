"""The one registry of fitting tasks, for every tool that drives a task by name (``muon-fit``,
``muon-sdf fit``, ``muon-sweep``, the benchmarks).

Entries name their config class by module path, so this registry imports no front end (and no
front end's extra) until a task is asked for; a task whose extra is missing is refused in one line
that names the extra.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from muon_nerf.fit.errors import InputError
from muon_nerf.runs.task import TaskConfig


@dataclass(frozen=True)
class TaskEntry:
    module: str
    config: str
    """Name of the task's ``TaskConfig`` subclass in ``module``."""
    command: str
    """The command that fits it (printed in hints, e.g. after a sweep)."""
    extra: str | None = None
    """The pip extra its dependencies come with (None: the core install)."""


TASKS: dict[str, TaskEntry] = {
    "image": TaskEntry("muon_nerf.signals.image", "ImageTask", "muon-fit image"),
    "audio": TaskEntry("muon_nerf.signals.audio", "AudioTask", "muon-fit audio"),
    "ct": TaskEntry("muon_nerf.signals.ct", "CTTask", "muon-fit ct"),
    "sisr": TaskEntry("muon_nerf.signals.sisr", "SISRTask", "muon-fit sisr"),
    "sdf": TaskEntry("muon_nerf.sdf.signal", "SdfTask", "muon-sdf fit", extra="sdf"),
}
FIT_TASKS = tuple(name for name, entry in TASKS.items() if entry.command.startswith("muon-fit "))
"""The tasks of ``muon-fit`` (SDF has its own command, ``muon-sdf``)."""


def require_extra(extra: str, modules: tuple[str, ...], what: str) -> None:
    """Import ``modules`` or stop with one line naming the pip extra that brings them."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise InputError(
                f"{what} needs the [{extra}] extra ({err.name or module} is missing): "
                f"pip install 'muon-nerf[{extra}]'"
            ) from None


EXTRA_MODULES = {"sdf": ("trimesh", "mcubes", "open3d"), "sweep": ("ray.tune",), "nerf": ("nerfstudio",)}
"""What each extra brings that its front end imports."""


def task_config(name: str) -> type[TaskConfig]:
    """The config class of task ``name`` (imported now)."""
    if name not in TASKS:
        raise InputError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    entry = TASKS[name]
    if entry.extra:
        require_extra(entry.extra, EXTRA_MODULES[entry.extra], f"task {name} ({entry.command})")
    return getattr(importlib.import_module(entry.module), entry.config)
