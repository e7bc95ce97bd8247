#!/usr/bin/env python3
"""The tuned-lr table from the sweeps: ``muon_nerf/assets/tuned_lrs.json`` and its Markdown view.

Reads every ``sweep.json`` under the given folders (default ``docs/results/sweeps``), groups the
sweeps by (task, arch), and picks for each optimizer the grid point whose worst signal is best
(maximin over the group's signals, e.g. seven tuning images; ties go to the better mean). A point
counts only if it finished (``ok``) on every signal of its group, so a learning rate that diverges
on one image is never a default. Why the worst signal and not the mean: the mean picked points
next to a cliff twice (Gauss at Muon lr 0.4 stalls on some images; audio with the Muon run's Adam
part at 3.2e-3 collapses on some clips), and a default must hold on the signal it has not seen.

    python3 scripts/tuned_lrs.py                  # rewrite the table and tuned.md from the sweeps
    python3 scripts/tuned_lrs.py --check          # fail if the shipped table is not what they give
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from muon_nerf.fit.errors import InputError, run_cli  # noqa: E402
from muon_nerf.runs.cli import cli  # noqa: E402
from muon_nerf.runs.io import atomic_write_bytes, write_json  # noqa: E402
from muon_nerf.runs.tuned import TUNED_FORMAT, TUNED_PATH  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class TunedArgs:
    sweeps: tuple[Path, ...] = (ROOT / "docs" / "results" / "sweeps",)
    """Folders searched (recursively) for sweep.json files."""
    table: Path = TUNED_PATH
    """The table the package reads."""
    markdown: Path = ROOT / "docs" / "results" / "sweeps" / "tuned.md"
    """Its human-readable view: per (task, arch) the chosen lrs, their mean metric and the sweeps."""
    check: bool = False
    """Write nothing; exit 1 if the table differs from what the sweeps give."""


@dataclass
class Point:
    """One grid point of one optimizer, over the sweeps of a group."""

    lr: float
    muon_lr: float | None
    values: dict[str, float]
    """signal → metric of a finished trial."""


def load_sweeps(folders: tuple[Path, ...]) -> list[tuple[Path, dict]]:
    files = sorted({p.resolve() for folder in folders for p in Path(folder).rglob("sweep.json")})
    if not files:
        raise InputError(f"no sweep.json under {', '.join(map(str, folders))}")
    sweeps = []
    for path in files:
        try:
            sweeps.append((path, json.loads(path.read_text())))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise InputError(f"cannot read {path}: {err}") from None
    return sweeps


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def choose(sweeps: list[tuple[Path, dict]]) -> tuple[list[dict], list[str]]:
    """The table's rows and their Markdown lines."""
    groups: dict[tuple[str, str], list[tuple[Path, dict]]] = defaultdict(list)
    for path, sweep in sweeps:
        groups[(sweep["task"], sweep["config"]["field"]["arch"])].append((path, sweep))
    rows, lines = [], []
    for (task, arch), members in sorted(groups.items()):
        modes = {s["mode"] for _, s in members}
        metrics = {s["primary_metric"] for _, s in members}
        if len(modes) != 1 or len(metrics) != 1:
            raise InputError(f"the {task}/{arch} sweeps disagree on their metric: {sorted(metrics)}")
        mode, metric = modes.pop(), metrics.pop()
        budgets = sorted({budget(s) for _, s in members})
        if len(budgets) != 1:
            raise InputError(
                f"the {task}/{arch} sweeps trained for different budgets ({', '.join(map(str, budgets))} "
                "iterations): a row compares grid points at one budget; give one budget's sweeps"
            )
        signals = {signal_key(p, s) for p, s in members}
        best = {name: best_point(members, name, signals, mode) for name in ("adam", "muon")}
        if best["adam"] is None or best["muon"] is None:
            raise InputError(f"{task}/{arch}: no grid point finished on every signal for both optimizers")
        adam, muon = best["adam"], best["muon"]
        rows.append(
            {
                "task": task,
                "arch": arch,
                "adam_lr": adam.lr,
                "muon_adam_lr": muon.lr,
                "muon_lr": muon.muon_lr,
                "sources": [relative(p) for p, _ in members],
            }
        )
        names = ", ".join(sorted({signal_name(p, s) for p, s in members}))
        lines.append(
            f"| {task} | {arch} | {adam.lr:.3g} | {muon.lr:.3g} | {muon.muon_lr:.3g} | "
            f"{_mean(adam):.2f} | {_mean(muon):.2f} | {_mean(muon) - _mean(adam):+.2f} | "
            f"{_worst(adam, mode):.2f} / {_worst(muon, mode):.2f} | {metric} | "
            f"{names} ({len(members)} sweep{'s' * (len(members) != 1)}) |"
        )
    return rows, lines


def budget(sweep: dict) -> int:
    """A trial's training length: a NeRF sweep's ``iterations``, a fit sweep's ``fit.steps``; the
    best lr depends on it (a short proxy favours larger ones)."""
    config = sweep.get("config", {})
    return config["iterations"] if "iterations" in config else config.get("fit", {}).get("steps", 0)


def signal_key(path: Path, sweep: dict) -> str:
    """What makes two sweeps the same signal: every setting of the task's data (file, downscale,
    the audio clip's offset and duration, …), not only the file: two clips of one recording are
    two tuning signals."""
    data = sweep.get("config", {}).get("data")
    return json.dumps(data, sort_keys=True) if data else sweep["signal"].get("source", str(path))


def signal_name(path: Path, sweep: dict) -> str:
    """The signal as the table names it: the file's stem, with the clip's offset where it has one."""
    name = Path(sweep["signal"].get("source", str(path))).stem
    offset = sweep.get("config", {}).get("data", {}).get("offset")
    return f"{name}@{offset:g}s" if offset else name


def best_point(
    members: list[tuple[Path, dict]], optimizer: str, signals: set[str], mode: str
) -> Point | None:
    points: dict[tuple[float, float | None], Point] = {}
    refused: set[tuple[float, float | None]] = set()
    for path, sweep in members:
        signal = signal_key(path, sweep)
        for trial in sweep["trials"]:
            if trial["optimizer"] != optimizer:
                continue
            key = (trial["lr"], trial["muon_lr"])
            if trial["status"] != "ok" or trial["value"] is None or not math.isfinite(trial["value"]):
                refused.add(key)
                continue
            points.setdefault(key, Point(*key, {})).values[signal] = trial["value"]
    eligible = [p for key, p in points.items() if key not in refused and set(p.values) == signals]
    if not eligible:
        return None
    sign = 1.0 if mode == "max" else -1.0  # compare as "higher is better"
    return max(eligible, key=lambda p: (sign * _worst(p, mode), sign * _mean(p)))


def _mean(point: Point) -> float:
    return statistics.fmean(point.values.values())


def _worst(point: Point, mode: str) -> float:
    return (min if mode == "max" else max)(point.values.values())


def main(args: TunedArgs) -> int:
    rows, lines = choose(load_sweeps(args.sweeps))
    table = {"format": TUNED_FORMAT, "rows": rows}
    if args.check:
        shipped = json.loads(args.table.read_text())
        if shipped != json.loads(json.dumps(table)):
            print(f"error: {args.table} differs from the sweeps: run scripts/tuned_lrs.py", file=sys.stderr)
            return 1
        print(f"{args.table} matches the sweeps ({len(rows)} rows)")
        return 0
    markdown = [
        "# Tuned learning rates (written by `scripts/tuned_lrs.py`)",
        "",
        "Each row: per optimizer, the grid point whose worst signal is best over the signals of its",
        "sweeps (a point must finish on every signal). Metric columns are means over those signals;",
        "`worst` is the chosen points' value on their worst signal.",
        "",
        "| task | arch | Adam `--lr` | Muon `--muon-adam-lr` | Muon `--muon-lr` | Adam | Muon | "
        "Muon − Adam | worst Adam / Muon | metric | tuned on |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *lines,
        "",
    ]
    write_json(args.table, table)
    atomic_write_bytes(args.markdown, "\n".join(markdown).encode())
    print("\n".join(markdown))
    print(f"wrote {args.table} and {args.markdown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(lambda: main(cli(TunedArgs, sys.argv[1:], "scripts/tuned_lrs.py"))))
