"""``muon-sdf fit | extract | eval``: fit a mesh's SDF, extract finer meshes, score two meshes.

``fit`` is ``execute`` over ``SdfTask`` (the same runner as ``muon-fit``), so its flags are flat
and the paper's spellings (``--muon_lr``) work; ``--profile paper`` swaps the CPU defaults for the
paper-scale ones and ``--preset FILE`` starts from a ``muon-sweep sdf`` preset; flags given with
either still win.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from muon_nerf.fields import MLPField
from muon_nerf.fit.device import check_device
from muon_nerf.fit.errors import InputError, run_cli
from muon_nerf.fit.memory import host_memory
from muon_nerf.runs.checkpoint import load_field as load_run_field
from muon_nerf.runs.cli import cli, parse_run, parse_task
from muon_nerf.runs.io import check_new_files, fingerprint, json_bytes, remove_dead_temporaries, write_files
from muon_nerf.runs.plotting import png_bytes
from muon_nerf.runs.run import execute
from muon_nerf.sdf.extract import extract, mesh_files, mesh_paths
from muon_nerf.sdf.mesh import Normalization, load_mesh
from muon_nerf.sdf.metrics import EMPTY_SURFACE, MetricConfig, compare_meshes, warn_empty_mesh
from muon_nerf.sdf.render import render
from muon_nerf.sdf.signal import SdfTask


@dataclass
class ExtractConfig:
    """Marching cubes of a fitted run at any resolution (``muon-sdf extract``)."""

    run: Path
    """A run folder of ``muon-sdf fit`` (with field.pt), or a --compare run (adam/, muon/)."""
    resolution: int = 512
    chunk: int = 1 << 16
    """Points per field evaluation; bounds activation memory."""
    score: bool = True
    """Score the mesh against the source mesh the run was fitted to."""
    iou_resolutions: tuple[int, ...] = (128, 256)
    metrics: MetricConfig = dataclasses.field(default_factory=MetricConfig)
    ray_votes: int = 5
    max_memory_gb: float | None = None
    """Refuse resolutions whose estimated peak exceeds this; default: the memory available now."""
    device: str = "cpu"
    overwrite: bool = False
    """Replace this resolution's earlier extraction (mesh_<res>.ply/.obj, render_<res>.png,
    extract_<res>.json); without it they are never replaced."""

    def check(self) -> None:
        """Refuse bad values with one line before loading anything."""
        if self.resolution < 2:
            raise InputError(f"--resolution must be >= 2, got {self.resolution}")
        if self.chunk < 1:
            raise InputError(f"--chunk must be >= 1 (points per field evaluation), got {self.chunk}")
        if self.ray_votes < 1 or any(r < 2 for r in self.iou_resolutions):
            raise InputError("--ray-votes must be >= 1 and every --iou-resolutions value >= 2")
        if self.max_memory_gb is not None:
            gb = self.max_memory_gb
            if not (math.isfinite(gb) and gb > 0):
                raise InputError(f"--max-memory-gb must be a finite number of GiB > 0, got {gb}")
            available = host_memory()
            if gb * 2**30 > available:
                raise InputError(
                    f"--max-memory-gb {gb:g} is more than the {available / 2**30:.2f} GiB this process can "
                    "get now (MemAvailable, cgroup limit): give at most that, or leave it out"
                )
        check_device(self.device)


@dataclass
class EvalConfig:
    """Chamfer, normal consistency, F-score and IoU of mesh A against reference mesh B."""

    mesh_a: Path
    """The reconstruction."""
    mesh_b: Path
    """The reference; metrics are computed in its normalized frame."""
    iou_resolutions: tuple[int, ...] = (128, 256)
    metrics: MetricConfig = dataclasses.field(default_factory=MetricConfig)
    margin: float = 0.1
    ray_votes: int = 5
    output: Path | None = None
    """Also write the metrics to this JSON file (never replacing one unless --overwrite)."""
    overwrite: bool = False
    """Replace an existing --output file."""


FIT_DESCRIPTION = (
    "Fit an SDF to --mesh. --profile {cpu,paper} picks the defaults (cpu); "
    "--preset FILE starts from a muon-sweep preset."
)


def parse_fit(args: list[str]) -> SdfTask:
    """``muon-sdf fit``'s config (``--resume`` is ``main``'s)."""
    return parse_task("sdf", SdfTask, list(args), prog="muon-sdf fit", description=FIT_DESCRIPTION)


def metrics_table(title: str, rows: dict[str, dict[str, float]]) -> Table:
    table = Table(title=title)
    table.add_column("metric")
    for name in rows:
        table.add_column(name, justify="right")
    for key in next(iter(rows.values())):
        table.add_row(key, *(_cell(r.get(key)) for r in rows.values()))
    return table


def _cell(value: float | None) -> str:
    return "—" if value is None or value != value else f"{value:.4g}"


COMPARED = ("adam", "muon")
"""The optimizer folders of a ``--compare`` run."""


def field_dirs(run: Path) -> dict[str, Path]:
    """``{name: folder with field.pt}`` of a single run or of each optimizer of a comparison; a
    comparison missing one of its ``field.pt`` is refused, naming it (never half extracted)."""
    if not run.is_dir():
        raise InputError(f"run folder not found: {run}")
    if (run / "field.pt").is_file():
        return {run.name: run}
    names = [d.name for d in sorted(run.iterdir()) if (d / "field.pt").is_file()]
    if (run / "comparison.json").is_file() or any((run / n).is_dir() for n in COMPARED):
        names = sorted({*names, *COMPARED})
        missing = [run / n / "field.pt" for n in names if not (run / n / "field.pt").is_file()]
        if missing:
            names_missing = ", ".join(map(str, missing))
            raise InputError(f"{run} is a --compare run missing {names_missing}: nothing extracted")
    if not names:
        raise InputError(f"{run} has no field.pt (nor adam/, muon/ folders with one): not a muon-sdf run")
    return {n: run / n for n in names}


def run_files(folder: Path) -> tuple[Path, Path]:
    """What an extraction reads from a field's folder."""
    return folder / "field.pt", folder / "normalization.json"


def load_field(folder: Path, device: str) -> tuple[MLPField, Normalization, dict]:
    field_path, norm_path = run_files(folder)
    try:
        meta = json.loads(norm_path.read_text())
    except FileNotFoundError:
        raise InputError(f"{norm_path} not found: not a muon-sdf run (it holds the mesh's frame)") from None
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read {norm_path}: {err}") from None
    norm = Normalization.from_dict(meta, str(norm_path))
    margin, source = meta.get("margin", 0.1), meta.get("source")
    if not (isinstance(margin, (int, float)) and not isinstance(margin, bool) and 0 <= margin < 1):
        raise InputError(f"{norm_path}: margin must be a number in [0, 1), got {margin!r}")
    if source is not None and not isinstance(source, str):
        raise InputError(f"{norm_path}: source must be a path, got {source!r}")
    return load_run_field(field_path, device), norm, meta


def check_unchanged(folders: dict[Path, str], when: str) -> None:
    """Refuse when a field's files changed since they were read (``muon-sdf fit --overwrite``
    replaced the run meanwhile): its mesh would stand beside another field."""
    for folder, before in folders.items():
        if fingerprint(run_files(folder)) != before:
            raise InputError(
                f"{folder / 'field.pt'} changed {when} (the run was replaced, e.g. by muon-sdf fit "
                "--overwrite): nothing written; extract again"
            )


def extract_paths(folder: Path, resolution: int) -> tuple[Path, Path, Path]:
    """The mesh stem, render and summary that ``muon-sdf extract`` writes into a field's folder."""
    res = resolution
    return folder / f"mesh_{res}", folder / f"render_{res}.png", folder / f"extract_{res}.json"


def run_extract(cfg: ExtractConfig, console: Console) -> dict[str, dict]:
    cfg.check()
    limit = None if cfg.max_memory_gb is None else int(cfg.max_memory_gb * 2**30)
    outputs = {folder: extract_paths(folder, cfg.resolution) for folder in field_dirs(cfg.run).values()}
    check_new_files(  # before the (long) extraction: an earlier one is never replaced unasked
        [p for stem, *rest in outputs.values() for p in (*mesh_paths(stem), *rest)], cfg.overwrite
    )
    results, files, read = {}, {}, {}
    for name, folder in field_dirs(cfg.run).items():
        read[folder] = fingerprint(run_files(folder))
        field_sha256 = hashlib.sha256(run_files(folder)[0].read_bytes()).hexdigest()
        field, norm, meta = load_field(folder, cfg.device)
        check_unchanged({folder: read[folder]}, "while it was read")
        remove_dead_temporaries(folder)  # of an extraction killed while it wrote
        ex = extract(field, cfg.resolution, cfg.chunk, limit)
        mesh = norm.mesh_to_input(ex.mesh)
        stem, render_path, summary_path = outputs[folder]
        files.update(mesh_files(mesh, stem))
        files[render_path] = png_bytes(render(ex.mesh))
        summary = {**ex.summary(), "field_sha256": field_sha256}  # which field.pt it is the mesh of
        if len(ex.mesh.faces) == 0:
            warn_empty_mesh(f"{name}: the mesh extracted at {cfg.resolution}³")
            if cfg.score:
                summary["metrics"] = dict.fromkeys(EMPTY_SURFACE)  # null in extract_*.json, not NaN
        elif cfg.score and meta.get("source"):
            summary["metrics"] = compare_meshes(
                mesh,
                load_mesh(Path(meta["source"])),
                cfg.metrics,
                cfg.iou_resolutions,
                meta.get("margin", 0.1),
                cfg.ray_votes,
            )
        files[summary_path] = json_bytes(summary)
        results[name] = summary
    check_unchanged(read, "during the extraction")
    write_files(files, cfg.overwrite)  # all or nothing, once every field is extracted and scored
    try:
        check_unchanged(read, "while the meshes were written")
    except InputError:
        for path in files:  # written into the new run: taken back
            path.unlink(missing_ok=True)
        raise
    for name, folder in field_dirs(cfg.run).items():
        console.print(f"{name}: {folder / f'mesh_{cfg.resolution}'}.ply / .obj")
    rows = {
        n: {k: v for k, v in r.items() if k not in ("metrics", "field_sha256")} | r.get("metrics", {})
        for n, r in results.items()
    }
    console.print(metrics_table(f"extraction at {cfg.resolution}³", rows))
    return results


def run_eval(cfg: EvalConfig, console: Console) -> dict[str, float]:
    if cfg.output is not None:
        check_new_files([cfg.output], cfg.overwrite)  # before the metrics: never lose them to it
    metrics = compare_meshes(
        load_mesh(cfg.mesh_a),
        load_mesh(cfg.mesh_b),
        cfg.metrics,
        cfg.iou_resolutions,
        cfg.margin,
        cfg.ray_votes,
    )
    console.print(metrics_table(f"{cfg.mesh_a} vs {cfg.mesh_b}", {"A vs B": metrics}))
    if cfg.output is not None:
        record = {"mesh_a": cfg.mesh_a, "mesh_b": cfg.mesh_b, "metrics": metrics}
        write_files({cfg.output: json_bytes(record)}, cfg.overwrite)
    return metrics


COMMANDS = ("fit", "extract", "eval")


def main(command: str, args: list[str] | None = None) -> object:
    args = sys.argv[2:] if args is None else args
    console = Console()

    def body() -> object:
        if command == "fit":
            cfg, progress = parse_run("sdf", SdfTask, list(args), "muon-sdf fit", FIT_DESCRIPTION)
            return execute(cfg, console=console, progress=progress, command="muon-sdf fit")
        if command == "extract":
            cfg = cli(ExtractConfig, args, "muon-sdf extract")
            return run_extract(cfg, console)
        cfg = cli(EvalConfig, args, "muon-sdf eval")
        return run_eval(cfg, console)

    return run_cli(body)


def entrypoint() -> None:
    argv = sys.argv[1:]
    if argv and argv[0] in ("-h", "--help"):
        print(f"usage: muon-sdf {{{','.join(COMMANDS)}}} [FLAGS]   (muon-sdf <command> --help for flags)")
        return
    if not argv or argv[0] not in COMMANDS:
        got = argv[0] if argv else "nothing"
        print(f"error: first argument must be a command: {', '.join(COMMANDS)}; got {got}", file=sys.stderr)
        raise SystemExit(2)
    main(argv[0], argv[1:])
