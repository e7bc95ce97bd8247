"""Atomic outputs: a run appears complete under ``outputs/<task>/<run>/`` or not at all, never
replaces an existing run unless asked to, and follows the user's umask."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from muon_nerf.fit.errors import InputError


def default_run_name(prefix: str) -> str:
    return f"{prefix}-{datetime.now().strftime('%Y%m%d-%H%M%S-%f')}"


def umask() -> int:
    """The process's file-creation mask (read by setting it, then restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


RUN_NAME_AFFIX = len(".") + len(".12345678-4194304.") + len("12345678") + len(".partial")
"""The most characters the code adds to a run's name for its folders: a staging folder's
``.<run>.<host tag>-<pid>.<random>.partial`` (pid up to Linux's 2²² limit, ``tempfile``'s 8
random characters); ``<run>.incomplete`` and ``.<run>.old`` are shorter."""


def check_run_name(name: str, output_dir: Path) -> None:
    """Refuse, before any work, a --run-name that is not one plain folder name of printable
    characters, or too long for the file system of ``output_dir`` once the staging folder's
    affixes are added (``RUN_NAME_AFFIX``)."""
    if name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise InputError(f"--run-name must be a plain folder name inside --output-dir, got {name!r}")
    if not name.isprintable():
        raise InputError(f"--run-name must be printable characters only (no newline, tab…), got {name!r}")
    folder = Path(output_dir).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # the file system the run will be on
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    longest = limit - RUN_NAME_AFFIX
    size = len(os.fsencode(name))
    if size > longest:
        raise InputError(
            f"--run-name is {size} bytes long; at most {longest} fit in {folder}'s file system "
            f"(names of {limit}, less {RUN_NAME_AFFIX} for the staging folder's affixes)"
        )


def check_run_dir(final: Path, overwrite: bool = False) -> None:
    """Refuse, before any work, a run folder that exists (unless ``overwrite``) or whose parent
    cannot be created or written. Folders created by the check are removed again."""
    final = Path(final)
    if final.exists() or final.is_symlink():
        if not overwrite:
            raise InputError(f"{final} already exists: choose another --run-name, or pass --overwrite")
        if not final.is_dir():
            raise InputError(f"{final} exists and is not a folder: choose another --run-name")
    check_writable_parent(final)


def missing_folders(folder: Path) -> list[Path]:
    """``folder`` and its ancestors that do not exist yet, deepest first: what ``mkdir(parents=
    True)`` would create, so that whoever creates them can remove them again."""
    return [p for p in (folder, *folder.parents) if not p.exists()]


def remove_empty_folders(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first) while they are empty; stop at the first that is not."""
    for folder in folders:
        try:
            Path(folder).rmdir()
        except OSError:
            break


def check_writable_parent(final: Path) -> None:
    """Refuse a path whose folder cannot be created or written (folders the check made are
    removed again)."""
    created = missing_folders(final.parent)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(prefix=".write-test.", dir=final.parent):
            pass
    except OSError as err:
        raise InputError(f"cannot write to output folder {final.parent}: {err.strerror or err}") from None
    finally:
        remove_empty_folders(created)  # only what the check made, and only if still empty


@contextmanager
def staged_dir(final: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a hidden staging folder beside ``final``; move it into place only on success.

    On any exception the staging folder is removed, so an interrupted or failed run leaves
    nothing half-written. An existing ``final`` is refused (``InputError``, before and after the
    work) unless ``overwrite``; it is then replaced only once the new one is complete.
    """
    final = Path(final)
    check_run_dir(final, overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_stages(final.parent)
    prefix = owner_prefix(final.name)
    stage = Path(tempfile.mkdtemp(prefix=prefix, suffix=".partial", dir=final.parent))
    try:
        yield stage
        stage.chmod(0o777 & ~umask())  # mkdtemp makes it 0700 whatever the umask
        if not final.exists():
            stage.rename(final)
            return
        if not overwrite:
            raise InputError(f"{final} appeared while this run was writing: not replaced; nothing written")
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    old = final.with_name(f".{final.name}.old")
    _remove_replaced(old)
    final.rename(old)
    stage.rename(final)
    _remove_replaced(old)


def _remove_replaced(old: Path) -> None:
    """Remove the run that was replaced: a symlink itself (never the folder it points to)."""
    if old.is_symlink():
        old.unlink()
    else:
        shutil.rmtree(old, ignore_errors=True)


STAGE = re.compile(r"^\..+\.([0-9a-f]{8})-(\d+)\.[^.]+\.partial$")
"""A staging folder's name: ``.<run>.<host tag>-<pid>.<random>.partial``."""


def run_name(folder: Path) -> str:
    """The run a folder stands for: its own name, or the final name of a staging folder."""
    match = STAGE.match(folder.name)
    return folder.name if match is None else folder.name[1:].rsplit(".", 3)[0]


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this host (another user's process counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def host_tag() -> str:
    """Eight hex digits of this host's name: a temporary's pid means something only here."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def owner_prefix(name: str) -> str:
    """``.<name>.<host tag>-<pid>.``: how a staging folder or temporary file of this process
    begins, so that a later run can tell a dead owner's (``dead_leftovers``)."""
    return f".{name}.{host_tag()}-{os.getpid()}."


def dead_leftovers(folder: Path, pattern: re.Pattern[str]) -> list[Path]:
    """Entries of ``folder`` named by ``pattern`` (groups: host tag, pid) whose process, on this
    host, no longer runs (killed with SIGKILL, or by a power cut, before it could clean up).
    Another host's are never among them: on a shared file system its pid means nothing here."""
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return []
    host = host_tag()
    dead = []
    for entry in entries:
        match = pattern.match(entry.name)
        if match is not None and match.group(1) == host and not pid_alive(int(match.group(2))):
            dead.append(entry)
    return dead


def remove_dead_stages(parent: Path) -> None:
    """Remove the staging folders in ``parent`` that ``dead_leftovers`` finds."""
    for entry in dead_leftovers(parent, STAGE):
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)


TEMPORARY = re.compile(r"^\..+\.([0-9a-f]{8})-(\d+)\.[a-z0-9_]+\.tmp$")
"""A temporary file's name: ``.<name>.<host tag>-<pid>.<random>.tmp``."""


def remove_dead_temporaries(folder: Path) -> None:
    """Remove the temporary files in ``folder`` (``atomic_write_bytes``'s naming only) that
    ``dead_leftovers`` finds: SIGKILL or a power cut during a write leaves them."""
    for entry in dead_leftovers(folder, TEMPORARY):
        if entry.is_file() and not entry.is_symlink():
            entry.unlink(missing_ok=True)


_SWEPT: set[Path] = set()
"""Folders whose dead temporaries this process has removed already (once per folder)."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all (a temporary beside it, renamed over it); a failure
    (a full disk) names the file, and the temporary is removed again. Temporaries left there by
    killed processes go first."""
    _replace({Path(path): _temporary(Path(path), data)})


def _replace(temporaries: dict[Path, str]) -> None:
    """Rename each temporary over its path; on a failure the temporaries not renamed yet are
    removed and an ``OSError`` names the path."""
    todo = dict(temporaries)
    try:
        for path, tmp in temporaries.items():
            os.replace(tmp, path)
            del todo[path]
    except OSError as err:
        raise type(err)(err.errno, f"cannot write {path}: {err.strerror or err}") from None
    finally:
        for tmp in todo.values():
            Path(tmp).unlink(missing_ok=True)


def _temporary(path: Path, data: bytes) -> str:
    """``data`` in a new temporary file beside ``path`` (umask permissions), whose name says
    which process wrote it; on any failure it is removed and an ``OSError`` names ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.parent not in _SWEPT:
        remove_dead_temporaries(path.parent)
        _SWEPT.add(path.parent)
    tmp = None
    try:
        prefix = owner_prefix(path.name)
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes it 0600 whatever the umask
        return tmp
    except OSError as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise type(err)(err.errno, f"cannot write {path}: {err.strerror or err}") from None
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise


def fingerprint(paths: Iterable[Path]) -> str:
    """SHA-256 over the bytes of ``paths`` (a missing file counts as missing): equal
    fingerprints, same files."""
    digest = hashlib.sha256()
    for path in paths:
        try:
            digest.update(Path(path).read_bytes())
        except FileNotFoundError:
            digest.update(b"\0missing\0")
        digest.update(b"\0" + str(path).encode() + b"\0")
    return digest.hexdigest()


def check_new_files(paths: Iterable[Path], overwrite: bool = False) -> None:
    """Refuse, before any work, an output file that exists (unless ``overwrite``), is a folder,
    or whose folder cannot be created or written: a user's file is never replaced unasked."""
    for path in map(Path, paths):
        if path.is_dir():
            raise InputError(f"{path} is a folder: give a file path")
        if (path.exists() or path.is_symlink()) and not overwrite:
            raise InputError(f"{path} already exists: not replaced; pass --overwrite, or choose another path")
        check_writable_parent(path)


def write_files(files: dict[Path, bytes], overwrite: bool = True) -> None:
    """Write several files, each atomically, as one: every file is written beside its place
    first, and only when all are (a full disk fails here, replacing nothing) are they renamed
    into place. Without ``overwrite`` a file that exists by now is refused (``check_new_files``)
    before anything is written."""
    if not overwrite:
        check_new_files(files, overwrite)
    temporaries: dict[Path, str] = {}
    try:
        for path, data in files.items():
            temporaries[Path(path)] = _temporary(Path(path), data)
    except BaseException as err:
        for tmp in temporaries.values():
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise type(err)(f"{err}; nothing was written or replaced") from None
        raise
    _replace(temporaries)


def json_bytes(data: Any) -> bytes:
    """Strict JSON (no NaN/Infinity: non-finite numbers are written as null)."""
    text = json.dumps(strict_json(data), indent=2, allow_nan=False, default=_unjsonable)
    return (text + "\n").encode()


def strict_json(obj: Any) -> Any:
    """``obj`` with NaN/±inf as None (JSON's null) at any depth; NumPy values, paths and tuples
    as their JSON equivalents. Other types are left for ``json.dumps`` to refuse."""
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return strict_json(obj.tolist())
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return strict_json(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _unjsonable(obj: Any) -> Any:
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def write_json(path: Path, data: Any) -> None:
    """Strict JSON (no NaN/Infinity: non-finite numbers are written as null), atomically."""
    atomic_write_bytes(path, json_bytes(data))
