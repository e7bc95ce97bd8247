#!/usr/bin/env python3
"""Bad inputs and interrupts for every command (issue 12): each case runs as a subprocess in a
fresh working folder and is checked for its exit status, its one-line message, tracebacks,
leftovers, data loss and silently wrong results.

The script makes its own tiny data in a temporary folder (``$T`` in the table): PNGs (8-bit,
16-bit gray and RGB, 1×1, corrupt, truncated, empty), WAVs (tone, silent, stereo, NaN), meshes
(icosphere PLY/OBJ, point cloud, flat triangle, garbage), presets, a Blender sphere scene and a
finished image and SDF run. Every case declares what it expects: the exit status(es), a
substring of the last stderr line, and which files may appear; anything else is a violation.

Per case it records the command (``$T`` for the temporary folder, ``[tiny]`` etc. for the
size flags listed in the header), the exit status, the last non-empty stderr line, whether a
traceback was printed, and the leftovers: paths the command created that should not be there
(anything for a failing command, any ``.partial`` staging folder, an ``.incomplete`` folder
without a checkpoint, processes still running, Ray temp folders), plus pre-existing files it
removed or changed.

    python scripts/bad_inputs.py                  # all cases; writes docs/results/bad_inputs.{md,json}
    python scripts/bad_inputs.py --list           # the cases, without running them
    python scripts/bad_inputs.py --only resume    # the cases whose id or command contains "resume"

Every command runs with ``OMP_NUM_THREADS=1``: on 2 shared cores torch's default two threads
spin against other load and tiny fits get ~100× slower. Exit status 1 when any case violates
its expectation.
"""

from __future__ import annotations

import argparse
import fnmatch
import glob as globlib
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shlex
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PROGRAMS = ("muon-fit", "muon-sdf", "muon-sweep", "ns-train")
D = "$T/data"

MACROS: dict[str, list[str]] = {
    "@tiny": ["--width", "8", "--steps", "10", "--eval-every", "5", "--rank-every", "5", "--no-progress"],
    "@tinysdf": [
        *("--width", "8", "--steps", "10", "--eval-every", "5", "--rank-every", "5", "--no-progress"),
        *("--num-surface", "200", "--num-near", "200", "--num-uniform", "200", "--eval-resolution", "16"),
        *("--eval-volume-points", "0", "--render-size", "32", "--surface-points", "200"),
    ],
    "@tinysweep": [
        *("--width", "8", "--steps", "5", "--eval-every", "5", "--rank-every", "5"),
        *("--no-progress", "--grid", "1x1"),
    ],
    # slow enough to interrupt (2000 steps, a checkpoint every 5), fast enough to resume
    "@ckpt": [
        *("--width", "8", "--steps", "2000", "--eval-every", "50", "--rank-every", "50"),
        *("--checkpoint-every", "5", "--no-progress"),
    ],
    "@tinyeval": ["--surface-points", "200", "--iou-resolutions", "8", "--ray-votes", "1"],
}

# ---------------------------------------------------------------------------------------------
# cases


@dataclass
class Interrupt:
    """Send ``sig`` once ``glob`` (relative to the case folder) matches, ``stdout`` appears in the
    command's stdout, or a new ``/tmp`` entry matches ``new_tmp``; after ``delay`` seconds."""

    sig: int
    glob: str | None = None
    stdout: str | None = None
    new_tmp: str | None = None
    delay: float = 0.0
    wait: float = 180.0
    repeat: int = 1
    """Send it this many times, ``gap`` seconds apart (a second signal during the cleanup)."""
    gap: float = 0.0


@dataclass
class Case:
    id: str
    argv: list[str]
    exit: tuple[int, ...] = (2,)
    msg: str | tuple[str, ...] | None = None
    """Substring(s) of the last non-empty stderr line (one of them)."""
    expect: tuple[str, ...] = ()
    """Globs (relative to the case folder) that must exist afterwards."""
    allow: tuple[str, ...] = ()
    """Globs of new paths that are not leftovers (for a failing command, or a kept .incomplete)."""
    gone: tuple[str, ...] = ()
    """Globs that must not exist afterwards (their removal is intended)."""
    may_change: tuple[str, ...] = ()
    """Pre-existing paths the command may replace or remove (e.g. --overwrite)."""
    setup: Callable[[Path, Context], None] | None = None
    after: str | None = None
    """Start from a copy of that case's finished folder."""
    interrupt: Interrupt | None = None
    check: Callable[[Path, Context], list[str]] | None = None
    timeout: float = 240.0
    note: str = ""
    multiline_ok: bool = False

    @property
    def program(self) -> str:
        for token in self.argv:
            if token in PROGRAMS:
                return token
            if token.endswith(".py") or token.startswith("muon_nerf."):
                return token.replace("$R/", "")
        return self.argv[0]

    def display(self) -> str:
        out = []
        for token in self.argv:
            if token in MACROS:
                out.append(f"[{token[1:]}]")
            else:
                quoted = shlex.quote(token.replace("$R/", "").replace("$T/data", "DDD").replace("$T", "TTT"))
                out.append(quoted.replace("DDD", "$D").replace("TTT", "$T"))
        return " ".join(out)


@dataclass
class Context:
    tmp: Path
    workdirs: dict[str, Path] = field(default_factory=dict)
    results: dict[str, dict] = field(default_factory=dict)

    @property
    def data(self) -> Path:
        return self.tmp / "data"

    def expand(self, token: str) -> str:
        return token.replace("$T", str(self.tmp)).replace("$R", str(ROOT))

    def argv(self, argv: list[str]) -> list[str]:
        out: list[str] = []
        for token in argv:
            if token in MACROS:
                out += MACROS[token]
            elif token in PROGRAMS:
                out.append(str(BIN / token))
            elif token == "python":
                out.append(sys.executable)
            else:
                out.append(self.expand(token))
        return out


def env_for(marker: str, tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
        COLUMNS="200",
        MPLCONFIGDIR=str(tmp / "mplconfig"),
        BAD_INPUTS_CASE=marker,
    )
    env.pop("VIRTUAL_ENV_PROMPT", None)
    return env


# setup helpers ------------------------------------------------------------------------------


def prerun(*argv: str, ok: tuple[int, ...] = (0,)) -> Callable[[Path, Context], None]:
    def run(cwd: Path, ctx: Context) -> None:
        cmd = ctx.argv(list(argv))
        proc = subprocess.run(
            cmd, cwd=cwd, env=env_for("setup", ctx.tmp), capture_output=True, text=True, timeout=300
        )
        if proc.returncode not in ok:
            tail = (proc.stderr.strip().splitlines() or ["(no stderr)"])[-1]
            raise RuntimeError(f"setup command failed ({proc.returncode}): {shlex.join(argv)}: {tail}")

    return run


def copy(src: str, dest: str) -> Callable[[Path, Context], None]:
    def run(cwd: Path, ctx: Context) -> None:
        source = Path(ctx.expand(src))
        target = cwd / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, symlinks=True)
        else:
            shutil.copy2(source, target)

    return run


def write(rel: str, text: str | bytes) -> Callable[[Path, Context], None]:
    def run(cwd: Path, ctx: Context) -> None:
        path = cwd / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(ctx.expand(text))

    return run


def mkdir(rel: str, mode: int | None = None) -> Callable[[Path, Context], None]:
    def run(cwd: Path, ctx: Context) -> None:
        (cwd / rel).mkdir(parents=True, exist_ok=True)
        if mode is not None:
            (cwd / rel).chmod(mode)

    return run


def chmod(rel: str, mode: int) -> Callable[[Path, Context], None]:
    def run(cwd: Path, ctx: Context) -> None:
        (cwd / rel).chmod(mode)

    return run


def remove(rel: str) -> Callable[[Path, Context], None]:
    def run(cwd: Path, ctx: Context) -> None:
        path = cwd / rel
        shutil.rmtree(path) if path.is_dir() else path.unlink()

    return run


def steps(*fns: Callable[[Path, Context], None]) -> Callable[[Path, Context], None]:
    def run(cwd: Path, ctx: Context) -> None:
        for fn in fns:
            fn(cwd, ctx)

    return run


def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    return int(proc.stdout)


def fake_stage(rel_parent: str, run: str) -> Callable[[Path, Context], None]:
    """A staging folder of a process that no longer runs, as SIGKILL during a write leaves it."""

    def run_(cwd: Path, ctx: Context) -> None:
        stage = cwd / rel_parent / f".{run}.{host_tag()}-{dead_pid()}.abc123.partial"
        stage.mkdir(parents=True)
        (stage / "metrics.json").write_text("{")

    return run_


HELD: list[int] = []
"""Descriptors of the run locks this script holds (``hold_lock``), until it exits."""


def hold_lock(rel: str) -> Callable[[Path, Context], None]:
    """Take ``rel/lock`` (``flock``, as the running owner of an unfinished run holds it)."""

    def run(cwd: Path, ctx: Context) -> None:
        import fcntl

        fd = os.open(cwd / rel / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        HELD.append(fd)

    return run


def plant_parents(rel: str, folders: list[str]) -> Callable[[Path, Context], None]:
    """Make ``rel/progress.json`` list ``folders`` (the user's) as the run's created parents."""

    def run(cwd: Path, ctx: Context) -> None:
        path = cwd / rel / "progress.json"
        record = json.loads(path.read_text())
        record["created_parents"] = [str(cwd / f) for f in folders]
        path.write_text(json.dumps(record))

    return run


def flip_bytes(pattern: str) -> Callable[[Path, Context], None]:
    """Flip one byte in the middle of each file matching ``pattern`` (a bit rot inside a weight)."""

    def run(cwd: Path, ctx: Context) -> None:
        for path in cwd.glob(pattern):
            data = bytearray(path.read_bytes())
            data[len(data) // 2] ^= 0xFF
            path.write_bytes(bytes(data))

    return run


def copy_over(src: str, pattern: str) -> Callable[[Path, Context], None]:
    """Replace each file matching ``pattern`` with a copy of ``src``."""

    def run(cwd: Path, ctx: Context) -> None:
        for path in cwd.glob(pattern):
            shutil.copy2(ctx.expand(src), path)

    return run


def edit_json(rel: str, keys: tuple[str, ...], value: object) -> Callable[[Path, Context], None]:
    """Set ``rel``'s value at ``keys`` (``value`` None: remove it)."""

    def run(cwd: Path, ctx: Context) -> None:
        path = cwd / rel
        record = json.loads(path.read_text())
        inner = record
        for key in keys[:-1]:
            inner = inner[key]
        if value is None:
            inner.pop(keys[-1], None)
        else:
            inner[keys[-1]] = value
        path.write_text(json.dumps(record))

    return run


def host_tag() -> str:
    return hashlib.sha256(platform.node().encode()).hexdigest()[:8]


def dead_temporary(rel_folder: str, name: str) -> Callable[[Path, Context], None]:
    """A temporary of ``name`` as a process killed (SIGKILL) while it wrote leaves it."""

    def run(cwd: Path, ctx: Context) -> None:
        folder = cwd / rel_folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f".{name}.{host_tag()}-{dead_pid()}.abcd1234.tmp").write_bytes(b"half a file")

    return run


def symlink(target: str, link: str) -> Callable[[Path, Context], None]:
    def run(cwd: Path, ctx: Context) -> None:
        (cwd / link).parent.mkdir(parents=True, exist_ok=True)
        (cwd / link).symlink_to(target)

    return run


BACKGROUND: dict[Path, subprocess.Popen] = {}
"""Commands a case's setup started beside it (a race), by case folder."""


def background(*argv: str, ready: str | None = None) -> Callable[[Path, Context], None]:
    """Start ``argv`` in the case folder and leave it running (``ready``: wait until its stdout
    says so); ``background_finished`` checks it."""

    def run(cwd: Path, ctx: Context) -> None:
        log = cwd.parent / f"{cwd.name}.background.out"
        with log.open("w") as out:
            proc = subprocess.Popen(
                ctx.argv(list(argv)),
                cwd=cwd,
                env=env_for("background", ctx.tmp),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        BACKGROUND[cwd] = proc
        deadline = time.monotonic() + 120
        while ready is not None and ready not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"background command ended or stalled before {ready!r}")
            time.sleep(0.05)

    return run


def background_finished(
    *checks: Callable[[Path, Context], list[str]],
) -> Callable[[Path, Context], list[str]]:
    """The command the setup started ended with exit 0, then ``checks``."""

    def check(cwd: Path, ctx: Context) -> list[str]:
        proc = BACKGROUND.pop(cwd)
        try:
            rc = proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            return ["the background command did not finish in 300 s"]
        if rc != 0:
            return [f"the background command failed (exit {rc})"]
        return [p for c in checks for p in c(cwd, ctx)]

    return check


# checks ---------------------------------------------------------------------------------------


def file_has(rel: str, text: str) -> Callable[[Path, Context], list[str]]:
    def check(cwd: Path, ctx: Context) -> list[str]:
        path = cwd / rel
        if not path.is_file():
            return [f"data loss: {rel} is gone"]
        if path.read_text() != text:
            return [f"data loss: {rel} was changed"]
        return []

    return check


def metrics_of(run: Path) -> dict:
    if (run / "comparison.json").is_file():
        data = json.loads((run / "comparison.json").read_text())
        return {k: v["metrics"] for k, v in data["results"].items()}
    return json.loads((run / "metrics.json").read_text())["metrics"]


def same_metrics(rel: str, ref_case: str, ref_rel: str | None = None) -> Callable[[Path, Context], list[str]]:
    """The resumed run's metrics equal the uninterrupted reference run's (the README's promise)."""

    def check(cwd: Path, ctx: Context) -> list[str]:
        ref_dir = ctx.workdirs.get(ref_case)
        if ref_dir is None:
            return [f"reference case {ref_case} did not run"]
        try:
            got, want = metrics_of(cwd / rel), metrics_of(ref_dir / (ref_rel or rel))
        except (OSError, ValueError, KeyError) as err:
            return [f"cannot compare metrics: {err}"]
        if got != want:
            return [f"silently wrong: resumed metrics {got} differ from uninterrupted {want}"]
        return []

    return check


def png_bits(rel: str, bits: int, mode_prefix: str) -> Callable[[Path, Context], list[str]]:
    def check(cwd: Path, ctx: Context) -> list[str]:
        from PIL import Image

        problems = []
        run = cwd / rel
        try:
            signal_bits = json.loads((run / "metrics.json").read_text())["signal"]["bits"]
        except (OSError, ValueError, KeyError) as err:
            return [f"cannot read metrics.json: {err}"]
        if signal_bits != bits:
            problems.append(f"silently wrong: signal read at {signal_bits} bits, file has {bits}")
        with Image.open(run / "reconstruction.png") as img:
            mode = img.mode
        if bits == 16 and mode_prefix == "I" and not mode.startswith("I"):
            problems.append(f"silently wrong: 16-bit input written as {mode} PNG")
        if bits == 16 and mode_prefix == "RGB":
            import cv2

            arr = cv2.imread(str(run / "reconstruction.png"), cv2.IMREAD_UNCHANGED)
            if arr is None or arr.dtype != np.uint16:
                problems.append("silently wrong: 16-bit RGB input written as an 8-bit PNG")
        return problems

    return check


def kept_checkpoint(rel: str) -> Callable[[Path, Context], list[str]]:
    def check(cwd: Path, ctx: Context) -> list[str]:
        folder = cwd / rel
        kept = list(folder.glob("checkpoints/*.pt")) + list(folder.glob("finished/*.pt"))
        return [] if kept else [f"{rel} holds no checkpoint"]

    return check


def mesh_of_its_field(rel: str, resolution: int) -> Callable[[Path, Context], list[str]]:
    """A mesh extracted into ``rel`` is of the ``field.pt`` beside it (``extract_<res>.json``
    names the field it read by its SHA-256)."""

    def check(cwd: Path, ctx: Context) -> list[str]:
        summary = cwd / rel / f"extract_{resolution}.json"
        if not summary.is_file():
            return []
        read = json.loads(summary.read_text()).get("field_sha256")
        if read != hashlib.sha256((cwd / rel / "field.pt").read_bytes()).hexdigest():
            return [f"silently wrong: {rel}/mesh_{resolution}.ply is not the mesh of the field.pt beside it"]
        return []

    return check


def warns_if_written(case_id: str, text: str) -> Callable[[Path, Context], list[str]]:
    """A run that succeeds despite a doubtful input says so on stderr."""

    def check(cwd: Path, ctx: Context) -> list[str]:
        res = ctx.results[case_id]
        if res["exit"] == 0 and text not in res["stderr"]:
            return [f"succeeded without a warning containing {text!r}"]
        return []

    return check


# ---------------------------------------------------------------------------------------------
# the cases

PIPE_HEAD = (
    "import subprocess, sys; p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE); "
    "p.stdout.readline(); p.stdout.close(); sys.exit(p.wait())"
)
"""``python -c PIPE_HEAD CMD…``: ``CMD | head -1`` (exits with CMD's status)."""
IMG = f"{D}/img16.png"
MESH = f"{D}/ico.ply"
SCENE = f"{D}/sphere"
NOTE = "user notes: must survive\n"


def fit(*args: str) -> list[str]:
    image = [] if "--image" in args else ["--image", IMG]
    return ["muon-fit", "image", *image, "@tiny", *args]


def sdf(*args: str) -> list[str]:
    mesh = [] if "--mesh" in args else ["--mesh", MESH]
    return ["muon-sdf", "fit", *mesh, "@tinysdf", *args]


def sweep(*args: str) -> list[str]:
    image = [] if "--image" in args else ["--image", IMG]
    return ["muon-sweep", "image", *image, "@tinysweep", *args]


def speed(*args: str) -> list[str]:
    sizes = [] if "--sizes" in args else ["--sizes", "16"]
    return [
        *("python", "$R/scripts/bench_speed.py", *sizes, "--widths", "8", "--reps", "1", "--warmup", "0"),
        *("--stream-steps", "0", "--loop-steps", "0", "--ttq-image", "None", *args),
    ]


def cases() -> list[Case]:
    c: list[Case] = []
    add = c.append

    # --- muon-fit image: files ---------------------------------------------------------------
    add(Case("image-missing", fit("--image", f"{D}/missing.png"), msg="image not found"))
    add(Case("image-is-folder", fit("--image", f"{D}/empty_dir"), msg="image not found"))
    add(Case("image-corrupt", fit("--image", f"{D}/corrupt.png"), msg="cannot read image"))
    add(Case("image-truncated", fit("--image", f"{D}/truncated.png"), msg="cannot read image"))
    add(Case("image-empty-file", fit("--image", f"{D}/empty.png"), msg="cannot read image"))
    add(Case("image-is-wav", fit("--image", f"{D}/tone.wav"), msg="cannot read image"))
    add(Case("image-fifo", fit("--image", f"{D}/fifo.png"), msg="image not found", note="a named pipe"))
    add(
        Case(
            "image-unreadable-root",
            ["muon-fit", "image", "--image", "noread.png", "@tiny", "--run-name", "r"],
            exit=(0,),
            setup=steps(copy(IMG, "noread.png"), chmod("noread.png", 0)),
            expect=("outputs/image/r/metrics.json",),
            note="as root: chmod 000 does not stop root reading, so the fit runs (correctly)",
        )
    )
    add(
        Case(
            "image-unreadable",
            ["unshare", "-U", "muon-fit", "image", "--image", "noread.png", "@tiny"],
            msg="Permission denied",
            setup=steps(copy(IMG, "noread.png"), chmod("noread.png", 0)),
            note="unshare -U: root without capabilities, so chmod 000 applies",
        )
    )
    add(
        Case(
            "image-16bit-gray",
            fit("--image", f"{D}/gray16.png", "--run-name", "g"),
            exit=(0,),
            expect=("outputs/image/g/reconstruction.png",),
            check=png_bits("outputs/image/g", 16, "I"),
        )
    )
    add(
        Case(
            "image-16bit-rgb",
            fit("--image", f"{D}/rgb16.png", "--run-name", "g"),
            exit=(0,),
            expect=("outputs/image/g/reconstruction.png",),
            check=png_bits("outputs/image/g", 16, "RGB"),
        )
    )
    add(
        Case(
            "image-1x1",
            fit("--image", f"{D}/img1x1.png", "--run-name", "one"),
            msg="need at least 11×11",
            note="a single pixel: under SSIM's window, refused before any work",
        )
    )
    # every depth at its true range, or refused (issue 27)
    for name, file, bits, mode in (
        ("image-float-tiff", "float01.tif", 32, "I"),
        ("image-16bit-gray-alpha", "gray_alpha16.png", 16, "I"),
        ("image-16bit-rgba-tiff", "rgba16.tif", 16, "RGB"),
    ):
        add(
            Case(
                name,
                fit("--image", f"{D}/{file}", "--run-name", "g"),
                exit=(0,),
                expect=("outputs/image/g/reconstruction.png",),
                check=png_bits("outputs/image/g", bits, mode),
            )
        )
    add(Case("image-float-tiff-over-1", fit("--image", f"{D}/float_over1.tif"), msg="outside [0, 1]"))
    add(Case("image-float-tiff-nan", fit("--image", f"{D}/float_nan.tif"), msg="NaN/inf"))
    add(Case("image-int32-tiff", fit("--image", f"{D}/int32.tif"), msg="int32 samples"))
    # --- muon-fit: flag values -----------------------------------------------------------------
    add(Case("downscale-0", fit("--downscale", "0"), msg="--downscale must be a positive integer"))
    add(Case("downscale-too-big", fit("--downscale", "100"), msg="leaves no pixels"))
    add(Case("steps-0", fit("--steps", "0"), msg="--steps must be >= 1"))
    add(Case("steps-negative", fit("--steps", "-5"), msg="--steps must be >= 1"))
    add(Case("steps-not-int", fit("--steps", "abc"), msg="--steps"))
    add(Case("steps-missing-value", ["muon-fit", "image", "--image", IMG, "--steps"], msg="--steps"))
    add(Case("width-0", fit("--width", "0"), msg="width must be >= 1"))
    add(Case("width-negative", fit("--width", "-3"), msg="width must be >= 1"))
    # memory (issue 27): estimated against what this process can get, refused before any work
    add(Case("width-20000", fit("--width", "20000"), msg="--width 20000 with --num-layers 5"))
    add(Case("batch-size-0", fit("--batch-size", "0"), msg="--batch-size must be >= 1"))
    add(
        Case(
            "batch-size-huge",
            fit("--batch-size", "100000", "--run-name", "b"),
            exit=(0, 2),
            allow=("outputs/image/b",),
            note="edge: a batch larger than the 256 pixels",
        )
    )
    add(Case("num-layers-1", fit("--num-layers", "1"), msg="num_layers counts first and last layer"))
    add(
        Case(
            "num-layers-2-muon",
            fit("--num-layers", "2", "--optimizer", "muon"),
            msg="no hidden weight matrix",
        )
    )
    add(Case("lr-0", fit("--lr", "0"), msg="--lr must be > 0"))
    add(Case("lr-negative", fit("--lr", "-1e-3"), msg="--lr must be > 0"))
    add(Case("lr-nan", fit("--lr", "nan"), msg="--lr must be > 0"))
    add(Case("muon-lr-0", fit("--muon-lr", "0"), msg="--muon-lr must be > 0"))
    add(Case("eval-every-0", fit("--eval-every", "0"), msg="--eval-every and --rank-every must be >= 1"))
    add(Case("checkpoint-every-negative", fit("--checkpoint-every", "-1"), msg="--checkpoint-every"))
    add(Case("eta-min-negative", fit("--eta-min", "-1e-4"), msg="--eta-min"))
    add(Case("momentum-1.5", fit("--momentum", "1.5"), msg="momentum"))
    add(Case("ns-steps-0", fit("--ns-steps", "0"), msg="--ns-steps must be in 1..99"))
    add(Case("omega-0-siren", fit("--arch", "siren", "--omega", "0"), msg="omega"))
    add(Case("gauss-a-0", fit("--arch", "gauss", "--gauss-a", "0"), msg="gauss"))
    add(Case("pe-frequencies-0", fit("--arch", "relu_pe", "--pe-frequencies", "0"), msg="--pe-frequencies"))
    add(Case("ff-features-0", fit("--arch", "relu_ff", "--ff-features", "0"), msg="--ff-features"))
    add(Case("hash-table-40", fit("--arch", "hash", "--hash-log2-table-size", "40"), msg="1 to 30"))
    add(Case("arch-unknown", fit("--arch", "nope"), msg="--arch"))
    add(Case("optimizer-unknown", fit("--optimizer", "sgd"), msg="--optimizer"))
    add(Case("activation-unknown", fit("--activation", "tanh"), msg="--activation"))
    add(Case("unknown-flag", fit("--no-such-flag"), msg="--no-such-flag"))
    add(Case("no-task", ["muon-fit"], msg="first argument must be a task"))
    add(Case("task-unknown", ["muon-fit", "video"], msg="first argument must be a task"))
    add(Case("profile-unknown", fit("--profile", "nope"), msg="--profile must be one of"))
    add(
        Case(
            "preset-and-profile",
            fit("--preset", f"{D}/preset_ok.json", "--profile", "cpu"),
            msg="give --profile or --preset, not both",
        )
    )
    add(Case("preset-missing-value", ["muon-fit", "image", "--preset"], msg="Missing value for argument"))
    # --- presets ------------------------------------------------------------------------------
    add(Case("preset-missing", fit("--preset", f"{D}/missing.json"), msg="preset not found"))
    add(Case("preset-not-json", fit("--preset", f"{D}/preset_corrupt.json"), msg="cannot read preset"))
    add(Case("preset-binary", fit("--preset", f"{D}/img16.png"), msg="cannot read preset"))
    add(Case("preset-list", fit("--preset", f"{D}/preset_list.json"), msg="is not a muon-nerf preset"))
    add(Case("preset-other-task", fit("--preset", f"{D}/preset_sdf.json"), msg="is for task 'sdf'"))
    add(Case("preset-unknown-key", fit("--preset", f"{D}/preset_unknown.json"), msg="unknown setting"))
    add(Case("preset-wrong-type", fit("--preset", f"{D}/preset_type.json"), msg="must be int"))
    add(Case("preset-bad-arch", fit("--preset", f"{D}/preset_arch.json"), msg="field.arch must be one of"))
    add(
        Case(
            "preset-null-steps",
            [
                "muon-fit",
                "image",
                "--image",
                IMG,
                "--width",
                "8",
                "--no-progress",
                "--preset",
                f"{D}/preset_null.json",
            ],
            msg="steps",
            note="no --steps flag, so the preset's null is what the fit gets",
        )
    )
    add(
        Case(
            "preset-null-lr",
            fit("--preset", f"{D}/preset_null_lr.json", "--run-name", "n"),
            exit=(0,),
            expect=("outputs/image/n/metrics.json",),
            note="null is an unset lr: resolved from the tuned table, and the learning-rates line says so",
        )
    )
    add(
        Case(
            "preset-unreadable",
            ["unshare", "-U", *fit("--preset", "p.json")],
            msg="Permission denied",
            setup=steps(copy(f"{D}/preset_ok.json", "p.json"), chmod("p.json", 0)),
        )
    )
    # a preset never names, moves or replaces a run, and is checked like flags (issue 27)
    add(
        Case(
            "preset-sets-overwrite",
            fit("--preset", f"{D}/preset_overwrite.json"),
            msg="sets 'overwrite'",
            setup=steps(
                copy(f"{D}/imagerun", "outputs/image/victim"), write("outputs/image/victim/notes.txt", NOTE)
            ),
            check=file_has("outputs/image/victim/notes.txt", NOTE),
        )
    )
    add(
        Case(
            "preset-sets-output-dir", fit("--preset", f"{D}/preset_output_dir.json"), msg="sets 'output_dir'"
        )
    )
    add(
        Case(
            "preset-bad-scheduler",
            fit("--preset", f"{D}/preset_scheduler.json"),
            msg="fit.scheduler must be one of",
        )
    )
    add(
        Case("preset-steps-list", fit("--preset", f"{D}/preset_steps_list.json"), msg="fit.steps must be int")
    )
    add(Case("preset-image-object", fit("--preset", f"{D}/preset_image_dict.json"), msg="data.image must be"))
    add(
        Case(
            "preset-audio-duration-string",
            [
                "muon-fit",
                "audio",
                "--audio",
                f"{D}/tone.wav",
                "@tiny",
                "--preset",
                f"{D}/preset_duration.json",
            ],
            msg="data.duration must be float or null",
        )
    )
    # --- outputs -------------------------------------------------------------------------------
    add(Case("run-name-slash", fit("--run-name", "a/b"), msg="--run-name must be a plain folder name"))
    add(Case("run-name-dotdot", fit("--run-name", ".."), msg="--run-name must be a plain folder name"))
    add(Case("run-name-empty", fit("--run-name", ""), msg="--run-name must be a plain folder name"))
    add(
        Case(
            "output-dir-under-file",
            fit("--output-dir", "afile/out"),
            msg="cannot write to output folder",
            setup=write("afile", "x"),
        )
    )
    add(
        Case(
            "output-dir-readonly-root",
            fit("--output-dir", "ro", "--run-name", "r"),
            exit=(0,),
            setup=mkdir("ro", 0o555),
            expect=("ro/image/r/metrics.json",),
            note="as root: a 555 folder does not stop root writing, so the run is written (correctly)",
        )
    )
    add(
        Case(
            "output-dir-readonly",
            ["unshare", "-U", *fit("--output-dir", "ro")],
            msg="cannot write to output folder",
            setup=mkdir("ro", 0o555),
            note="unshare -U: root without capabilities, so the 555 folder applies",
        )
    )
    first = prerun(*fit("--run-name", "r"))
    add(
        Case(
            "run-name-twice",
            fit("--run-name", "r"),
            msg="already exists",
            setup=steps(first, write("outputs/image/r/notes.txt", NOTE)),
            check=file_has("outputs/image/r/notes.txt", NOTE),
        )
    )
    add(
        Case(
            "run-name-overwrite",
            fit("--run-name", "r", "--overwrite"),
            exit=(0,),
            after="run-name-twice",
            may_change=("outputs/image/r", "outputs/image/r/*"),
            expect=("outputs/image/r/metrics.json",),
            note="--overwrite replaces the run folder whole, the user's notes.txt in it too (documented)",
        )
    )
    add(
        Case(
            "run-name-is-file-overwrite",
            fit("--run-name", "r", "--overwrite"),
            msg="exists and is not a folder",
            setup=write("outputs/image/r", NOTE),
            check=file_has("outputs/image/r", NOTE),
        )
    )
    # --- devices -------------------------------------------------------------------------------
    add(Case("device-cuda", fit("--device", "cuda"), msg="CUDA is not available"))
    add(Case("pe-frequencies-1000", fit("--arch", "relu_pe", "--pe-frequencies", "1000"), msg="in 1..24"))
    add(Case("ff-sigma-inf", fit("--arch", "relu_ff", "--ff-sigma", "inf"), msg="--ff-sigma finite"))
    add(Case("device-cuda7", fit("--device", "cuda:7"), msg="CUDA is not available"))
    add(Case("device-foo", fit("--device", "foo"), msg="--device must be cpu, cuda or cuda:N"))
    add(Case("device-mps", fit("--device", "mps"), msg="MPS is not available"))
    # --- divergence ---------------------------------------------------------------------------
    add(Case("diverge-lr", fit("--optimizer", "adam", "--lr", "1e6"), msg="at step"))
    add(Case("diverge-lr-inf", fit("--optimizer", "adam", "--lr", "inf"), msg="Invalid learning rate: inf"))
    add(Case("diverge-muon-lr", fit("--muon-lr", "1e6"), msg="at step"))
    add(
        Case(
            "diverge-compare-muon-half",
            fit("--compare", "--muon-lr", "1e6", "--run-name", "c"),
            msg="finish it with",
            allow=("outputs/image/c.incomplete",),
            check=kept_checkpoint("outputs/image/c.incomplete"),
            note="the finished Adam half is kept in c.incomplete (documented)",
        )
    )
    add(
        Case(
            "resume-diverged-lower-muon-lr",
            ["muon-fit", "image", "--resume", "outputs/image/c.incomplete", "--muon-lr", "0.05"],
            exit=(0,),
            after="diverge-compare-muon-half",
            gone=("outputs/image/c.incomplete",),
            expect=("outputs/image/c/comparison.json",),
        )
    )
    # early, one-line refusals (issue 27): a diverging long fit stops at its first evaluation
    add(
        Case(
            "diverge-long-stops-early",
            ["muon-fit", "image", "--image", IMG, "--width", "8", "--steps", "100000", "--eval-every", "5"]
            + ["--no-progress", "--muon-lr", "1e6"],
            msg=("at step 5 ", "at step 5;"),
            timeout=60,
            note="100000 steps: the check at the first evaluation, not the last",
        )
    )
    add(Case("image-too-small-for-ssim", fit("--image", f"{D}/thin.png"), msg="need at least 11×11"))
    add(Case("image-bomb", fit("--image", f"{D}/bomb.png"), msg="900000000 pixels"))
    add(Case("image-bomb-warning", fit("--image", f"{D}/bomb_warn.png"), msg="100000000 pixels"))
    add(Case("image-bomb-tiff", fit("--image", f"{D}/bomb.tif"), msg="900000000 pixels"))
    add(Case("run-name-too-long", fit("--run-name", "a" * 240), msg="--run-name is 240 bytes long"))
    add(Case("run-name-newline", fit("--run-name", "a\nb"), msg="--run-name must be printable"))
    # --- other tasks ---------------------------------------------------------------------------
    audio = ["muon-fit", "audio", "@tiny"]
    add(Case("audio-missing", [*audio, "--audio", f"{D}/missing.wav"], msg="audio file not found"))
    add(Case("audio-not-given", audio, msg="--audio PATH is required"))
    add(Case("audio-is-png", [*audio, "--audio", IMG], msg="cannot read audio"))
    add(Case("audio-empty-file", [*audio, "--audio", f"{D}/empty.wav"], msg="cannot read audio"))
    add(Case("audio-silent", [*audio, "--audio", f"{D}/silent.wav"], msg="is silent"))
    add(Case("audio-nan", [*audio, "--audio", f"{D}/nan.wav"], msg="NaN or infinite"))
    add(
        Case(
            "audio-duration-0", [*audio, "--audio", f"{D}/tone.wav", "--duration", "0"], msg="--duration > 0"
        )
    )
    for flag in ("--duration", "--offset", "--coordinate-scale"):
        add(
            Case(
                f"audio{flag[1:]}-inf",
                [*audio, "--audio", f"{D}/tone.wav", flag, "inf"],
                msg=f"{flag} must be a finite number",
            )
        )
    add(Case("audio-offset-past-end", [*audio, "--audio", f"{D}/tone.wav", "--offset", "100"], msg="samples"))
    add(
        Case(
            "audio-coordinate-scale-0",
            [*audio, "--audio", f"{D}/tone.wav", "--coordinate-scale", "0"],
            msg="--coordinate-scale",
        )
    )  # noqa: E501
    add(
        Case(
            "audio-stereo",
            [*audio, "--audio", f"{D}/stereo.wav", "--run-name", "s"],
            exit=(0,),
            msg=None,
            expect=("outputs/audio/s/reconstruction.wav",),
            check=warns_if_written("audio-stereo", "fitting their average"),
        )
    )
    add(
        Case(
            "audio-unreadable",
            ["unshare", "-U", *audio, "--audio", "a.wav"],
            msg="cannot read audio",
            setup=steps(copy(f"{D}/tone.wav", "a.wav"), chmod("a.wav", 0)),
        )
    )
    ct = ["muon-fit", "ct", "@tiny"]
    add(Case("ct-missing", [*ct, "--image", f"{D}/missing.png"], msg="image not found"))
    add(Case("ct-is-wav", [*ct, "--image", f"{D}/tone.wav"], msg="cannot read image"))
    add(Case("ct-corrupt", [*ct, "--image", f"{D}/corrupt.png"], msg="cannot read image"))
    add(
        Case(
            "ct-projections-0", [*ct, "--image", IMG, "--projections", "0"], msg="--projections must be >= 1"
        )
    )
    add(Case("ct-projections-100000", [*ct, "--projections", "100000"], msg="--projections 100000 on a"))
    add(Case("ct-tau-0", [*ct, "--image", IMG, "--noise", "--tau", "0"], msg="--tau must be > 0"))
    add(Case("ct-tau-inf", [*ct, "--image", IMG, "--noise", "--tau", "inf"], msg="--tau must be a finite"))
    add(
        Case(
            "ct-readout-sigma-nan",
            [*ct, "--image", IMG, "--noise", "--readout-sigma", "nan"],
            msg="--readout-sigma must be a finite",
        )
    )
    add(Case("ct-too-small-for-ssim", [*ct, "--image", f"{D}/thin.png"], msg="need at least 11×11"))
    sisr = ["muon-fit", "sisr", "@tiny"]
    add(Case("sisr-missing", [*sisr, "--image", f"{D}/missing.png"], msg="image not found"))
    add(Case("sisr-corrupt", [*sisr, "--image", f"{D}/truncated.png"], msg="cannot read image"))
    add(Case("sisr-scale-1", [*sisr, "--image", IMG, "--scale", "1"], msg="--scale must be an integer >= 2"))
    add(Case("sisr-scale-not-dividing", [*sisr, "--image", IMG, "--scale", "3"], msg="does not divide"))
    add(
        Case(
            "sisr-scale-to-1px",
            [*sisr, "--image", IMG, "--scale", "16", "--run-name", "s"],
            exit=(0, 2),
            allow=("outputs/sisr/s",),
            note="edge: the field sees a 1×1 image",
        )
    )
    add(
        Case(
            "script-fit-image-missing",
            ["python", "$R/scripts/fit_image.py", "--image", f"{D}/missing.png"],
            msg="image not found",
        )
    )  # noqa: E501

    # --- resume --------------------------------------------------------------------------------
    add(Case("resume-missing", ["muon-fit", "image", "--resume", "$T/nowhere"], msg="no unfinished run"))
    add(Case("resume-no-value", ["muon-fit", "image", "--resume"], msg="Missing value for argument"))
    add(
        Case(
            "resume-finished-run",
            ["muon-fit", "image", "--resume", "outputs/image/r.incomplete"],
            msg="is already complete",
            setup=prerun(*fit("--run-name", "r")),
        )
    )
    add(
        Case(
            "resume-run-folder",
            ["muon-fit", "image", "--resume", "outputs/image/r"],
            msg="not an unfinished muon-nerf run",
            setup=prerun(*fit("--run-name", "r")),
        )
    )
    # --- interrupts (and the resumes they allow) -----------------------------------------------
    ckpt = ["muon-fit", "image", "--image", IMG, "@ckpt", "--run-name", "r"]
    add(
        Case(
            "reference-uninterrupted",
            ckpt,
            exit=(0,),
            expect=("outputs/image/r/metrics.json",),
            note="the run the interrupted ones must reproduce",
        )
    )
    first_ckpt = "outputs/image/r.incomplete/checkpoints/*.pt"
    add(
        Case(
            "sigint-after-checkpoint",
            ckpt,
            exit=(130,),
            msg="interrupted: kept outputs/image/r.incomplete",
            interrupt=Interrupt(signal.SIGINT, glob=first_ckpt),
            allow=("outputs/image/r.incomplete",),
            check=kept_checkpoint("outputs/image/r.incomplete"),
        )
    )
    resume = ["muon-fit", "image", "--resume", "outputs/image/r.incomplete", "--no-progress"]
    add(
        Case(
            "resume-after-sigint",
            resume,
            exit=(0,),
            after="sigint-after-checkpoint",
            gone=("outputs/image/r.incomplete",),
            expect=("outputs/image/r/metrics.json",),
            check=same_metrics("outputs/image/r", "reference-uninterrupted"),
        )
    )
    add(
        Case(
            "sigterm-after-checkpoint",
            ckpt,
            exit=(143,),
            msg="terminated: kept outputs/image/r.incomplete",
            interrupt=Interrupt(signal.SIGTERM, glob=first_ckpt),
            allow=("outputs/image/r.incomplete",),
            check=kept_checkpoint("outputs/image/r.incomplete"),
        )
    )
    add(
        Case(
            "resume-changed-steps",
            [*resume, "--steps", "999"],
            msg="cannot change fit.steps",
            after="sigterm-after-checkpoint",
        )
    )
    add(
        Case(
            "resume-with-preset",
            [*resume, "--preset", f"{D}/preset_ok.json"],
            msg="drop --preset/--profile",
            after="sigterm-after-checkpoint",
        )
    )
    add(
        Case(
            "resume-planted-parents",
            resume,
            exit=(0,),
            after="sigterm-after-checkpoint",
            setup=steps(
                mkdir("mine/empty"), plant_parents("outputs/image/r.incomplete", ["mine/empty", "mine"])
            ),
            gone=("outputs/image/r.incomplete",),
            expect=("outputs/image/r/metrics.json", "mine/empty"),
            note="progress.json lists the user's empty folders as created_parents: never removed",
        )
    )
    add(
        Case(
            "resume-sdf-of-image-run",
            ["muon-sdf", "fit", "--resume", "outputs/image/r.incomplete"],
            msg="is a image run, not sdf",
            after="sigterm-after-checkpoint",
        )
    )
    add(
        Case(
            "resume-owner-running",
            resume,
            msg="belongs to a run still in progress",
            after="sigterm-after-checkpoint",
            setup=hold_lock("outputs/image/r.incomplete"),
            may_change=(),
        )
    )
    add(
        Case(
            "resume-owner-on-another-host",
            resume,
            exit=(0,),
            after="sigterm-after-checkpoint",
            setup=edit_json(
                "outputs/image/r.incomplete/progress.json", ("owner",), {"pid": 1, "host": "elsewhere"}
            ),
            gone=("outputs/image/r.incomplete",),
            expect=("outputs/image/r/metrics.json",),
            note="written on another host, which no longer runs it: resumable here (ownership is the lock)",
        )
    )
    add(
        Case(
            "resume-corrupt-checkpoint",
            resume,
            msg="corrupted or truncated",
            after="sigterm-after-checkpoint",
            setup=lambda cwd, ctx: (
                [
                    p.write_bytes(b"garbage")
                    for p in (cwd / "outputs/image/r.incomplete").glob("checkpoints/*.pt")
                ]
                and None
            ),
        )
    )
    add(
        Case(
            "resume-corrupt-progress",
            resume,
            msg="not an unfinished muon-nerf run",
            after="sigterm-after-checkpoint",
            setup=write("outputs/image/r.incomplete/progress.json", "{"),
        )
    )
    # a checkpoint is what was written, or refused (issue 27)
    ckpts = "outputs/image/r.incomplete/checkpoints/*.pt"
    add(
        Case(
            "resume-flipped-checkpoint-byte",
            resume,
            msg="SHA-256 differs",
            after="sigterm-after-checkpoint",
            setup=flip_bytes(ckpts),
            note="one byte flipped inside a weight resumed and ended 1 dB lower",
        )
    )
    add(
        Case(
            "resume-field-pt-as-checkpoint",
            resume,
            msg="not a muon-nerf saved fit state",
            after="sigterm-after-checkpoint",
            setup=copy_over(f"{D}/imagerun/field.pt", ckpts),
        )
    )
    add(
        Case(
            "resume-progress-other-width",
            resume,
            msg="does not fit the run's field",
            after="sigterm-after-checkpoint",
            setup=edit_json("outputs/image/r.incomplete/progress.json", ("config", "field", "width"), 16),
        )
    )
    add(
        Case(
            "resume-twice-at-once",
            resume,
            msg="belongs to a run still in progress",
            after="sigterm-after-checkpoint",
            setup=background(*resume, ready="resuming"),
            allow=("outputs/image/r", "outputs/image/r.incomplete"),
            may_change=("outputs/image/r.incomplete",),
            check=background_finished(same_metrics("outputs/image/r", "reference-uninterrupted")),
            note="the second --resume stops at once (the run's lock); the first finishes the run",
        )
    )
    add(
        Case(
            "resume-removes-dead-temporaries",
            resume,
            exit=(0,),
            after="sigterm-after-checkpoint",
            setup=steps(
                dead_temporary("outputs/image/r.incomplete/checkpoints", "muon.pt"),
                dead_temporary("outputs/image/r.incomplete", "progress.json"),
            ),
            gone=("outputs/image/r.incomplete",),
            expect=("outputs/image/r/metrics.json",),
            note="temporaries of a process SIGKILLed while it wrote a checkpoint",
        )
    )
    add(
        Case(
            "resume-after-sigterm",
            resume,
            exit=(0,),
            after="sigterm-after-checkpoint",
            gone=("outputs/image/r.incomplete",),
            expect=("outputs/image/r/metrics.json",),
            check=same_metrics("outputs/image/r", "reference-uninterrupted"),
        )
    )
    for gap in (0.001, 0.02):
        add(
            Case(
                f"sigterm-twice-{gap * 1000:g}ms",
                ckpt,
                exit=(143,),
                msg="terminated: kept outputs/image/r.incomplete",
                interrupt=Interrupt(signal.SIGTERM, glob=first_ckpt, repeat=2, gap=gap),
                allow=("outputs/image/r.incomplete",),
                check=kept_checkpoint("outputs/image/r.incomplete"),
                note="a second SIGTERM during the cleanup: the line still says what was kept",
            )
        )
    add(
        Case(
            "stdout-closed-by-head",
            ["python", "-c", PIPE_HEAD, *fit("--run-name", "p")],
            exit=(141,),
            msg="broken pipe",
            allow=("outputs/image/p",),
            note="muon-fit … | head -1: stopped where the pipe broke, or the run complete (said so)",
        )
    )
    add(
        Case(
            "disk-full-at-start",
            ["prlimit", "--fsize=1000", *fit("--run-name", "r")],
            msg=("File too large", "No space left"),
            note="writes over 1000 bytes fail (RLIMIT_FSIZE), as on a full disk: progress.json first",
        )
    )
    add(
        Case(
            "overwrite-incomplete-without-progress",
            fit("--run-name", "r", "--overwrite"),
            exit=(0,),
            setup=steps(
                mkdir("outputs/image/r.incomplete/checkpoints"), write("outputs/image/r.incomplete/lock", "")
            ),
            may_change=("outputs/image/r.incomplete",),
            gone=("outputs/image/r.incomplete",),
            expect=("outputs/image/r/metrics.json",),
            note="what a full disk at start left before: an .incomplete without progress.json",
        )
    )
    add(
        Case(
            "overwrite-symlinked-run",
            fit("--run-name", "linked", "--overwrite"),
            exit=(0,),
            setup=steps(copy(f"{D}/imagerun", "mine/run"), symlink("../../mine/run", "outputs/image/linked")),
            may_change=("outputs/image/linked",),
            gone=("outputs/image/.linked.old",),
            expect=("outputs/image/linked/metrics.json", "mine/run/metrics.json"),
            note="the link is replaced by the new run; the folder it pointed to is the user's, untouched",
        )
    )
    add(
        Case(
            "sigint-before-checkpoint",
            ["muon-fit", "image", "--image", IMG, "@ckpt", "--checkpoint-every", "0", "--steps", "1000000"],
            exit=(130,),
            msg="nothing was kept",
            interrupt=Interrupt(signal.SIGINT, stdout="image:", delay=0.5),
        )
    )
    add(
        Case(
            "sigint-during-startup",
            fit("--run-name", "r"),
            exit=(130,),
            msg="interrupted",
            interrupt=Interrupt(signal.SIGINT, delay=0.5),
            note="Ctrl-C while the command is still importing torch",
        )
    )
    add(
        Case(
            "sigkill-after-checkpoint",
            ckpt,
            exit=(-9,),
            interrupt=Interrupt(signal.SIGKILL, glob=first_ckpt),
            allow=("outputs/image/r.incomplete",),
            check=kept_checkpoint("outputs/image/r.incomplete"),
            note="SIGKILL cannot be handled: the checkpointed folder stays, resumable",
        )
    )
    add(
        Case(
            "new-run-beside-killed-run",
            fit("--run-name", "other"),
            exit=(0,),
            after="sigkill-after-checkpoint",
            expect=("outputs/image/other/metrics.json", "outputs/image/r.incomplete/progress.json"),
            note="the killed run's checkpoint is kept (resumable)",
        )
    )
    add(
        Case(
            "resume-after-sigkill",
            resume,
            exit=(0,),
            after="sigkill-after-checkpoint",
            gone=("outputs/image/r.incomplete",),
            expect=("outputs/image/r/metrics.json",),
            check=same_metrics("outputs/image/r", "reference-uninterrupted"),
        )
    )
    add(
        Case(
            "sigkill-before-checkpoint",
            ["muon-fit", "image", "--image", IMG, "@ckpt", "--checkpoint-every", "0", "--steps", "1000000"]
            + ["--run-name", "k"],
            exit=(-9,),
            interrupt=Interrupt(signal.SIGKILL, stdout="image:", delay=0.5),
            allow=("outputs/image/k.incomplete",),
            note="leaves an empty k.incomplete (nothing can clean up after SIGKILL)",
        )
    )
    add(
        Case(
            "new-run-cleans-empty-incomplete",
            fit("--run-name", "k2"),
            exit=(0,),
            after="sigkill-before-checkpoint",
            gone=("outputs/image/k.incomplete",),
            expect=("outputs/image/k2/metrics.json",),
        )
    )
    add(
        Case(
            "sigkill-while-staging",
            ["muon-fit", "image", "--image", f"{D}/img64.png", "@tiny", "--compare", "--run-name", "s"],
            exit=(-9,),
            interrupt=Interrupt(signal.SIGKILL, glob="outputs/image/.s.*.partial"),
            allow=("outputs/image/.s.*.partial", "outputs/image/s.incomplete"),
            expect=("outputs/image/.s.*.partial",),
            note="killed while the run's files are written: the staging folder stays",
        )
    )
    add(
        Case(
            "new-run-cleans-stage",
            fit("--run-name", "t"),
            exit=(0,),
            after="sigkill-while-staging",
            gone=("outputs/image/.s.*.partial",),
            expect=("outputs/image/t/metrics.json",),
        )
    )
    add(
        Case(
            "resume-after-staging-kill",
            ["muon-fit", "image", "--resume", "outputs/image/s.incomplete"],
            exit=(0,),
            after="sigkill-while-staging",
            gone=("outputs/image/s.incomplete", "outputs/image/.s.*.partial"),
            expect=("outputs/image/s/comparison.json",),
        )
    )
    add(
        Case(
            "dead-stage-and-leftover-cleaned",
            fit("--run-name", "new"),
            exit=(0,),
            setup=steps(fake_stage("outputs/image", "old"), mkdir("outputs/image/mine.partial")),
            gone=("outputs/image/.old.*.partial",),
            allow=("outputs/image/mine.partial",),
            expect=("outputs/image/new/metrics.json", "outputs/image/mine.partial"),
            note="a user's folder named *.partial (not a staging name) is never touched",
        )
    )

    # --- muon-sdf --------------------------------------------------------------------------------
    add(Case("sdf-no-mesh", ["muon-sdf", "fit", "@tinysdf"], msg="--mesh is required"))
    add(Case("sdf-mesh-missing", sdf("--mesh", f"{D}/missing.ply"), msg="mesh not found"))
    add(Case("sdf-mesh-corrupt", sdf("--mesh", f"{D}/corrupt.ply"), msg="cannot read mesh"))
    add(Case("sdf-mesh-is-png", sdf("--mesh", IMG), msg="cannot read mesh"))
    add(Case("sdf-mesh-point-cloud", sdf("--mesh", f"{D}/points.ply"), msg="has no triangles"))
    add(
        Case(
            "sdf-mesh-flat",
            sdf("--mesh", f"{D}/flat.ply", "--run-name", "f"),
            exit=(0, 2),
            allow=("outputs/sdf/f",),
            check=warns_if_written("sdf-mesh-flat", "not watertight"),
            note="one open triangle: fitting it with a warning, or refusing it, are both fine",
        )
    )
    add(Case("sdf-mesh-folder", sdf("--mesh", f"{D}/empty_dir"), msg=("mesh not found", "cannot read mesh")))
    add(
        Case(
            "sdf-mesh-unreadable",
            ["unshare", "-U", *sdf("--mesh", "m.ply")],
            msg=("Permission denied", "cannot read mesh"),
            setup=steps(copy(MESH, "m.ply"), chmod("m.ply", 0)),
        )
    )
    add(Case("sdf-mesh-nan-vertex", sdf("--mesh", f"{D}/nan_vertex.ply"), msg="non-finite"))
    add(Case("sdf-mesh-header-lies", sdf("--mesh", f"{D}/lying_header.ply"), msg="is truncated"))
    add(Case("sdf-margin-1.5", sdf("--margin", "1.5"), msg="--margin must be in [0, 1)"))
    add(Case("sdf-ray-votes-even", sdf("--ray-votes", "2"), msg="--ray-votes must be a positive odd number"))
    add(Case("sdf-eval-resolution-1", sdf("--eval-resolution", "1"), msg="--eval-resolution must be >= 8"))
    add(
        Case(
            "sdf-num-surface-0",
            sdf("--num-surface", "0", "--run-name", "n"),
            exit=(0, 2),
            allow=("outputs/sdf/n",),
            note="edge: no on-surface samples (near and uniform ones remain)",
        )
    )
    add(Case("sdf-profile-unknown", sdf("--profile", "nope"), msg="--profile must be one of: cpu, paper"))
    add(
        Case(
            "sdf-preset-and-profile",
            sdf("--profile", "paper", "--preset", f"{D}/preset_sdf.json"),
            msg="not both",
        )
    )
    add(Case("sdf-device-cuda", sdf("--device", "cuda"), msg="CUDA is not available"))
    add(Case("sdf-no-command", ["muon-sdf"], msg="first argument must be a command"))
    add(Case("sdf-command-unknown", ["muon-sdf", "frobnicate"], msg="first argument must be a command"))
    ex = ["muon-sdf", "extract", "--no-score", "--resolution", "8"]
    run = copy(f"{D}/sdfrun", "run")
    add(Case("extract-missing-run", [*ex, "--run", "$T/nowhere"], msg="run folder not found"))
    add(Case("extract-not-a-run", [*ex, "--run", "d"], msg="not a muon-sdf run", setup=mkdir("d")))
    add(Case("extract-chunk-0", [*ex, "--run", "run", "--chunk", "0"], msg="--chunk must be >= 1", setup=run))
    add(
        Case(
            "extract-resolution-1",
            ["muon-sdf", "extract", "--run", "run", "--resolution", "1"],
            msg="--resolution must be >= 2",
            setup=run,
        )
    )
    add(
        Case(
            "extract-resolution-huge",
            ["muon-sdf", "extract", "--run", "run", "--resolution", "5000", "--no-score"],
            msg="GiB",
            setup=run,
        )
    )
    add(Case("extract-device-cuda", [*ex, "--run", "run", "--device", "cuda"], msg="CUDA", setup=run))
    add(
        Case(
            "extract-iou-resolution-1",
            ["muon-sdf", "extract", "--run", "run", "--iou-resolutions", "1"],
            msg="--iou-resolutions",
            setup=run,
        )
    )
    add(
        Case(
            "extract-corrupt-field",
            [*ex, "--run", "run"],
            msg="cannot read field checkpoint",
            setup=steps(run, write("run/field.pt", b"not a checkpoint")),
        )
    )
    add(
        Case(
            "extract-truncated-field",
            [*ex, "--run", "run"],
            msg="cannot read field checkpoint",
            setup=steps(
                run,
                lambda cwd, ctx: (cwd / "run/field.pt").write_bytes(
                    (cwd / "run/field.pt").read_bytes()[:300]
                ),
            ),
        )
    )
    add(
        Case(
            "extract-no-normalization",
            [*ex, "--run", "run"],
            msg="normalization.json",
            setup=steps(run, remove("run/normalization.json")),
        )
    )
    add(
        Case(
            "extract-image-run",
            [*ex, "--run", "run"],
            msg=("not a muon-sdf run", "normalization.json"),
            setup=copy(f"{D}/imagerun", "run"),
            note="a 2D image run's field.pt",
        )
    )
    add(
        Case(
            "extract-readonly-run",
            ["unshare", "-U", *ex, "--run", "run"],
            msg=("cannot write", "Permission denied"),
            setup=steps(run, chmod("run", 0o555)),
        )
    )
    add(
        Case(
            "extract-output-exists",
            [*ex, "--run", "run"],
            msg="mesh_8.ply already exists",
            setup=steps(run, write("run/mesh_8.ply", NOTE)),
            check=file_has("run/mesh_8.ply", NOTE),
        )
    )
    # the field, its frame and the memory are what they say (issue 27)
    for name, keys, value, msg in (
        ("extract-normalization-scale-0", ("scale",), 0, "scale must be a finite number > 0"),
        ("extract-normalization-no-center", ("center",), None, "center must be a list of 3 numbers"),
        (
            "extract-normalization-center-nan",
            ("center",),
            [0, float("nan"), 0],
            "center must be finite",
        ),
    ):
        add(
            Case(
                name,
                [*ex, "--run", "run"],
                msg=msg,
                setup=steps(run, edit_json("run/normalization.json", keys, value)),
            )
        )
    add(
        Case(
            "extract-normalization-list",
            [*ex, "--run", "run"],
            msg="must be a JSON object",
            setup=steps(run, write("run/normalization.json", "[1, 2, 3]")),
        )
    )
    add(
        Case(
            "extract-compare-missing-muon",
            [*ex, "--run", "cmp"],
            msg="cmp/muon/field.pt",
            setup=steps(
                copy(f"{D}/sdfrun", "cmp/adam"), copy(f"{D}/sdfrun", "cmp/muon"), remove("cmp/muon/field.pt")
            ),
        )
    )
    add(
        Case(
            "extract-max-memory-more-than-there-is",
            ["muon-sdf", "extract", "--run", "run", "--resolution", "4096", "--max-memory-gb", "100000"],
            msg="--max-memory-gb 100000 is more than",
            setup=run,
        )
    )
    add(
        Case(
            "extract-max-memory-inf",
            [*ex, "--run", "run", "--max-memory-gb", "inf"],
            msg="--max-memory-gb must be a finite number",
            setup=run,
        )
    )
    add(
        Case(
            "extract-removes-dead-temporaries",
            [*ex, "--run", "run"],
            exit=(0,),
            setup=steps(run, dead_temporary("run", "mesh_8.ply")),
            gone=("run/.mesh_8.ply.*.tmp",),
            expect=("run/mesh_8.ply",),
            note="a temporary of an extraction SIGKILLed while it wrote",
        )
    )
    add(
        Case(
            "extract-racing-fit-overwrite",
            ["muon-sdf", "extract", "--no-score", "--resolution", "128", "--run", "outputs/sdf/s"],
            exit=(0, 2),
            msg="changed",
            setup=steps(
                copy(f"{D}/sdfrun", "outputs/sdf/s"), background(*sdf("--run-name", "s", "--overwrite"))
            ),
            allow=("outputs/sdf/s*", "outputs/sdf/.s.*.partial"),
            may_change=("outputs/sdf/s",),
            check=background_finished(mesh_of_its_field("outputs/sdf/s", 128)),
            note="a race: refused, or a mesh of the field beside it (never of the replaced one)",
        )
    )
    add(
        Case(
            "extract-ok",
            [*ex, "--run", "run"],
            exit=(0,),
            setup=run,
            expect=("run/mesh_8.ply", "run/extract_8.json"),
            note="control: a good extraction writes its files into the run",
        )
    )
    ev = ["muon-sdf", "eval", "@tinyeval"]
    add(
        Case(
            "eval-missing-mesh", [*ev, "--mesh-a", f"{D}/missing.ply", "--mesh-b", MESH], msg="mesh not found"
        )
    )
    add(
        Case(
            "eval-corrupt-mesh",
            [*ev, "--mesh-a", MESH, "--mesh-b", f"{D}/corrupt.ply"],
            msg="cannot read mesh",
        )
    )
    add(Case("eval-no-args", ["muon-sdf", "eval"], msg="--mesh-a"))
    add(
        Case(
            "eval-output-under-file",
            [*ev, "--mesh-a", MESH, "--mesh-b", f"{D}/ico.obj", "--output", "afile/m.json"],
            msg=("afile", "cannot write"),
            setup=write("afile", "x"),
        )
    )
    add(
        Case(
            "eval-ok",
            [*ev, "--mesh-a", MESH, "--mesh-b", f"{D}/ico.obj", "--output", "m.json"],
            exit=(0,),
            expect=("m.json",),
            note="control",
        )
    )
    evm = [*ev, "--mesh-a", MESH, "--mesh-b", f"{D}/ico.obj", "--output", "m.json"]
    add(
        Case(
            "eval-output-exists",
            evm,
            msg="m.json already exists",
            setup=write("m.json", NOTE),
            check=file_has("m.json", NOTE),
        )
    )
    add(
        Case(
            "eval-output-overwrite",
            [*evm, "--overwrite"],
            exit=(0,),
            setup=write("m.json", NOTE),
            may_change=("m.json",),
            note="control: --overwrite replaces it",
        )
    )
    add(
        Case(
            "script-fit-sdf-missing",
            ["python", "$R/scripts/fit_sdf.py", "--mesh", f"{D}/missing.ply"],
            msg="mesh not found",
        )
    )  # noqa: E501

    # --- muon-sweep -------------------------------------------------------------------------------
    add(Case("sweep-address-closed-port", sweep("--address", "127.0.0.1:1"), msg="nothing answers there"))
    add(Case("sweep-address-garbage", sweep("--address", "nonsense"), msg="--address must be HOST:PORT"))
    add(Case("sweep-grid-0x3", sweep("--grid", "0x3"), msg="--grid must look like 3x3"))
    add(Case("sweep-grid-abc", sweep("--grid", "abc"), msg="--grid must look like 3x3"))
    add(Case("sweep-grid-100000x100000", sweep("--grid", "100000x100000"), msg="(10000100000 trials) needs"))
    add(Case("sweep-lr-range-0", sweep("--lr-range", "0", "1"), msg="--lr-range must be two finite values"))
    add(Case("sweep-max-concurrent-0", sweep("--max-concurrent", "0"), msg="--max-concurrent must be >= 1"))
    add(Case("sweep-optimizer-unknown", sweep("--optimizers", "sgd"), msg="--optimizers"))
    add(Case("sweep-task-unknown", ["muon-sweep", "video"], msg="first argument must be a task"))
    add(Case("sweep-image-missing", sweep("--image", f"{D}/missing.png"), msg="image not found"))
    add(Case("sweep-device-cuda", sweep("--device", "cuda"), msg="CUDA is not available"))
    add(Case("sweep-sdf-no-mesh", ["muon-sweep", "sdf", "@tinysweep"], msg="--mesh is required"))
    add(Case("sweep-preset-corrupt", sweep("--preset", f"{D}/preset_corrupt.json"), msg="cannot read preset"))
    add(
        Case(
            "sweep-run-name-exists",
            sweep("--run-name", "r"),
            msg="already exists",
            setup=write("outputs/image/r/notes.txt", NOTE),
            check=file_has("outputs/image/r/notes.txt", NOTE),
        )
    )
    long_sweep = [
        *("muon-sweep", "image", "--image", IMG, "--width", "8", "--steps", "1000000", "--eval-every"),
        *("1000", "--rank-every", "1000", "--no-progress", "--grid", "1x1", "--run-name", "s"),
    ]
    add(
        Case(
            "sweep-sigterm-during-trials",
            long_sweep,
            exit=(143,),
            msg="nothing was written",
            interrupt=Interrupt(signal.SIGTERM, new_tmp="muon-sweep-ray-*", delay=10),
            timeout=300,
        )
    )
    add(
        Case(
            "sweep-sighup-during-trials",
            long_sweep,
            exit=(129,),
            msg="nothing was written",
            interrupt=Interrupt(signal.SIGHUP, new_tmp="muon-sweep-ray-*", delay=10),
            timeout=300,
            note="its terminal went away: stopped as by SIGTERM, Ray shut down",
        )
    )
    add(
        Case(
            "sweep-sigint-during-trials",
            long_sweep,
            exit=(130,),
            msg="nothing was written",
            interrupt=Interrupt(signal.SIGINT, new_tmp="muon-sweep-ray-*", delay=10),
            timeout=300,
        )
    )

    # --- ns-train muon-nerf ---------------------------------------------------------------------
    ns = ["ns-train", "muon-nerf", "--vis", "tensorboard", "--machine.device-type", "cpu"]
    add(Case("nerf-data-missing", [*ns, "--data", "/missing"], msg="data path /missing does not exist"))
    add(Case("nerf-data-file", [*ns, "--data", IMG], msg="is neither a folder nor a .json file"))
    add(Case("nerf-data-empty-folder", [*ns, "--data", f"{D}/empty_dir"], msg="transforms.json not found"))
    add(
        Case(
            "nerf-blender-without-subcommand",
            [*ns, "--data", SCENE],
            msg="put the blender-data subcommand after the flags",
        )
    )
    add(
        Case(
            "nerf-blender-missing-val",
            [*ns, "--data", f"{D}/scene_noval", "blender-data"],
            msg="transforms_val.json not found",
        )
    )
    add(Case("nerf-blender-data-file", [*ns, "--data", IMG, "blender-data"], msg="is not a folder"))
    add(
        Case(
            "nerf-corrupt-transforms-json",
            [*ns, "--data", f"{D}/corrupt.json", "--max-num-iterations", "2"],
            msg="corrupt.json",
            timeout=180,
        )
    )
    add(
        Case(
            "nerf-blender-corrupt-json",
            [*ns, "--data", f"{D}/scene_badjson", "--max-num-iterations", "2", "blender-data"],
            msg="transforms_train.json",
            timeout=180,
        )
    )
    # captures (nerfstudio-data): refused by muon_nerf.nerf.captures.check_capture before outputs/
    add(
        Case(
            "nerf-capture-missing-images",
            [*ns, "--data", f"{D}/capture_missing"],
            msg="17 of 67 images listed in",
            note="17 of the 67 listed images deleted",
        )
    )
    add(Case("nerf-capture-no-frames", [*ns, "--data", f"{D}/capture_empty"], msg="lists no frames"))
    add(
        Case(
            "nerf-capture-image-sizes-differ",
            [*ns, "--data", f"{D}/capture_sizes"],
            msg="frame_00002.png is 8×6 but",
        )
    )
    add(Case("nerf-capture-nan-pose", [*ns, "--data", f"{D}/capture_nan"], msg="has a non-finite pose"))
    add(
        Case(
            "nerf-capture-truncated-image",
            [*ns, "--data", f"{D}/capture_truncated/transforms.json"],
            msg="frame_00003.png cannot be decoded",
        )
    )
    add(
        Case(
            "nerf-device-cuda",
            [*ns[:-1], "cuda", "--data", SCENE, "--max-num-iterations", "2", "blender-data"],
            msg="CUDA",
            timeout=180,
        )
    )
    add(
        Case(
            "nerf-arch-unknown",
            [*ns, "--pipeline.model.field.arch", "nope", "--data", SCENE, "blender-data"],
            msg="arch",
            multiline_ok=True,
            note="nerfstudio's own parser (tyro) reports flag errors in a box",
        )
    )

    # --- scripts ---------------------------------------------------------------------------------
    bn = ["python", "$R/scripts/bench_nerf.py"]
    add(Case("bench-nerf-arch-unknown", [*bn, "--archs", "nope"], msg="unknown arch nope"))
    add(
        Case(
            "bench-nerf-full-cpu",
            [*bn, "--profile", "cpu", "--full"],
            msg="--full is a Blender gpu-profile option",
        )
    )
    add(
        Case(
            "bench-nerf-data-missing", [*bn, "--data", f"{D}/missing"], msg="transforms_train.json not found"
        )
    )
    add(Case("bench-nerf-device-cuda", [*bn, "--device", "cuda"], msg="no CUDA device"))
    add(Case("bench-nerf-no-seeds", [*bn, "--seeds"], msg="need at least one arch, optimizer and seed"))
    add(Case("bench-nerf-profile-unknown", [*bn, "--profile", "tpu"], msg="--profile"))
    add(
        Case(
            "bench-nerf-resume-mismatch",
            [*bn, "--dry-run", "--resume", "--output", "out"],
            msg="was measured with other settings",
            setup=write(
                "out/results.json",
                json.dumps({"config": {"profile": "gpu", "iterations": 2000, "scene": {}}, "runs": []}),
            ),
            check=lambda cwd, ctx: (
                []
                if (cwd / "out/results.json").read_text().startswith('{"config"')
                else ["data loss: results.json was rewritten"]
            ),
        )
    )
    add(
        Case(
            "bench-nerf-iterations-0",
            [*bn, "--dry-run", "--iterations", "0", "--output", "out"],
            msg="--iterations",
            timeout=300,
        )
    )
    bq = ["python", "$R/scripts/bench_quality.py", "--tasks", "--extra=--steps 2 --width 8"]
    add(
        Case(
            "bench-quality-image-missing",
            [*bq, "--images", f"{D}/missing.png", "--archs", "relu"],
            msg="image not found",
        )
    )  # noqa: E501
    add(Case("bench-quality-arch-unknown", [*bq, "--images", IMG, "--archs", "nope"], msg="arch"))
    add(Case("bench-speed-device-cuda", speed("--device", "cuda"), msg="CUDA"))
    add(Case("bench-speed-sizes-0", speed("--device", "cpu", "--sizes", "0"), msg="--sizes"))
    add(
        Case(
            "bench-speed-output-under-file",
            speed("--device", "cpu", "--output", "afile/speed.json"),
            msg=("afile", "cannot write"),
            setup=write("afile", "x"),
        )
    )
    data = ["python", "-m", "muon_nerf.nerf.data"]
    add(
        Case(
            "data-subset-missing-src",
            [*data, "subset", "--src", f"{D}/missing", "--out", "out"],
            msg="transforms_train.json not found",
        )
    )
    add(
        Case(
            "data-subset-src-is-file",
            [*data, "subset", "--src", IMG, "--out", "out"],
            msg="not found: expected a Blender-format scene",
        )
    )
    add(
        Case(
            "data-subset-stride-0",
            [*data, "subset", "--src", SCENE, "--out", "out", "--stride", "0"],
            msg="stride must be >= 1",
        )
    )  # noqa: E501
    add(Case("data-no-kind", data, msg="kind"))
    add(
        Case(
            "data-sphere-size-0",
            [*data, "sphere", "--out", "out", "--size", "0"],
            msg=("--size", "empty image"),
        )
    )
    add(
        Case(
            "data-subset-out-exists",
            [*data, "subset", "--src", SCENE, "--out", "out", "--views", "1", "--size", "8"],
            msg="is not a scene written by this command",
            setup=write("out/notes.txt", NOTE),
            check=file_has("out/notes.txt", NOTE),
            note="--out names a folder that holds the user's files",
        )
    )
    return c


# ---------------------------------------------------------------------------------------------
# data


def make_data(root: Path) -> None:
    """Every input the cases read, tiny, under ``root``."""
    import soundfile as sf
    import trimesh
    from PIL import Image

    root.mkdir(parents=True)
    y, x = np.mgrid[0:64, 0:64] / 64
    rgb = np.stack([np.sin(6 * x), np.cos(5 * y), x * y], -1) * 0.5 + 0.5
    Image.fromarray((rgb * 255).astype(np.uint8)).save(root / "img64.png")
    Image.fromarray((rgb[:16, :16] * 255).astype(np.uint8)).save(root / "img16.png")
    Image.fromarray((rgb[:1, :1] * 255).astype(np.uint8)).save(root / "img1x1.png")
    gray = (rgb[:16, :16, 0] * 65535).astype(np.uint16)
    Image.fromarray(gray).save(root / "gray16.png")
    import cv2

    cv2.imwrite(str(root / "rgb16.png"), (rgb[:16, :16, ::-1] * 65535).astype(np.uint16))
    rng = np.random.default_rng(0)
    import tifffile

    tile = rgb[:16, :16].astype(np.float32)
    tifffile.imwrite(root / "float01.tif", tile)
    tifffile.imwrite(root / "float_over1.tif", tile * 3)
    tifffile.imwrite(root / "float_nan.tif", np.where(tile > 0.9, np.nan, tile))
    Image.fromarray((tile[..., 0] * 1e6).astype(np.int32), "I").save(root / "int32.tif")
    deep = (np.concatenate([tile, tile[..., :1]], -1) * 65535).astype(np.uint16)
    tifffile.imwrite(root / "rgba16.tif", deep, extrasamples=["unassalpha"])
    rows = deep[..., ::3].astype(">u2").reshape(16, -1).view(np.uint8)  # gray+alpha, 16-bit
    idat = zlib.compress(b"".join(b"\x00" + row.tobytes() for row in rows))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", 16, 16, 16, 4, 0, 0, 0)
    png16 = chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    (root / "gray_alpha16.png").write_bytes(b"\x89PNG\r\n\x1a\n" + png16)
    (root / "corrupt.png").write_bytes(rng.bytes(400))
    Image.fromarray((rng.random((1, 4000)) * 255).astype(np.uint8)).save(root / "thin.png")
    for name, side in (("bomb.png", 30000), ("bomb_warn.png", 10000)):  # over 2× / 1× Pillow's limit
        head = chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
        body = zlib.compress(b"\x00" * (side + 1) * 50)  # 50 rows of a claimed 10⁸–9·10⁸ pixels
        (root / name).write_bytes(b"\x89PNG\r\n\x1a\n" + head + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    # a 16×16 TIFF whose tags claim 30000×30000 (tifffile reads TIFFs, not Pillow)
    tifffile.imwrite(root / "bomb.tif", np.zeros((16, 16), np.uint16))
    with tifffile.TiffFile(root / "bomb.tif") as tif:
        tags = [tif.pages[0].tags[name] for name in ("ImageWidth", "ImageLength")]
        places = [(tag.valueoffset, "<H" if tag.dtype == 3 else "<I") for tag in tags]
    data = bytearray((root / "bomb.tif").read_bytes())
    for offset, fmt in places:
        struct.pack_into(fmt, data, offset, 30000)
    (root / "bomb.tif").write_bytes(bytes(data))
    png = (root / "img16.png").read_bytes()
    (root / "truncated.png").write_bytes(png[: len(png) // 2])
    (root / "empty.png").write_bytes(b"")
    (root / "empty.wav").write_bytes(b"")
    os.mkfifo(root / "fifo.png")
    (root / "empty_dir").mkdir()

    t = np.arange(400) / 8000
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    sf.write(root / "tone.wav", tone, 8000)
    sf.write(root / "silent.wav", np.zeros(400, np.float32), 8000)
    sf.write(root / "stereo.wav", np.stack([tone, -tone * 0.5], 1), 8000)
    bad = tone.copy()
    bad[10] = np.nan
    sf.write(root / "nan.wav", bad, 8000, subtype="FLOAT")

    mesh = trimesh.creation.icosphere(subdivisions=1)
    mesh.export(root / "ico.ply")
    mesh.export(root / "ico.obj")
    trimesh.PointCloud(mesh.vertices).export(root / "points.ply")
    trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 2]]).export(root / "flat.ply")
    # a NaN vertex (trimesh's merge would drop it), and a header declaring 10⁹ faces for one
    (root / "nan_vertex.ply").write_bytes(
        ply_bytes(np.where(np.arange(len(mesh.vertices))[:, None] == 3, np.nan, mesh.vertices), mesh.faces)
    )
    (root / "lying_header.ply").write_bytes(ply_bytes(mesh.vertices, mesh.faces[:1], declared_faces=10**9))
    (root / "corrupt.ply").write_text("ply\nformat nonsense 9.9\nelement vertex banana\nend_header\n\x00\x01")
    (root / "corrupt.json").write_text("{this is not json")

    def preset(name: str, data: object) -> None:
        (root / name).write_text(json.dumps(data))

    fmt = "muon-nerf-preset/2"
    preset(
        "preset_ok.json",
        {"format": fmt, "task": "image", "optimizer": "muon", "config": {"fit": {"steps": 10}}},
    )
    preset("preset_sdf.json", {"format": fmt, "task": "sdf", "optimizer": "muon", "config": {}})
    preset("preset_unknown.json", {"format": fmt, "task": "image", "config": {"fit": {"stepz": 3}}})
    preset("preset_type.json", {"format": fmt, "task": "image", "config": {"fit": {"steps": "abc"}}})
    preset("preset_arch.json", {"format": fmt, "task": "image", "config": {"field": {"arch": "nope"}}})
    preset("preset_null.json", {"format": fmt, "task": "image", "config": {"fit": {"steps": None}}})
    preset("preset_null_lr.json", {"format": fmt, "task": "image", "config": {"optim": {"lr": None}}})
    preset("preset_list.json", [1, 2])
    preset(
        "preset_overwrite.json",
        {"format": fmt, "task": "image", "config": {"overwrite": True, "run_name": "victim"}},
    )
    preset("preset_output_dir.json", {"format": fmt, "task": "image", "config": {"output_dir": "elsewhere"}})
    preset(
        "preset_scheduler.json", {"format": fmt, "task": "image", "config": {"fit": {"scheduler": "banana"}}}
    )
    preset("preset_steps_list.json", {"format": fmt, "task": "image", "config": {"fit": {"steps": [1, 2]}}})
    preset(
        "preset_image_dict.json", {"format": fmt, "task": "image", "config": {"data": {"image": {"a": 1}}}}
    )
    preset("preset_duration.json", {"format": fmt, "task": "audio", "config": {"data": {"duration": "abc"}}})
    (root / "preset_corrupt.json").write_text("{not json")

    from muon_nerf.nerf.data import write_sphere_scene

    write_sphere_scene(root / "sphere", size=8, views={"train": 2, "val": 1, "test": 1})
    shutil.copytree(root / "sphere", root / "scene_noval")
    (root / "scene_noval/transforms_val.json").unlink()
    shutil.copytree(root / "sphere", root / "scene_badjson")
    (root / "scene_badjson/transforms_train.json").write_text("{")

    make_captures(root)

    env = env_for("data", root.parent)
    for argv in (
        [*Context(root.parent).argv(sdf("--run-name", "s")), "--output-dir", str(root / "runs")],
        [*Context(root.parent).argv(fit("--run-name", "i")), "--output-dir", str(root / "runs")],
    ):
        proc = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise SystemExit(f"making the test data failed: {shlex.join(argv)}\n{proc.stderr}")
    (root / "runs/sdf/s").rename(root / "sdfrun")
    (root / "runs/image/i").rename(root / "imagerun")
    shutil.rmtree(root / "runs")


def ply_bytes(vertices: np.ndarray, faces: np.ndarray, declared_faces: int | None = None) -> bytes:
    """A binary little-endian PLY; ``declared_faces`` puts another face count in its header."""
    count = len(faces) if declared_faces is None else declared_faces
    header = (
        f"ply\nformat binary_little_endian 1.0\nelement vertex {len(vertices)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        f"element face {count}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    body = np.asarray(vertices, "<f4").tobytes()
    body += b"".join(struct.pack("<B3i", 3, *map(int, f)) for f in faces)
    return header.encode() + body


def make_captures(root: Path) -> None:
    """Synthetic nerfstudio-data captures (8×8 PNGs), each broken in one way."""
    from PIL import Image

    from muon_nerf.nerf.captures import write_capture_scene

    def capture(name: str, views: int = 4) -> Path:
        return write_capture_scene(root / name, size=8, views=views, test_views=1)

    def edit(folder: Path, change: Callable[[dict], object]) -> None:
        meta = json.loads((folder / "transforms.json").read_text())
        change(meta)
        (folder / "transforms.json").write_text(json.dumps(meta))

    missing = capture("capture_missing", views=67)
    for i in range(12, 29):
        (missing / f"images/frame_{i:05d}.png").unlink()
    edit(capture("capture_empty"), lambda meta: meta.update(frames=[]))
    sizes = capture("capture_sizes")
    Image.open(sizes / "images/frame_00002.png").resize((8, 6)).save(sizes / "images/frame_00002.png")
    nan = capture("capture_nan")
    edit(nan, lambda meta: meta["frames"][1]["transform_matrix"][0].__setitem__(3, float("nan")))
    truncated = capture("capture_truncated") / "images/frame_00003.png"
    truncated.write_bytes(truncated.read_bytes()[:-30])


# ---------------------------------------------------------------------------------------------
# running


def snapshot(root: Path) -> dict[str, str]:
    """``{relative path: content hash | "dir" | "link" | "special"}`` of everything under root."""
    out: dict[str, str] = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        for name in dirnames:
            out[(base / name).relative_to(root).as_posix()] = "dir"
        for name in filenames:
            path = base / name
            rel = path.relative_to(root).as_posix()
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = "link"
            elif stat.S_ISREG(st.st_mode):
                out[rel] = hashlib.sha1(path.read_bytes()).hexdigest()
            else:
                out[rel] = "special"
    return out


def matches(rel: str, patterns: tuple[str, ...]) -> bool:
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatchcase(p, pat) for p in prefixes for pat in patterns)


def topmost(paths: set[str]) -> list[str]:
    return sorted(p for p in paths if not any(p.startswith(q + "/") for q in paths if q != p))


def has_progress(folder: Path) -> bool:
    return any(folder.glob("checkpoints/*.pt")) or any(folder.glob("finished/*.pt"))


def case_processes(marker: str, skip: int | None = None) -> list:
    import psutil

    found = []
    for proc in psutil.process_iter():
        if proc.pid in (os.getpid(), skip):
            continue
        try:
            if proc.environ().get("BAD_INPUTS_CASE") == marker and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


NOISE = (
    lambda line: line.startswith("warning:"),
    lambda line: re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\s+(WARNING|INFO)\s", line) is not None,  # Ray
)


def significant_lines(text: str) -> list[str]:
    """stderr lines that are not warnings (Python's ``file:line: XWarning: …`` and its source
    line, our ``warning: …`` lines, Ray's timestamped log lines)."""
    out, skip_indented = [], False
    for line in text.splitlines():
        if not line.strip():
            continue
        if re.match(r"^\S.*:\d+: \w*Warning: ", line):
            skip_indented = True
            continue
        if skip_indented and line.startswith((" ", "\t")):
            continue
        skip_indented = False
        if any(rule(line) for rule in NOISE):
            continue
        out.append(line)
    return out


def wait_trigger(
    proc: subprocess.Popen, it: Interrupt, cwd: Path, out: Path, tmp_before: set[str]
) -> str | None:
    """Wait for the trigger, then send the signal; None, or what went wrong."""
    deadline = time.monotonic() + it.wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"the command ended (exit {proc.returncode}) before the trigger"
        hit = False
        if it.glob is not None:
            hit = bool(globlib.glob(str(cwd / it.glob)))
        elif it.stdout is not None:
            hit = it.stdout in out.read_text(errors="replace")
        elif it.new_tmp is not None:
            hit = bool(set(globlib.glob(f"/tmp/{it.new_tmp}")) - tmp_before)
        else:
            hit = True
        if hit:
            time.sleep(it.delay)
            if proc.poll() is not None:
                return f"the command ended (exit {proc.returncode}) before the signal"
            os.kill(proc.pid, it.sig)
            for _ in range(it.repeat - 1):
                time.sleep(it.gap)
                if proc.poll() is None:
                    os.kill(proc.pid, it.sig)
            return None
        time.sleep(0.02)
    return "trigger not seen in time"


def default_signals() -> None:
    """In the child: SIGINT and SIGTERM as a terminal would deliver them (a shell running this
    script in the background passes SIGINT on as ignored, and Python then never raises
    KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def shorten(text: str, ctx: Context, limit: int = 160) -> str:
    text = text.replace(str(ctx.data), "$D").replace(str(ctx.tmp), "$T").replace(str(ROOT) + "/", "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_case(index: int, case: Case, ctx: Context) -> dict:
    cwd = ctx.tmp / "cases" / f"{index:03d}-{case.id}"
    logs = ctx.tmp / "logs"
    logs.mkdir(exist_ok=True)
    problems: list[str] = []
    if case.after is not None:
        if case.after not in ctx.workdirs:
            problems.append(f"setup: case {case.after} did not run")
            cwd.mkdir(parents=True)
        else:
            shutil.copytree(ctx.workdirs[case.after], cwd, symlinks=True)
    else:
        cwd.mkdir(parents=True)
    ctx.workdirs[case.id] = cwd
    if case.setup is not None:
        try:
            case.setup(cwd, ctx)
        except Exception as err:  # noqa: BLE001 - reported as the case's problem
            problems.append(f"setup failed: {err}")
    before, data_before = snapshot(cwd), snapshot(ctx.data)
    tmp_before = set(globlib.glob("/tmp/muon-sweep-ray-*"))
    marker = f"{os.getpid()}-{index}"
    out, err = logs / f"{index:03d}.out", logs / f"{index:03d}.err"
    t0 = time.monotonic()
    with out.open("w") as fo, err.open("w") as fe:
        proc = subprocess.Popen(
            ctx.argv(case.argv),
            cwd=cwd,
            env=env_for(marker, ctx.tmp),
            stdin=subprocess.DEVNULL,
            stdout=fo,
            stderr=fe,
            start_new_session=True,
            preexec_fn=default_signals,
        )
        if case.interrupt is not None:
            trouble = wait_trigger(proc, case.interrupt, cwd, out, tmp_before)
            if trouble:
                problems.append(f"interrupt: {trouble}")
        try:
            proc.wait(timeout=case.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            problems.append(f"timed out after {case.timeout:.0f} s")
    seconds = time.monotonic() - t0
    rc = proc.returncode
    stdout, stderr = out.read_text(errors="replace"), err.read_text(errors="replace")
    ctx.results[case.id] = {"stdout": stdout, "stderr": stderr, "exit": rc}

    # processes the command left running (Ray's, say): wait a little, then end them by pid
    leftovers: list[str] = []
    orphans = case_processes(marker, proc.pid)
    for _ in range(50):
        if not orphans:
            break
        time.sleep(0.2)
        orphans = case_processes(marker, proc.pid)
    for p in orphans:
        try:
            name = p.name()
            p.kill()
        except Exception:  # noqa: BLE001 - already gone
            name = "?"
        leftovers.append(f"process {name} ({p.pid})")
    for path in sorted(set(globlib.glob("/tmp/muon-sweep-ray-*")) - tmp_before):
        leftovers.append(path)

    after, data_after = snapshot(cwd), snapshot(ctx.data)
    success = rc == 0
    new = set(after) - set(before)
    allowed = case.allow + case.expect
    if not success or 0 not in case.exit:
        kept = [q for q in after if matches(q, allowed)]
        stray = {p for p in new if not matches(p, allowed) and not any(q.startswith(p + "/") for q in kept)}
        leftovers += topmost(stray)
    for rel, kind in after.items():
        name = rel.rsplit("/", 1)[-1]
        if kind != "dir" or matches(rel, case.allow):
            continue
        if name.endswith(".partial") and name.startswith(".") and rel not in leftovers:
            leftovers.append(rel)
        elif name.endswith(".incomplete") and rel not in leftovers:
            if not has_progress(cwd / rel) or (success and rel in new):
                leftovers.append(rel)
    lost = {p for p in before if (p not in after or after[p] != before[p])}
    lost = {p for p in lost if not matches(p, case.may_change + case.gone)}
    for p in topmost(lost):
        problems.append(f"data loss: {p} {'removed' if p not in after else 'changed'}")
    changed_data = {p for p in set(data_before) | set(data_after) if data_before.get(p) != data_after.get(p)}
    for p in topmost(changed_data):
        problems.append(f"data loss: test data $D/{p} changed")
    for pattern in case.gone:
        if globlib.glob(str(cwd / pattern)):
            leftovers.append(f"{pattern} (should have been removed)")
    for pattern in case.expect:
        if not globlib.glob(str(cwd / pattern)):
            problems.append(f"missing output {pattern}")

    lines = [line for line in stderr.splitlines() if line.strip()]
    last = lines[-1].strip() if lines else ""
    traceback = "Traceback (most recent call last)" in stderr or "Traceback (most recent call last)" in stdout
    if rc not in case.exit:
        problems.append(f"exit {rc}, expected {' or '.join(map(str, case.exit))}")
    if traceback:
        problems.append("traceback")
    wanted = (case.msg,) if isinstance(case.msg, str) else case.msg
    where = stderr if case.multiline_ok else last
    if wanted and rc != 0 and not any(w in where for w in wanted):
        problems.append(f"message lacks {' / '.join(repr(w) for w in wanted)}")
    significant = significant_lines(stderr)
    if rc != 0 and not case.multiline_ok and len(significant) > 1:
        problems.append(f"{len(significant)} stderr lines, not one")
    if ".partial" in stderr and not any(".partial" in a for a in case.allow):
        problems.append("stderr names a hidden staging folder (.partial) instead of the run")
    if leftovers:
        problems.append("leftovers")
    if case.check is not None and not any(p.startswith("setup") for p in problems):
        try:
            problems += case.check(cwd, ctx)
        except Exception as err:  # noqa: BLE001
            problems.append(f"check failed: {type(err).__name__}: {err}")
    if not last and stdout.strip():
        last = "(stdout) " + stdout.strip().splitlines()[-1].strip()
    return {
        "index": index,
        "id": case.id,
        "program": case.program,
        "command": case.display(),
        "exit": rc,
        "expected_exit": list(case.exit),
        "expected_message": case.msg,
        "message": shorten(last, ctx),
        "traceback": traceback,
        "stderr_lines": len(significant),
        "leftovers": [shorten(p, ctx, 100) for p in leftovers],
        "violations": [shorten(p, ctx, 300) for p in problems],
        "verdict": "ok" if not problems else "VIOLATION",
        "seconds": round(seconds, 1),
        "note": case.note,
        "stderr_tail": [shorten(line, ctx, 300) for line in stderr.strip().splitlines()[-12:]],
    }


# ---------------------------------------------------------------------------------------------
# reporting


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(rows: list[dict], header: str) -> str:
    lines = [
        "| # | command | exit | message | traceback? | leftovers | verdict |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        left = ", ".join(r["leftovers"][:3]) + (" …" if len(r["leftovers"]) > 3 else "") or "none"
        verdict = "ok" if not r["violations"] else "**" + "; ".join(r["violations"]) + "**"
        note = f" ({r['note']})" if r["note"] else ""
        message = cell(r["message"]) or "—"
        lines.append(
            f"| {r['index']} | `{cell(r['command'])}`{cell(note)} | {r['exit']} | {message} "
            f"| {'yes' if r['traceback'] else 'no'} | {cell(left)} | {cell(verdict)} |"
        )
    return header + "\n".join(lines) + "\n"


def machine() -> str:
    try:
        torch = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch = "?"
    cpu = platform.processor() or platform.machine()
    return (
        f"{os.cpu_count()} CPU cores ({cpu}, {platform.system()} {platform.release()}), Python "
        f"{platform.python_version()}, torch {torch}, running as {'root' if os.geteuid() == 0 else 'a user'}"
    )


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        action="append",
        metavar="SUBSTRING",
        help="run the cases whose id or command contains it (repeatable); the cases they start from run too",
    )  # noqa: E501
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where bad_inputs.md/.json go (default: docs/results; with --only: nowhere)",
    )  # noqa: E501
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder ($T) for inspection")
    args = parser.parse_args()

    all_cases = cases()
    ids = [c.id for c in all_cases]
    if len(set(ids)) != len(ids):
        raise SystemExit("duplicate case ids")
    by_id = {c.id: c for c in all_cases}
    chosen = all_cases
    if args.only:
        wanted = {c.id for c in all_cases if any(s in c.id or s in c.display() for s in args.only)}
        for cid in list(wanted):
            while by_id[cid].after is not None:
                cid = by_id[cid].after
                wanted.add(cid)
            check_ref = {"resume-after-sigint", "resume-after-sigterm", "resume-after-sigkill"}
            if wanted & check_ref:
                wanted.add("reference-uninterrupted")
        chosen = [c for c in all_cases if c.id in wanted]
    if args.list:
        for i, c in enumerate(chosen, 1):
            print(f"{i:3d} {c.id:36s} {c.display()}")
        print(f"{len(chosen)} cases")
        return 0
    out_dir = args.out if args.out is not None else (None if args.only else ROOT / "docs" / "results")

    tmp = Path(tempfile.mkdtemp(prefix="bad-inputs-"))
    started = datetime.now()
    t0 = time.monotonic()
    print(f"$T = {tmp}; making the test data …", flush=True)
    ctx = Context(tmp)
    rows: list[dict] = []
    try:
        make_data(ctx.data)
        for i, case in enumerate(chosen, 1):
            row = run_case(i, case, ctx)
            rows.append(row)
            mark = "ok" if row["verdict"] == "ok" else "VIOLATION: " + "; ".join(row["violations"])
            print(
                f"[{i}/{len(chosen)}] {case.id} ({row['seconds']:.0f} s): exit {row['exit']}: {mark}",
                flush=True,
            )
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            for dirpath, dirnames, _ in os.walk(tmp):
                for d in dirnames:
                    with_write = Path(dirpath) / d
                    if not with_write.is_symlink():
                        with_write.chmod(0o755)
            shutil.rmtree(tmp, ignore_errors=True)
    minutes = (time.monotonic() - t0) / 60
    bad = [r for r in rows if r["violations"]]
    macros = "; ".join(f"`[{k[1:]}]` = `{' '.join(v)}`" for k, v in MACROS.items())
    header = (
        f"# Bad inputs and interrupts\n\n"
        f"Generated {started:%Y-%m-%d %H:%M} on {machine()}, in {minutes:.1f} min, by "
        f"`python scripts/bad_inputs.py` (regenerate with the same command; `--list` names the cases, "
        f"`--only SUBSTRING` runs some). {len(rows)} cases, {len(bad)} with a violation.\n\n"
        f"Each command ran as a subprocess in a fresh folder with `OMP_NUM_THREADS=1`; `$T` is the "
        f"script's temporary folder, `$D` = `$T/data` (tiny inputs it makes), {macros}. *message*: "
        f"the last non-empty stderr line. *leftovers*: paths a failing command created, staging "
        f"folders, `.incomplete` folders without a checkpoint, processes or Ray temp folders left "
        f"behind. A case violates its expectation when its exit status or message differs, it "
        f"printed a traceback or more than one non-warning stderr line, left something behind, "
        f"removed or changed a file that existed, or its output fails a check (16-bit kept, "
        f"resumed metrics equal to an uninterrupted run's).\n\n"
    )
    table = markdown(rows, header)
    if bad:
        table += "\n## Violations\n\n"
        for r in bad:
            table += f"- **{r['index']} `{r['id']}`**: {'; '.join(r['violations'])}\n"
            table += f"  - `{r['command']}` → exit {r['exit']}\n"
            for line in r["stderr_tail"][-6:]:
                table += f"  - `{cell(line)}`\n"
    print(table)
    if out_dir is not None:
        summary = {
            "generated": started.isoformat(timespec="seconds"),
            "machine": machine(),
            "minutes": round(minutes, 2),
            "command": "python scripts/bad_inputs.py",
            "macros": {k: v for k, v in MACROS.items()},
            "cases": len(rows),
            "violations": len(bad),
            "rows": rows,
        }
        atomic_write(out_dir / "bad_inputs.json", json.dumps(summary, indent=2, allow_nan=False) + "\n")
        atomic_write(out_dir / "bad_inputs.md", table)
        print(f"wrote {out_dir}/bad_inputs.md, bad_inputs.json")
    print(f"{len(rows)} cases in {minutes:.1f} min, {len(bad)} with a violation")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
