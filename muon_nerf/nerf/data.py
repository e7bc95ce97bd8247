"""Small scenes for smoke runs and tests.

``write_sphere_scene`` ray-traces a sphere coloured by its normal into RGBA views with
train/val/test transforms (no data needed); ``write_blender_subset`` keeps a few views of a real
Blender scene (e.g. nerf_synthetic/lego) downscaled, which is what a CPU smoke run can afford.
Both write the folder atomically. Their counterparts for real captures (nerfstudio-data's
``transforms.json``) are in ``muon_nerf.nerf.captures``. ``python -m muon_nerf.nerf.data
--help`` runs any of the four kinds (subset, sphere, capture, capture-subset); the compact lego
that ``scripts/gpu_check.sh`` carries (the FINER protocol's 25 views at 200×200, 10 test views;
≈ 3 MB) is

    python -m muon_nerf.nerf.data subset --out .devdata/lego200 --stride 4 --size 200 --eval-views 10
"""

from __future__ import annotations

import io
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import tyro
from PIL import Image

from muon_nerf.fit.errors import InputError, run_cli
from muon_nerf.runs.cli import cli
from muon_nerf.runs.io import staged_dir, write_json

SPLITS = ("train", "val", "test")
CAMERA_ANGLE_X = 0.6911112070083618
"""nerf_synthetic's horizontal field of view."""


def look_at(position: np.ndarray) -> np.ndarray:
    """Blender/OpenGL camera-to-world (camera looks down its −z, y up) looking at the origin."""
    back = np.asarray(position, dtype=float)
    back = back / np.linalg.norm(back)
    right = np.cross([0.0, 0.0, 1.0], back)
    right = right / np.linalg.norm(right)
    up = np.cross(back, right)
    c2w = np.eye(4)
    c2w[:3, :3] = np.stack([right, up, back], axis=1)
    c2w[:3, 3] = position
    return c2w


def render_sphere(c2w: np.ndarray, size: int, radius: float = 0.8) -> np.ndarray:
    """RGBA uint8 view of a sphere at the origin, coloured ``(n + 1)/2``, transparent background;
    pixel centres and focal length as nerfstudio's Blender parser and camera model expect."""
    focal = 0.5 * size / math.tan(0.5 * CAMERA_ANGLE_X)
    v, u = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5, indexing="ij")
    dirs_cam = np.stack([(u - size / 2) / focal, -(v - size / 2) / focal, -np.ones_like(u)], -1)
    dirs = dirs_cam @ c2w[:3, :3].T
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    origin = c2w[:3, 3]
    b = dirs @ origin
    disc = b**2 - (origin @ origin - radius**2)
    hit = disc > 0
    t = -b - np.sqrt(np.where(hit, disc, 0.0))
    normal = (origin + t[..., None] * dirs) / radius
    rgba = np.zeros((size, size, 4))
    rgba[..., :3] = np.where(hit[..., None], (normal + 1) / 2, 0.0)
    rgba[..., 3] = hit
    return (rgba * 255).round().astype(np.uint8)


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _write_split(
    root: Path, split: str, frames: list[tuple[str, np.ndarray, np.ndarray]], camera_angle_x: float
) -> None:
    """frames: (name, RGBA image, camera-to-world) → ``<split>/<name>.png`` + transforms json."""
    (root / split).mkdir(parents=True, exist_ok=True)
    entries = []
    for name, image, c2w in frames:
        (root / split / f"{name}.png").write_bytes(_png(image))
        entries.append({"file_path": f"./{split}/{name}", "transform_matrix": np.asarray(c2w).tolist()})
    write_json(root / f"transforms_{split}.json", {"camera_angle_x": camera_angle_x, "frames": entries})


SPHERE_FILE = "sphere.json"
"""Written by ``write_sphere_scene``: marks the folder as a generated scene it may replace."""


def check_replaceable(out: Path, markers: tuple[str, ...] | None = None) -> None:
    """Refuse to replace an existing ``out`` that holds none of the ``markers`` files (default:
    this module's): a folder a writer did not make may hold a user's files."""
    out = Path(out)
    markers = (SUBSET_FILE, SPHERE_FILE) if markers is None else markers
    if out.exists() and not any((out / marker).is_file() for marker in markers):
        raise InputError(f"{out} exists and is not a scene written by this command: choose another --out")


def write_sphere_scene(out: Path, size: int = 32, views: dict[str, int] | None = None) -> Path:
    """A Blender-format sphere scene; ``views`` per split (default 6 train, 2 val, 2 test)."""
    views = views or {"train": 6, "val": 2, "test": 2}
    check_replaceable(out)
    with staged_dir(out, overwrite=True) as stage:
        write_json(stage / SPHERE_FILE, {"kind": "sphere", "size": size, "views": views})
        for s, split in enumerate(SPLITS):
            frames = []
            for i in range(views[split]):
                azimuth = 2 * math.pi * (i + 0.37 * s) / views[split]
                elevation = 0.5 + 0.3 * math.sin(3 * i + s)
                position = 4.0 * np.array(
                    [
                        math.cos(elevation) * math.cos(azimuth),
                        math.cos(elevation) * math.sin(azimuth),
                        math.sin(elevation),
                    ]
                )
                c2w = look_at(position)
                frames.append((f"r_{i}", render_sphere(c2w, size), c2w))
            _write_split(stage, split, frames, CAMERA_ANGLE_X)
    return out


SUBSET_FILE = "subset.json"
"""Written by ``write_blender_subset`` beside the transforms: the source and the selection, so a
benchmark can tell a scene that already is the subset it wants from one it must subsample."""


def write_blender_subset(
    src: Path,
    out: Path,
    views: int = 4,
    size: int = 50,
    eval_views: int = 1,
    stride: int | None = None,
    offset: int = 0,
) -> Path:
    """``views`` evenly spaced training views (or, with ``stride``, every ``stride``-th one from
    ``offset``: the WIRE/FINER protocol keeps views 0, 4, 8, … of lego's 100; offset 2 keeps the
    disjoint 2, 6, 10, …, a second scene for tuning) and ``eval_views`` evenly spaced val and
    test views of a Blender scene, resized to ``size``×``size`` with their field of view
    unchanged. Records the selection in ``subset.json``."""
    if stride is not None and stride < 1:
        raise InputError(f"stride must be >= 1, got {stride}")
    if offset and (stride is None or not 0 <= offset < stride):
        raise InputError(f"offset {offset} needs a stride above it (0 <= offset < stride), not {stride}")
    check_replaceable(out)
    with staged_dir(out, overwrite=True) as stage:
        chosen_names: dict[str, list[str]] = {}
        for split in SPLITS:
            transforms = src / f"transforms_{split}.json"
            if not transforms.is_file():
                raise InputError(f"{transforms} not found: expected a Blender-format scene folder")
            meta = json.loads(transforms.read_text())
            if split == "train" and stride is not None:
                chosen = np.arange(offset, len(meta["frames"]), stride)
            else:
                count = views if split == "train" else eval_views
                chosen = np.linspace(0, len(meta["frames"]) - 1, count).round().astype(int)
            frames = []
            for i in chosen:
                frame = meta["frames"][i]
                image = Image.open(src / (frame["file_path"].replace("./", "") + ".png")).convert("RGBA")
                image = image.resize((size, size), Image.Resampling.LANCZOS)
                frames.append((Path(frame["file_path"]).name, np.asarray(image), frame["transform_matrix"]))
            _write_split(stage, split, frames, float(meta["camera_angle_x"]))
            chosen_names[split] = [name for name, _, _ in frames]
        selection = {"size": size, "stride": stride, "views": None if stride else views, "offset": offset}
        write_json(
            stage / SUBSET_FILE,
            {"source": str(src), **selection, "eval_views": eval_views, "frames": chosen_names},
        )
    return out


def subset_selection(scene: Path) -> dict | None:
    """The selection ``write_blender_subset`` recorded for ``scene`` (size, stride, views,
    eval_views, offset), or None for a scene it did not write. Subsets written before offsets
    existed start at view 0."""
    path = Path(scene) / SUBSET_FILE
    if not path.is_file():
        return None
    meta = json.loads(path.read_text())
    selection = {key: meta.get(key) for key in ("size", "stride", "views", "eval_views")}
    return {**selection, "offset": meta.get("offset", 0)}


LEGO = Path("../shared/data/nerf_synthetic/lego")


@dataclass
class DataArgs:
    """Write a small scene: a Blender-format subset of a real scene or a synthetic sphere, a
    synthetic capture (nerfstudio-data format), or a downsized copy of a real capture."""

    kind: tyro.conf.Positional[Literal["subset", "sphere", "capture", "capture-subset"]]
    out: Path
    src: Path | None = None
    """Blender scene to subsample (kind subset; default ../shared/data/nerf_synthetic/lego), or
    capture to downsize (kind capture-subset: a folder with transforms.json, or the json file)."""
    views: int = 4
    """Training views (subset: evenly spaced, unless ``stride`` is given; sphere; capture)."""
    size: int = 50
    """Image side in pixels (subset, sphere, capture)."""
    eval_views: int = 1
    """Held-out views (evenly spaced): val and test of kind subset, val = test of kind capture."""
    stride: int | None = None
    """Keep every ``stride``-th training view instead (4: the WIRE/FINER lego protocol)."""
    offset: int = 0
    """With ``stride``: the first training view kept (0 ≤ offset < stride)."""
    max_side: int = 100
    """kind capture-subset: longest image side of the copy (never upscaled)."""


def main() -> None:
    args = cli(DataArgs, sys.argv[1:], "python -m muon_nerf.nerf.data")
    if args.kind == "subset":
        src = LEGO if args.src is None else args.src
        out = write_blender_subset(
            src, args.out, args.views, args.size, args.eval_views, args.stride, args.offset
        )
    elif args.kind == "sphere":
        out = write_sphere_scene(args.out, args.size, {"train": args.views, "val": 1, "test": 1})
    else:
        from muon_nerf.nerf.captures import write_capture_scene, write_capture_subset  # imports this module

        if args.kind == "capture":
            out = write_capture_scene(args.out, args.size, args.views + args.eval_views, args.eval_views)
        elif args.src is None:
            raise InputError("capture-subset needs --src, the capture to downsize")
        else:
            out = write_capture_subset(args.src, args.out, args.max_side)
    print(out)


if __name__ == "__main__":
    run_cli(main)
