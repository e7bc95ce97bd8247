"""Leftovers and run ownership (issue 27, issue 26 item 4): temporaries of killed writers are
removed by the next write in their folder, a failed start (a full disk) or a closed stdout leaves
nothing and says so, ``--overwrite`` clears a run start that never got its ``progress.json`` and
replaces a symlinked run without a ``.old`` link, and a run is owned through a file lock, so a
second ``--resume`` stops at once while a folder written on another host stays resumable."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import muon_nerf.runs.io as fit_io
from muon_nerf.fit.errors import InputError
from muon_nerf.runs.io import atomic_write_bytes
from muon_nerf.runs.state import Progress
from muon_nerf.signals.cli import main as fit_main
from tests.conftest import make_test_image

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ["--width", "8", "--eval-every", "5", "--rank-every", "5", "--checkpoint-every", "5", "--no-progress"]


@pytest.fixture
def png(tmp_path):
    path = tmp_path / "tiny.png"
    Image.fromarray((make_test_image(12, 12) * 255 + 0.5).astype(np.uint8)).save(path)
    return path


def dead_pid() -> int:
    return int(
        subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True).stdout
    )


def refused(capsys, *args: str) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        fit_main("image", list(args))
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_nothing_is_left_behind_and_what_fails_says_what_was_kept(png, tmp_path, capsys, monkeypatch):
    # temporaries: a dead writer's go, a running one's, another host's and the user's stay
    folder = tmp_path / "ckpt"
    folder.mkdir()
    tag = fit_io.host_tag()
    dead, live = f".muon.pt.{tag}-{dead_pid()}.abcd1234.tmp", f".muon.pt.{tag}-{os.getpid()}.abcd1234.tmp"
    other_host, users = f".muon.pt.0badcafe-{dead_pid()}.abcd1234.tmp", ".notes.txt.tmp"
    for name in (dead, live, other_host, users):
        (folder / name).write_text("half")
    atomic_write_bytes(folder / "muon.pt", b"whole")
    assert sorted(p.name for p in folder.iterdir()) == sorted([live, other_host, users, "muon.pt"])

    # several files as one (an extraction's meshes, render, summary): a full disk replaces none
    (folder / "mesh.ply").write_text("the user's earlier mesh")
    written = fit_io._temporary

    def disk_full_at_obj(path, data):
        if path.name == "mesh.obj":
            raise OSError(errno.ENOSPC, f"cannot write {path}: No space left on device")
        return written(path, data)

    monkeypatch.setattr(fit_io, "_temporary", disk_full_at_obj)
    with pytest.raises(OSError, match=r"mesh.obj: No space left on device; nothing was written or replaced"):
        fit_io.write_files({folder / "mesh.ply": b"new", folder / "mesh.obj": b"new"})
    monkeypatch.undo()
    assert (folder / "mesh.ply").read_text() == "the user's earlier mesh" and not (
        folder / "mesh.obj"
    ).exists()
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [live, other_host, users, "muon.pt", "mesh.ply"]
    )

    out = ["--output-dir", str(tmp_path / "out")]
    run = ["--image", str(png), *FLAGS, "--steps", "10", *out]

    def full(src, dst):  # the disk is full from the first write on
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fit_io.os, "replace", full)
    err = refused(capsys, *run, "--run-name", "r")
    assert "cannot write" in err and "progress.json: No space left on device; nothing was kept" in err
    monkeypatch.undo()
    assert not (tmp_path / "out").exists()  # not even the folders the run made for itself

    images = tmp_path / "out/image"
    (images / "r.incomplete/checkpoints").mkdir(parents=True)  # such a start, by an older version
    (images / "r.incomplete/lock").touch()
    fit_main("image", [*run, "--run-name", "r", "--overwrite"])
    assert sorted(p.name for p in images.iterdir()) == ["r"]

    mine = tmp_path / "mine"  # a run that is a symlink to the user's folder
    (images / "r").rename(mine)
    (images / "linked").symlink_to(mine)
    before = {p.name: p.read_bytes() for p in mine.iterdir() if p.is_file()}
    fit_main("image", [*run, "--run-name", "linked", "--overwrite", "--seed", "1"])
    assert sorted(p.name for p in images.iterdir()) == ["linked"] and not (images / "linked").is_symlink()
    assert {p.name: p.read_bytes() for p in mine.iterdir() if p.is_file()} == before

    cmd = [sys.executable, "-c", "from muon_nerf.signals.cli import entrypoint; entrypoint()", "image"]
    proc = subprocess.Popen(  # muon-fit … | head -1
        [*cmd, "--image", str(png), *FLAGS, "--steps", "20", *out, "--run-name", "p"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and err.count("\n") == 1, err
    assert err.startswith("error: stdout was closed by its reader (broken pipe); ")
    if "the run is complete" in err:  # the lines before the fit fitted in the pipe: it broke at the end
        assert (
            sorted(p.name for p in images.iterdir()) == ["linked", "p"] and (images / "p/field.pt").is_file()
        )
    else:
        assert err.rstrip().endswith("nothing was kept") and sorted(p.name for p in images.iterdir()) == [
            "linked"
        ]


def test_a_run_belongs_to_the_process_holding_its_lock(png, tmp_path, capsys, monkeypatch):
    import tests.test_resume as resume

    args = ["--image", str(png), *FLAGS, "--steps", "40", "--output-dir", str(tmp_path), "--run-name", "r"]
    resume.interrupt_after_checkpoints(monkeypatch, 1)
    with pytest.raises(SystemExit):
        fit_main("image", args)
    monkeypatch.undo()
    folder = tmp_path / "image/r.incomplete"

    first, second = Progress.open(folder), Progress.open(folder)  # both see a free folder…
    first.claim()
    with pytest.raises(InputError, match=f"{folder} belongs to a run still in progress"):
        second.claim()  # …only one takes it
    assert f"{folder} belongs to a run still in progress" in refused(capsys, "--resume", str(folder))
    assert "belongs to a run still in progress" in refused(capsys, *args, "--overwrite")
    first.release()

    record = json.loads((folder / "progress.json").read_text())
    record["owner"] = {"pid": 1, "host": "another-host"}  # written there, finished here
    (folder / "progress.json").write_text(json.dumps(record))
    fit_main("image", ["--resume", str(folder)])
    assert (tmp_path / "image/r/metrics.json").is_file() and not folder.exists()
