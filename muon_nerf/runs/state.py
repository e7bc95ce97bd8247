"""An unfinished run: ``outputs/<task>/<run>.incomplete/``, where a fit keeps its checkpoints and
its finished halves until the whole run is written, so an interrupted run can be finished.

Layout::

    <run>.incomplete/
        progress.json           task, optimizers, the whole task config, the last owner
        lock                    locked (``flock``) by the process that runs the folder, for its life
        checkpoints/<opt>.pt    the latest ``FitState`` of a fit in progress
        finished/<opt>.pt       a finished fit (field, curves, prediction), e.g. the Adam half
                                of a --compare whose Muon half was interrupted

The folder's name says it is unfinished; the run itself (``<run>/``) appears only complete.
Who runs a folder is its lock, not a pid: the kernel releases it when the process dies however
it dies, on whatever host, and a second process (two ``--resume`` at once) cannot take it.
A folder nobody holds is resumable when it holds a checkpoint or a finished fit; otherwise it is
an empty leftover, which the next run removes. Each ``.pt`` starts with a line holding the
SHA-256 of the rest, checked on load: a file damaged on disk is refused, never resumed from.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import pickle
import shutil
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

import filelock
import torch

from muon_nerf.fit.diagnostics import RankTracker
from muon_nerf.fit.errors import InputError
from muon_nerf.fit.loop import FitResult, FitState
from muon_nerf.runs.io import (
    atomic_write_bytes,
    missing_folders,
    remove_dead_temporaries,
    remove_empty_folders,
    strict_json,
    write_json,
)

SUFFIX = ".incomplete"
FORMAT = "muon-nerf-progress/1"


def incomplete_dir(final: Path) -> Path:
    return final.with_name(final.name + SUFFIX)


def owner() -> dict[str, Any]:
    """Who last ran the folder (for people: ownership itself is the lock)."""
    return {"pid": os.getpid(), "host": socket.gethostname()}


MAGIC = b"muon-nerf-state sha256="
"""A saved state's first line: this, the hex SHA-256 of the rest of the file, a newline."""


def _save(path: Path, obj: Any) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    data = buffer.getvalue()
    atomic_write_bytes(path, MAGIC + hashlib.sha256(data).hexdigest().encode() + b"\n" + data)


def _load(path: Path, keys: tuple[str, ...]) -> dict[str, Any]:
    """A saved state, refused in one line when its checksum does not match (flipped or missing
    bytes), when it is not one (a ``field.pt`` copied in its place) or lacks one of ``keys``."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise InputError(f"cannot read saved fit state {path}: {err.strerror or err}") from None
    head, _, body = data.partition(b"\n")
    if not head.startswith(MAGIC):
        raise InputError(
            f"{path} is not a muon-nerf saved fit state (corrupted or truncated, another file such "
            "as a field.pt, or an older version's): not resumed from"
        )
    if hashlib.sha256(body).hexdigest().encode() != head[len(MAGIC) :]:
        raise InputError(
            f"{path} is corrupted: its SHA-256 differs from the one written with it; "
            "not resumed from (start the run again)"
        )
    try:
        state = torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as err:
        cause = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"cannot read saved fit state {path}: {cause}") from None
    missing = [k for k in keys if not isinstance(state, dict) or k not in state]
    if missing:
        raise InputError(f"{path} is not a saved fit state: it lacks {', '.join(missing)}")
    return state


CHECKPOINT_KEYS = ("step", "field", "optimizer", "scheduler", "generator", "torch_rng", "ranks", "history")
FINISHED_KEYS = ("field", "metrics", "history", "ranks", "prediction", "train_seconds", "wall_seconds")


def check_fits(path: Path, state: dict[str, torch.Tensor], field: torch.nn.Module) -> None:
    """Refuse weights saved for another field (``progress.json`` edited to another width, say)."""
    if not isinstance(state, dict):
        raise InputError(f"{path} is not a saved fit state: its field is a {type(state).__name__}")
    want = {k: tuple(v.shape) for k, v in field.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
    if got != want:
        diff = sorted(k for k in want.keys() | got.keys() if want.get(k) != got.get(k))
        key = diff[0]
        raise InputError(
            f"{path} does not fit the run's field ({key}: {got.get(key)} saved, {want.get(key)} built "
            "from progress.json: was it edited?)"
        )


class RunBusy(InputError):
    """Another process runs (or resumes) this unfinished run."""


def lock_folder(folder: Path) -> filelock.BaseFileLock:
    """Take ``folder``'s lock without waiting: ``RunBusy`` naming the run when another process
    holds it."""
    lock = filelock.FileLock(folder / "lock", timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise RunBusy(
            f"{folder} belongs to a run still in progress (another process holds its lock)"
        ) from None
    return lock


@dataclasses.dataclass
class Progress:
    """The ``.incomplete`` folder of one run (see the module docstring)."""

    folder: Path
    record: dict[str, Any]
    created: list[Path] = dataclasses.field(default_factory=list)
    """Parent folders this very process made for the run (deepest first), which ``discard``
    removes again if empty. Kept in memory only: a folder list read from ``progress.json``
    would let an edited or foreign file delete folders it never made."""
    lock: filelock.BaseFileLock | None = None
    """Held while this process runs the folder (see the module docstring)."""

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
        """Start the unfinished folder of a new run (``final`` was checked to be free) and take
        its lock. A leftover nobody holds is removed when it holds no progress, a resumable one
        only with ``overwrite``; a folder of another process is refused. A failure here (a full
        disk) leaves nothing behind."""
        folder = incomplete_dir(final)
        remove_leftovers(final.parent)
        if folder.exists() or folder.is_symlink():
            _remove_unfinished(folder, overwrite)
        created = missing_folders(folder.parent)
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            folder.mkdir(mode=0o777)
        except FileExistsError:
            raise RunBusy(f"{folder} was just created by another run of the same name") from None
        progress = cls(folder, {}, created)
        try:
            progress.lock = lock_folder(folder)
            (folder / "checkpoints").mkdir(mode=0o777)
            (folder / "finished").mkdir(mode=0o777)
            progress.record = {
                "format": FORMAT,
                "task": task,
                "optimizers": list(optimizers),
                "config": dataclasses.asdict(cfg),
                "owner": owner(),
                "started": datetime.now().isoformat(timespec="seconds"),
            }
            write_json(folder / "progress.json", progress.record)
        except OSError as err:  # a full disk: say so, and that nothing stays behind
            progress.discard()
            raise type(err)(f"{err}; nothing was kept") from None
        except BaseException:
            progress.discard()
            raise
        return progress

    @classmethod
    def open(cls, folder: Path, must_resume: bool = True) -> Progress:
        """An existing unfinished folder (``--resume``); refuses what is not one, one that another
        process runs, or (``must_resume``) one with nothing to resume. The lock is taken for the
        run's life by ``claim``."""
        folder = Path(folder)
        if not folder.name.endswith(SUFFIX) and incomplete_dir(folder).is_dir():
            folder = incomplete_dir(folder)  # the run's name works too
        if not folder.is_dir():
            if folder.name.endswith(SUFFIX) and folder.with_name(folder.name.removesuffix(SUFFIX)).is_dir():
                raise InputError(f"{folder.with_name(folder.name.removesuffix(SUFFIX))} is already complete")
            raise InputError(f"--resume: no unfinished run at {folder}")
        record = read_record(folder)
        progress = cls(folder, record)
        if must_resume:
            progress.check_not_running()
            if not progress.has_progress():
                raise InputError(f"{folder} has no checkpoint yet: nothing to resume; start the run again")
            for path in folder.glob("checkpoints/*.pt"):
                _load(path, CHECKPOINT_KEYS)  # a damaged file is refused now, not after the signal
            for path in folder.glob("finished/*.pt"):
                _load(path, FINISHED_KEYS)
        return progress

    def check_not_running(self) -> None:
        """Refuse the folder while another process holds its lock."""
        if self.lock is None:
            lock_folder(self.folder).release()

    def claim(self) -> None:
        """Take the folder's lock for this process's life (a resumed run; ``RunBusy`` when another
        process took it first) and remove what killed writers left. ``progress.json`` is left as
        it is: a resume refused later changes nothing."""
        if self.lock is None:
            self.lock = lock_folder(self.folder)
        for sub in (self.folder, self.folder / "checkpoints", self.folder / "finished"):
            remove_dead_temporaries(sub)  # of a process killed while it wrote

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

    def checkpoint(self, optimizer: str, field: torch.nn.Module | None = None) -> FitState | None:
        """The latest checkpoint of ``optimizer`` (checked to fit ``field`` when given), or None."""
        path = self.checkpoint_path(optimizer)
        if not path.is_file():
            return None
        state = _load(path, CHECKPOINT_KEYS)
        if field is not None:
            check_fits(path, state["field"], field)
        return state

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
        data = _load(path, FINISHED_KEYS)
        check_fits(path, data["field"], field)
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
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def discard(self) -> None:
        """Remove the folder, and the parents this process created for it if they are empty
        now (an opened folder's parents are never removed: nothing in its files is trusted)."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self.release()
        remove_empty_folders(self.created)


def read_record(folder: Path) -> dict[str, Any]:
    """``folder/progress.json``, refused in one line when it is not an unfinished run's."""
    try:
        record = json.loads((folder / "progress.json").read_text())
        missing = [k for k in ("task", "optimizers", "config", "owner") if k not in record]
        if record.get("format") != FORMAT or missing:
            raise ValueError(f"progress.json is not {FORMAT}")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise InputError(f"{folder} is not an unfinished muon-nerf run: {err}") from None
    return record


LAYOUT = {"progress.json", "lock", "checkpoints", "finished"}
"""What an unfinished folder holds (besides temporaries of a write in progress)."""


def _ours(folder: Path) -> bool:
    """Whether ``folder`` holds nothing but the layout of an unfinished run (a start that failed
    before ``progress.json`` was written: a full disk, a kill)."""
    try:
        names = {p.name for p in folder.iterdir()}
    except OSError:
        return False
    return all(n in LAYOUT or (n.startswith(".progress.json.") and n.endswith(".tmp")) for n in names)


def _record_if_ours(folder: Path) -> dict[str, Any] | None:
    """``folder``'s progress record; ``{}`` for a folder of ours without one (a start that failed
    before ``progress.json`` was written: a full disk, a kill); None for anything else."""
    if folder.is_symlink() or not folder.is_dir():
        return None
    try:
        return read_record(folder)
    except InputError:
        return {} if _ours(folder) else None


def _remove_unfinished(folder: Path, overwrite: bool) -> None:
    """Make room for a new run's unfinished ``folder``: refuse one another process holds, one with
    progress (unless ``overwrite``) and a folder that is not ours at all."""
    record = _record_if_ours(folder)
    if record is None:
        read_record(folder)  # says why it is not an unfinished run
        raise InputError(f"{folder} exists and is not an unfinished run's folder: not replaced")
    lock = lock_folder(folder)
    try:
        if Progress(folder, record).has_progress() and not overwrite:
            raise InputError(
                f"an interrupted run is in {folder}: finish it with --resume {folder}, "
                "or pass --overwrite to start over"
            )
        shutil.rmtree(folder)
    finally:
        lock.release()


def remove_leftovers(parent: Path) -> None:
    """Remove the unfinished folders in ``parent`` that nobody can resume: nobody holds them and
    they hold no checkpoint and no finished fit (a start that failed before ``progress.json``
    too), or their run was written (the process died between moving the run into place and
    removing this folder). Folders that are not ours are never touched."""
    for folder in parent.glob(f"*{SUFFIX}"):
        record = _record_if_ours(folder)
        if record is None:
            continue
        try:
            lock = lock_folder(folder)
        except (InputError, OSError):
            continue  # another process runs it
        try:
            progress = Progress(folder, record)
            if not progress.has_progress() or (record.get("written") and progress.final.is_dir()):
                shutil.rmtree(folder, ignore_errors=True)
        finally:
            lock.release()


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
