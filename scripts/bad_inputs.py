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
    python scripts/bad_inputs.py --skip-slow      # a quick pass: no interrupts, sweeps, ns-train

This file is the runner. The cases are one table in ``badinputs/cases.py`` (with the tiny data
they run on), built from the model and builders of ``badinputs/model.py``: a new case is one
``Case`` entry there.

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
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from badinputs.cases import cases, make_data  # noqa: E402
from badinputs.model import (  # noqa: E402
    MACROS,
    ROOT,
    Case,
    Context,
    Interrupt,
    env_for,
)


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
            hit = bool(set(globlib.glob(str(Path(tempfile.gettempdir()) / it.new_tmp))) - tmp_before)
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
    ray_tmp = str(Path(tempfile.gettempdir()) / "muon-sweep-ray-*")  # where the sweep's Ray keeps its files
    tmp_before = set(globlib.glob(ray_tmp))
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
    for path in sorted(set(globlib.glob(ray_tmp)) - tmp_before):
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
    parser.add_argument(
        "--skip-slow",
        action="store_true",
        help="leave out the slow cases (interrupts, sweeps, ns-train, long timeouts): a quick pass",
    )
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where bad_inputs.md/.json go (default: docs/results; with --only or --skip-slow: nowhere)",
    )  # noqa: E501
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder ($T) for inspection")
    args = parser.parse_args()

    all_cases = cases()
    ids = [c.id for c in all_cases]
    if len(set(ids)) != len(ids):
        raise SystemExit("duplicate case ids")
    by_id = {c.id: c for c in all_cases}
    wanted = {c.id for c in all_cases}
    if args.only:
        wanted = {c.id for c in all_cases if any(s in c.id or s in c.display() for s in args.only)}
    if args.skip_slow:
        wanted = {cid for cid in wanted if not by_id[cid].slow}
    for cid in list(wanted):  # the cases they start from run too
        while by_id[cid].after is not None:
            cid = by_id[cid].after
            wanted.add(cid)
    if wanted & {"resume-after-sigint", "resume-after-sigterm", "resume-after-sigkill"}:
        wanted.add("reference-uninterrupted")
    chosen = [c for c in all_cases if c.id in wanted]
    if args.list:
        for i, c in enumerate(chosen, 1):
            print(f"{i:3d} {c.id:36s} {c.display()}")
        print(f"{len(chosen)} cases")
        return 0
    partial = args.only or args.skip_slow
    out_dir = args.out if args.out is not None else (None if partial else ROOT / "docs" / "results")

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
