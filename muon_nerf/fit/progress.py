"""An unfinished run: ``outputs/<task>/<run>.incomplete/``, where a fit keeps its checkpoints and
its finished halves until the whole run is written, so an interrupted run can be finished.

Layout::

    <run>.incomplete/
        progress.json           task, optimizers, the whole task config, the owning process
        checkpoints/<opt>.pt    the latest ``FitState`` of a fit in progress
        finished/<opt>.pt       a finished fit (field, curves, prediction), e.g. the Adam half
                                of a --compare whose Muon half was interrupted

The folder's name says it is unfinished; the run itself (``<run>/``) appears only complete.
A folder left by a process that no longer runs is resumable when it holds a checkpoint or a
finished fit; otherwise it is an empty leftover, which the next run removes.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from muon_nerf.fit.checkpoint import load_saved
from muon_nerf.fit.diagnostics import RankTracker
from muon_nerf.fit.errors import InputError
from muon_nerf.fit.io import (
    atomic_write_bytes,
    missing_folders,
    pid_alive,
    remove_empty_folders,
    strict_json,
    write_json,
)
from muon_nerf.fit.loop import FitResult, FitState

SUFFIX = ".incomplete"
FORMAT = "muon-nerf-progress/1"


def incomplete_dir(final: Path) -> Path:
    return final.with_name(final.name + SUFFIX)


def owner() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname()}


def owner_running(record: dict[str, Any]) -> bool:
    """Whether the process that wrote ``record`` still runs (assumed so on another host); an
    empty record is a released folder."""
    if not record:
        return False
    if record.get("host") != socket.gethostname():
        return True
    try:
        return pid_alive(int(record["pid"]))
    except (KeyError, TypeError, ValueError):
        return False


def _save(path: Path, obj: Any) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _load(path: Path) -> dict[str, Any]:
    return load_saved(path, "saved fit state")


@dataclasses.dataclass
class Progress:
    """The ``.incomplete`` folder of one run (see the module docstring)."""

    folder: Path
    record: dict[str, Any]
    created: list[Path] = dataclasses.field(default_factory=list)
    """Parent folders this very process made for the run (deepest first), which ``discard``
    removes again if empty. Kept in memory only: a folder list read from ``progress.json``
    would let an edited or foreign file delete folders it never made."""

    @property
    def final(self) -> Path:
        return self.folder.with_name(self.folder.name.removesuffix(SUFFIX))

    @property
    def optimizers(self) -> list[str]:
        return list(self.record["optimizers"])

    @property
    def config(self) -> dict[str, Any]:
        return self.record["config"]

    @classmethod
    def create(
        cls, final: Path, task: str, cfg: Any, optimizers: tuple[str, ...], overwrite: bool
    ) -> Progress:
        """Start the unfinished folder of a new run (``final`` was checked to be free). A leftover
        of a dead process without progress is removed; a resumable one only with ``overwrite``."""
        folder = incomplete_dir(final)
        remove_leftovers(final.parent)
        if folder.exists():
            old = cls.open(folder, must_resume=False)
            old.check_not_running()
            if old.has_progress() and not overwrite:
                raise InputError(
                    f"an interrupted run is in {folder}: finish it with --resume {folder}, "
                    "or pass --overwrite to start over"
                )
            shutil.rmtree(folder)
        created = missing_folders(folder.parent)
        (folder / "checkpoints").mkdir(parents=True, mode=0o777)
        (folder / "finished").mkdir(mode=0o777)
        record = {
            "format": FORMAT,
            "task": task,
            "optimizers": list(optimizers),
            "config": dataclasses.asdict(cfg),
            "owner": owner(),
            "started": datetime.now().isoformat(timespec="seconds"),
        }
        progress = cls(folder, record, created)
        write_json(folder / "progress.json", record)
        return progress

    @classmethod
    def open(cls, folder: Path, must_resume: bool = True) -> Progress:
        """An existing unfinished folder (``--resume``); refuses what is not one, one still
        being written by a running process, or (``must_resume``) one with nothing to resume."""
        folder = Path(folder)
        if not folder.name.endswith(SUFFIX) and incomplete_dir(folder).is_dir():
            folder = incomplete_dir(folder)  # the run's name works too
        if not folder.is_dir():
            if folder.name.endswith(SUFFIX) and folder.with_name(folder.name.removesuffix(SUFFIX)).is_dir():
                raise InputError(f"{folder.with_name(folder.name.removesuffix(SUFFIX))} is already complete")
            raise InputError(f"--resume: no unfinished run at {folder}")
        try:
            record = json.loads((folder / "progress.json").read_text())
            missing = [k for k in ("task", "optimizers", "config", "owner") if k not in record]
            if record.get("format") != FORMAT or missing:
                raise ValueError(f"progress.json is not {FORMAT}")
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise InputError(f"{folder} is not an unfinished muon-nerf run: {err}") from None
        progress = cls(folder, record)
        if must_resume:
            progress.check_not_running()
            if not progress.has_progress():
                raise InputError(f"{folder} has no checkpoint yet: nothing to resume; start the run again")
            for path in (*folder.glob("checkpoints/*.pt"), *folder.glob("finished/*.pt")):
                _load(path)  # a damaged file is refused now, not after loading the signal
        return progress

    def check_not_running(self) -> None:
        if owner_running(self.record["owner"]):
            pid = self.record["owner"].get("pid")
            raise InputError(f"{self.folder} belongs to a run still in progress (pid {pid})")

    def claim(self) -> None:
        """Mark this process as the folder's owner (a resumed run)."""
        self.record["owner"] = owner()
        write_json(self.folder / "progress.json", self.record)

    def mark_written(self) -> None:
        """The run's files are complete (about to be moved into place): from now on this folder
        is a leftover as soon as the run exists."""
        self.record["written"] = True
        write_json(self.folder / "progress.json", self.record)

    def checkpoint_path(self, optimizer: str) -> Path:
        return self.folder / "checkpoints" / f"{optimizer}.pt"

    def finished_path(self, optimizer: str) -> Path:
        return self.folder / "finished" / f"{optimizer}.pt"

    def has_progress(self) -> bool:
        kept = (*self.folder.glob("checkpoints/*.pt"), *self.folder.glob("finished/*.pt"))
        return any(p.is_file() for p in kept)

    def started(self) -> list[str]:
        """Optimizers with a checkpoint or a finished fit."""
        return [
            n for n in self.optimizers if self.checkpoint_path(n).is_file() or self.finished_path(n).is_file()
        ]

    def save_checkpoint(self, optimizer: str, state: FitState) -> None:
        _save(self.checkpoint_path(optimizer), state)

    def checkpoint(self, optimizer: str) -> FitState | None:
        path = self.checkpoint_path(optimizer)
        return _load(path) if path.is_file() else None

    def checkpoint_step(self, optimizer: str) -> int | None:
        state = self.checkpoint(optimizer)
        return None if state is None else int(state["step"])

    def save_finished(self, optimizer: str, result: FitResult) -> None:
        """Keep a finished fit (then drop its checkpoint): a later failure of the other half of
        a comparison no longer loses it."""
        _save(
            self.finished_path(optimizer),
            {
                "field": result.field.state_dict(),
                "metrics": result.metrics,
                "history": result.history,
                "ranks": result.ranks.to_dict(),
                "prediction": result.prediction.detach().cpu(),
                "train_seconds": result.train_seconds,
                "wall_seconds": result.wall_seconds,
                "extra": result.extra,
            },
        )
        self.checkpoint_path(optimizer).unlink(missing_ok=True)

    def finished(self, optimizer: str, field: torch.nn.Module) -> FitResult | None:
        """The kept fit of ``optimizer``, its weights loaded into ``field`` (built as the run
        builds it), or None."""
        path = self.finished_path(optimizer)
        if not path.is_file():
            return None
        data = _load(path)
        field.load_state_dict(data["field"])
        device = next(field.parameters()).device
        return FitResult(
            data["metrics"],
            data["history"],
            RankTracker.from_dict(data["ranks"]),
            data["prediction"].to(device),
            field,
            data["train_seconds"],
            data["wall_seconds"],
            data["extra"],
        )

    def release(self) -> None:
        """This process leaves the folder (interrupted or failed): ``--resume`` may take it, even
        from this same process."""
        self.record["owner"] = {}
        write_json(self.folder / "progress.json", self.record)

    def discard(self) -> None:
        """Remove the folder, and the parents this process created for it if they are empty
        now (an opened folder's parents are never removed: nothing in its files is trusted)."""
        shutil.rmtree(self.folder, ignore_errors=True)
        remove_empty_folders(self.created)


def remove_leftovers(parent: Path) -> None:
    """Remove the unfinished folders in ``parent`` that nobody can resume: their process is gone
    and they hold no checkpoint and no finished fit, or their run was written (the process died
    between moving the run into place and removing this folder)."""
    for folder in parent.glob(f"*{SUFFIX}"):
        try:
            progress = Progress.open(folder, must_resume=False)
        except InputError:
            continue  # not ours: never touched
        if owner_running(progress.record["owner"]):
            continue
        if not progress.has_progress() or (progress.record.get("written") and progress.final.is_dir()):
            progress.discard()


FREE_ON_RESUME = ("overwrite", "print_split", "fit.progress")
"""Settings a resumed run may change: they do not change what is computed."""
FIXED_ON_RESUME = ("compare", "run_name", "output_dir", "optim.optimizer")
"""Settings that name the run itself."""
MUON_ONLY = (
    "optim.muon_lr",
    "optim.muon_adam_lr",
    "optim.muon_first_layer",
    "optim.muon_compile",
    "optim.muon.",
)
"""Settings that only a Muon fit reads: free while only the Adam half has started."""


def _flat(config: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(config, dict):
        return {prefix.rstrip("."): config}
    flat: dict[str, Any] = {}
    for key, value in config.items():
        flat.update(_flat(value, f"{prefix}{key}."))
    return flat


def refused_changes(saved: dict[str, Any], new: dict[str, Any], started: list[str]) -> list[str]:
    """The settings that differ between a run's saved config and the resumed one, and would make
    a half that has already started (or the run's identity) inconsistent."""
    old, now = _flat(strict_json(saved)), _flat(strict_json(new))
    refused = []
    for key in sorted(old.keys() | now.keys()):
        if old.get(key) == now.get(key) or key in FREE_ON_RESUME:
            continue
        if key in FIXED_ON_RESUME:
            refused.append(key)
        elif started and not (started == ["adam"] and key.startswith(MUON_ONLY)):
            refused.append(key)
    return refused
