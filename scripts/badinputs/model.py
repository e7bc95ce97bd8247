"""What a bad-input case is and the pieces cases are built from (``scripts/bad_inputs.py``'s
model): a ``Case`` declares a command, what it must do (exit status, the last stderr line's
words, files that must or may appear, files it may change) and how to prepare and check it;
the builders here make those setups (``prerun``, ``copy``, ``fake_stage`` …) and checks
(``file_has``, ``same_metrics`` …). The table of cases is ``badinputs/cases.py``."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PROGRAMS = ("muon-fit", "muon-sdf", "muon-sweep", "muon-data", "ns-train")
SLOW_PROGRAMS = ("muon-sweep", "ns-train")
"""Programs whose every case takes tens of seconds (Ray's start, nerfstudio's import)."""
SLOW_TIMEOUT = 240.0
"""A case with a longer timeout than the default is a long one."""
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
    command's stdout, or a new entry of the temporary folder (``TMPDIR``) matches ``new_tmp``;
    after ``delay`` seconds."""

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
    timeout: float = SLOW_TIMEOUT
    note: str = ""
    multiline_ok: bool = False

    @property
    def slow(self) -> bool:
        """Left out by ``--skip-slow``: an interrupt, a sweep (Ray), ns-train, or a long timeout."""
        return self.interrupt is not None or self.program in SLOW_PROGRAMS or self.timeout > SLOW_TIMEOUT

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
