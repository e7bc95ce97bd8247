"""Interrupts and resume (issue 12): a fit interrupted at any point keeps its checkpoints in
``<run>.incomplete/`` and says how to finish it; ``--resume`` finishes it with the same final
numbers as an uninterrupted run; a comparison keeps its finished half; staging folders and
empty leftovers of killed processes are cleaned up by the next run. Tiny inputs only."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from muon_nerf.runs.io import host_tag
from muon_nerf.runs.state import Progress
from muon_nerf.signals.cli import main as fit_main
from tests.conftest import make_test_image

ROOT = Path(__file__).resolve().parent.parent
FLAGS = [
    "--width",
    "8",
    "--eval-every",
    "10",
    "--rank-every",
    "10",
    "--checkpoint-every",
    "10",
    "--no-progress",
]


@pytest.fixture
def png(tmp_path):
    path = tmp_path / "tiny.png"
    Image.fromarray((make_test_image(12, 12) * 255 + 0.5).astype(np.uint8)).save(path)
    return path


def _default_sigint() -> None:
    """A shell that runs pytest in the background (``&``) makes its children ignore SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def metrics(run: Path) -> dict[str, dict]:
    if (run / "comparison.json").is_file():
        return {
            k: v["metrics"] for k, v in json.loads((run / "comparison.json").read_text())["results"].items()
        }
    return {"single": json.loads((run / "metrics.json").read_text())["metrics"]}


def interrupt_after_checkpoints(
    monkeypatch, count: int, exc: type[BaseException] = KeyboardInterrupt
) -> None:
    """Raise ``exc`` right after the ``count``-th checkpoint is saved (as Ctrl-C would land)."""
    saved = Progress.save_checkpoint
    calls = {"n": 0}

    def save(self, optimizer, state):
        saved(self, optimizer, state)
        calls["n"] += 1
        if calls["n"] == count:
            raise exc()

    monkeypatch.setattr(Progress, "save_checkpoint", save)


def test_an_interrupted_comparison_resumes_to_the_uninterrupted_result(png, tmp_path, capsys, monkeypatch):
    out = ["--output-dir", str(tmp_path / "out")]
    args = ["--image", str(png), *FLAGS, "--steps", "60", "--compare", *out]
    fit_main("image", [*args, "--run-name", "straight"])
    capsys.readouterr()

    interrupt_after_checkpoints(monkeypatch, 8)  # adam: steps 10…50 (5), muon: 10, 20, 30
    with pytest.raises(SystemExit) as stop:
        fit_main("image", [*args, "--run-name", "cut"])
    assert stop.value.code == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("interrupted: kept ")
    folder = tmp_path / "out/image/cut.incomplete"
    assert "adam finished, muon checkpointed at step 30" in err and f"--resume {folder}" in err
    assert not (tmp_path / "out/image/cut").exists()
    assert sorted(p.name for p in (folder / "finished").iterdir()) == ["adam.pt"]
    monkeypatch.undo()

    fit_main("image", ["--resume", str(folder)])
    assert not folder.exists()
    straight, resumed = metrics(tmp_path / "out/image/straight"), metrics(tmp_path / "out/image/cut")
    for name in ("adam", "muon"):
        assert resumed[name]["psnr"] == pytest.approx(straight[name]["psnr"], abs=1e-6)
    saved = json.loads((tmp_path / "out/image/cut/muon/metrics.json").read_text())
    assert [row["step"] for row in saved["history"]] == [10, 20, 30, 40, 50, 60]  # the curve continues
    assert sorted(p.name for p in (tmp_path / "out/image").iterdir()) == ["cut", "straight"]


def test_a_diverged_half_keeps_the_finished_one_and_resume_may_lower_the_muon_lr(png, tmp_path, capsys):
    args = ["--image", str(png), *FLAGS, "--steps", "30", "--compare", "--output-dir", str(tmp_path)]
    with pytest.raises(SystemExit) as stop:
        # --lr pins both runs' Adam lr: the arch's tuned defaults must not decide whether it diverges
        fit_main("image", [*args, "--run-name", "r", "--lr", "1e-3", "--muon-lr", "1e6"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    folder = tmp_path / "image/r.incomplete"
    assert err.startswith("error: image/muon:") and "(adam finished)" in err and err.count("\n") == 1
    assert not (folder / "checkpoints/muon.pt").exists()  # a diverged fit is not worth resuming

    with pytest.raises(SystemExit):  # the finished Adam half used --lr: it cannot change now
        fit_main("image", ["--resume", str(folder), "--lr", "0.01"])
    assert "cannot change optim.lr" in capsys.readouterr().err
    fit_main("image", ["--resume", str(folder), "--muon-lr", "0.02"])
    result = metrics(tmp_path / "image/r")
    assert not folder.exists()
    # the finished run is the one a straight start at the lowered Muon lr makes, both halves
    fit_main("image", [*args, "--run-name", "straight", "--lr", "1e-3", "--muon-lr", "0.02"])
    straight = metrics(tmp_path / "image/straight")
    for name in ("adam", "muon"):
        assert result[name]["psnr"] == pytest.approx(straight[name]["psnr"], abs=1e-6), name


def test_nothing_is_kept_before_the_first_checkpoint_and_a_divergence_leaves_nothing(png, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        fit_main(
            "image",
            ["--image", str(png), *FLAGS, "--steps", "5", "--lr", "1e9", "--output-dir", str(tmp_path)],
        )
    assert stop.value.code == 2 and "lower --lr" in capsys.readouterr().err
    assert not (tmp_path / "image").exists()  # not even the folder the run created


def test_resume_refuses_what_cannot_be_resumed(png, tmp_path, capsys, monkeypatch):
    def refused(*args: str) -> str:
        with pytest.raises(SystemExit) as stop:
            fit_main("image", list(args))
        assert stop.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
        return err

    assert "no unfinished run" in refused("--resume", str(tmp_path / "nothing"))
    interrupt_after_checkpoints(monkeypatch, 1)
    with pytest.raises(SystemExit):
        fit_main(
            "image",
            ["--image", str(png), *FLAGS, "--steps", "40", "--output-dir", str(tmp_path), "--run-name", "r"],
        )
    monkeypatch.undo()
    capsys.readouterr()
    folder = tmp_path / "image/r.incomplete"
    assert "cannot change fit.steps" in refused("--resume", str(folder), "--steps", "50")
    assert "drop --preset/--profile" in refused("--resume", str(folder), "--profile", "cpu")
    assert "cannot change run_name" in refused("--resume", str(folder), "--run-name", "other")
    # a second run under the same name must not silently start over
    again = refused(
        "--image", str(png), *FLAGS, "--steps", "40", "--output-dir", str(tmp_path), "--run-name", "r"
    )
    assert "--resume" in again and folder.is_dir()
    (folder / "checkpoints/muon.pt").write_bytes(b"garbage")
    assert "corrupted or truncated" in refused("--resume", str(folder))
    fit_main(
        "image",
        [
            "--image",
            str(png),
            *FLAGS,
            "--steps",
            "20",
            "--output-dir",
            str(tmp_path),
            "--run-name",
            "r",
            "--overwrite",
        ],
    )
    assert (tmp_path / "image/r/metrics.json").is_file() and not folder.exists()


def test_leftovers_of_killed_processes_are_removed_by_the_next_run(png, tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(dead.stdout)
    stage = tmp_path / "image" / f".old.{host_tag()}-{pid}.abc123.partial"
    stage.mkdir(parents=True)
    (stage / "metrics.json").write_text("{")
    # another host's staging folder (a shared file system): its pid means nothing here
    elsewhere = tmp_path / "image" / f".other.{'0' * 8}-{pid}.abc123.partial"
    elsewhere.mkdir()
    empty = tmp_path / "image" / "gone.incomplete"
    (empty / "checkpoints").mkdir(parents=True)
    record = {"format": "muon-nerf-progress/1", "task": "image", "optimizers": ["adam"], "config": {}}
    (empty / "progress.json").write_text(
        json.dumps({**record, "owner": {"pid": pid, "host": os.uname().nodename}})
    )
    mine = tmp_path / "image" / "mine.partial"  # not a staging folder's name: never touched
    mine.mkdir()
    fit_main(
        "image",
        ["--image", str(png), *FLAGS, "--steps", "10", "--output-dir", str(tmp_path), "--run-name", "new"],
    )
    assert sorted(p.name for p in (tmp_path / "image").iterdir()) == [elsewhere.name, "mine.partial", "new"]


def test_resume_state_is_never_a_list_of_folders_to_delete(png, tmp_path, capsys, monkeypatch):
    """Issue 27: ``progress.json`` is data, not instructions. Folders listed in it (as the
    ``created_parents`` of older versions, or by hand) are never removed, by ``--resume`` nor by
    the cleanup of a leftover; a run removes only the empty parents this very process made."""
    mine = [tmp_path / "keep" / "empty", tmp_path / "also-mine"]
    for folder in mine:
        folder.mkdir(parents=True)

    def plant(folder: Path) -> None:
        record = json.loads((folder / "progress.json").read_text())
        record["created_parents"] = [str(p) for p in mine]
        (folder / "progress.json").write_text(json.dumps(record))

    args = ["--image", str(png), *FLAGS, "--steps", "30", "--output-dir", str(tmp_path / "out")]
    interrupt_after_checkpoints(monkeypatch, 1)
    with pytest.raises(SystemExit):
        fit_main("image", [*args, "--run-name", "cut"])
    monkeypatch.undo()
    folder = tmp_path / "out/image/cut.incomplete"
    plant(folder)
    fit_main("image", ["--resume", str(folder)])  # finishes, then discards its .incomplete folder
    assert not folder.exists() and (tmp_path / "out/image/cut/metrics.json").is_file()
    assert all(p.is_dir() for p in mine)

    leftover = tmp_path / "out/image/left.incomplete"  # a killed run's folder, nothing to resume
    (leftover / "checkpoints").mkdir(parents=True)
    record = {"format": "muon-nerf-progress/1", "task": "image", "optimizers": ["adam"], "config": {}}
    (leftover / "progress.json").write_text(json.dumps({**record, "owner": {}}))
    plant(leftover)
    fit_main("image", [*args, "--run-name", "next"])  # removes the leftover, and only it
    assert not leftover.exists() and all(p.is_dir() for p in mine)

    capsys.readouterr()
    with pytest.raises(SystemExit):  # a fresh run still removes the empty parents it made
        fit_main("image", [*args[:-1], str(tmp_path / "new/deeper"), "--lr", "1e9", "--steps", "5"])
    assert "lower --lr" in capsys.readouterr().err and not (tmp_path / "new").exists()


DUMP_ON_SIGUSR1 = "import faulthandler, signal; faulthandler.register(signal.SIGUSR1)"
"""Run first in a signalled fit: a fit that outlives its stop says where it is (``_stopped``)."""


def _stopped(proc: subprocess.Popen, timeout: float = 60) -> str:
    """The stopped fit's stderr once it exits; a fit still running after ``timeout`` seconds
    fails the test with every thread's traceback, so a rare hang can be diagnosed from CI's log."""
    try:
        return proc.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)
        time.sleep(2)
        proc.kill()
        pytest.fail(f"still running {timeout:g} s after the signal; its stacks:\n{proc.communicate()[1]}")
    finally:
        proc.kill()


def _fit_until_checkpointed(png: Path, tmp_path: Path, **popen) -> subprocess.Popen:
    """A long fit (run ``r``) in a subprocess, returned once its Muon half has a checkpoint (or
    it ended, or 120 s passed): the moment a signal has something to keep."""
    code = f"{DUMP_ON_SIGUSR1}; from muon_nerf.signals.cli import entrypoint; entrypoint()"
    cmd = [sys.executable, "-c", code, "image"]
    args = ["--image", str(png), *FLAGS, "--steps", "100000", "--output-dir", str(tmp_path)]
    args += ["--run-name", "r"]
    proc = subprocess.Popen(
        [*cmd, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **popen
    )
    checkpoint = tmp_path / "image/r.incomplete/checkpoints/muon.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return proc


@pytest.mark.parametrize(
    "sig, code, word", [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")]
)
def test_a_real_signal_during_training_ends_with_one_line_and_a_resumable_run(png, tmp_path, sig, code, word):
    """The real thing, in a subprocess: the signal arrives once a checkpoint exists."""
    folder = tmp_path / "image/r.incomplete"
    proc = _fit_until_checkpointed(png, tmp_path, preexec_fn=_default_sigint)
    proc.send_signal(sig)
    err = _stopped(proc)
    assert proc.returncode == code, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"{word}: kept {folder} (muon checkpointed at step ") and "Traceback" not in err
    assert not any(p.name.endswith(".partial") for p in (tmp_path / "image").iterdir())
    assert Progress.open(folder).checkpoint_step("muon") % 10 == 0


def test_a_checkpoint_is_resumed_only_as_it_was_written(png, tmp_path, capsys, monkeypatch):
    """Issue 27: a saved state carries the SHA-256 of its bytes: one flipped byte inside a weight,
    a field.pt copied in its place, or a progress.json edited to another width is refused in one
    line naming the file, never resumed from."""
    args = ["--image", str(png), *FLAGS, "--steps", "40", "--output-dir", str(tmp_path), "--run-name", "r"]
    interrupt_after_checkpoints(monkeypatch, 1)
    with pytest.raises(SystemExit):
        fit_main("image", args)
    monkeypatch.undo()
    folder = tmp_path / "image/r.incomplete"
    checkpoint = folder / "checkpoints/muon.pt"
    good, record = checkpoint.read_bytes(), (folder / "progress.json").read_text()

    def refused() -> str:
        capsys.readouterr()
        with pytest.raises(SystemExit) as stop:
            fit_main("image", ["--resume", str(folder)])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
        return err

    flipped = bytearray(good)
    flipped[len(flipped) // 2] ^= 0xFF
    checkpoint.write_bytes(bytes(flipped))
    assert f"{checkpoint} is corrupted: its SHA-256 differs" in refused()
    fit_main("image", ["--image", str(png), *FLAGS, "--steps", "5", "--output-dir", str(tmp_path / "f")])
    checkpoint.write_bytes(next((tmp_path / "f/image").glob("*/field.pt")).read_bytes())
    assert f"{checkpoint} is not a muon-nerf saved fit state" in refused()
    checkpoint.write_bytes(good)
    edited = json.loads(record)
    edited["config"]["field"]["width"] = 16
    (folder / "progress.json").write_text(json.dumps(edited))
    assert f"{checkpoint} does not fit the run's field (" in refused()
    assert json.loads((folder / "progress.json").read_text()) == edited  # a refused resume changes nothing
    (folder / "progress.json").write_text(record)
    fit_main("image", ["--resume", str(folder)])
    assert (tmp_path / "image/r/metrics.json").is_file() and not folder.exists()


@pytest.mark.parametrize("gap", [0.001, 0.02])
def test_a_second_signal_during_the_cleanup_changes_nothing_it_says(png, tmp_path, gap):
    """Issue 27: two SIGTERMs 1 or 20 ms apart end as one does: one line saying what was kept
    (the cleanup is not cut short) and no traceback, not even from atexit."""
    folder = tmp_path / "image/r.incomplete"
    proc = _fit_until_checkpointed(png, tmp_path)
    proc.send_signal(signal.SIGTERM)
    time.sleep(gap)
    proc.send_signal(signal.SIGTERM)
    err = _stopped(proc)
    assert proc.returncode == 143 and err.count("\n") == 1, err
    assert err.startswith(f"terminated: kept {folder} (muon checkpointed at step ")
    assert (folder / "checkpoints/muon.pt").is_file()


def test_a_stop_a_library_swallowed_still_ends_the_fit_at_the_next_step(png, tmp_path, capsys, monkeypatch):
    """A SIGTERM whose exception lands in code that catches everything and carries on must not
    leave the fit running with every later signal ignored: the next step raises it again."""
    saved, steps = Progress.save_checkpoint, []

    def save(self, optimizer, state):
        saved(self, optimizer, state)
        steps.append(state["step"])
        if len(steps) == 2:
            try:  # a library's `except BaseException: pass` around where the signal lands
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(1)  # the handler runs at the next bytecode, long before this ends
            except BaseException:
                pass

    monkeypatch.setattr(Progress, "save_checkpoint", save)
    args = ["--image", str(png), *FLAGS, "--steps", "100", "--output-dir", str(tmp_path), "--run-name", "r"]
    with pytest.raises(SystemExit) as stop:
        fit_main("image", args)
    err = capsys.readouterr().err
    assert stop.value.code == 143 and err.count("\n") == 1, err
    assert err.startswith(f"terminated: kept {tmp_path / 'image/r.incomplete'} (muon checkpointed at step 20")
    assert steps == [10, 20]
