"""Meshes in: loading, normalization into [-1, 1]³ and ground-truth signed distance.

The sign comes from Open3D's ``RaycastingScene`` with ray voting (``nsamples`` random rays per
query, majority wins), so scanned meshes with small holes, like the Stanford bunny, still get a
sensible inside/outside; a warning says when the mesh is not watertight.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh
from jaxtyping import Float

from muon_nerf.fit.errors import InputError

MESH_SUFFIXES = (".ply", ".obj", ".off", ".stl", ".glb", ".gltf")


class NonWatertightWarning(UserWarning):
    """The mesh has boundary edges; inside/outside is decided by ray voting."""


def load_mesh(path: Path) -> trimesh.Trimesh:
    """Any single mesh trimesh reads (PLY, OBJ, OFF, STL…); scenes are concatenated. The file's
    own vertices are checked before trimesh merges them (which drops NaN/inf ones silently), and
    a PLY whose header declares more than the file holds (truncated) is refused."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"mesh not found: {path}")
    if path.suffix.lower() == ".ply":
        check_ply_counts(path)
    try:
        loaded = trimesh.load(path, force="mesh", process=False)
    except Exception as err:  # trimesh raises many types for unreadable files
        raise InputError(f"cannot read mesh {path}: {err}") from None
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise InputError(f"mesh {path} has no triangles (expected a surface mesh: PLY, OBJ, OFF, STL)")
    bad = ~np.isfinite(np.asarray(loaded.vertices)).all(axis=1)
    if bad.any():
        raise InputError(
            f"mesh {path} has {int(bad.sum())} vertices with non-finite (NaN/inf) coordinates, "
            f"the first at index {int(np.flatnonzero(bad)[0])}"
        )
    mesh = loaded
    mesh.process()  # merge duplicate vertices, drop degenerate faces: what process=True does
    mesh.remove_unreferenced_vertices()
    extent = mesh.bounds[1] - mesh.bounds[0]
    if mesh.area <= 0 or extent.max() <= 0:
        raise InputError(f"mesh {path} is degenerate: surface area {mesh.area:g}, extent {extent.tolist()}")
    return mesh


PLY_SIZES = {
    **dict.fromkeys(("char", "int8", "uchar", "uint8"), 1),
    **dict.fromkeys(("short", "int16", "ushort", "uint16"), 2),
    **dict.fromkeys(("int", "int32", "uint", "uint32", "float", "float32"), 4),
    **dict.fromkeys(("double", "float64"), 8),
}


def check_ply_counts(path: Path) -> None:
    """Refuse a PLY whose header declares more elements than its body holds: a binary body
    shorter than the smallest one its counts allow (lists of at least three indices for faces,
    none for other elements), or an ASCII body with fewer lines than elements. Readers would
    otherwise take what is there (one triangle of a declared 10⁹) without a word."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise InputError(f"cannot read mesh {path}: {err.strerror or err}") from None
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        return  # not a PLY header: left to trimesh's own message
    body_start = data.find(b"\n", end) + 1
    fmt, elements = "", []  # [name, count, minimal bytes per element]
    for raw in data[:end].decode("ascii", "replace").splitlines():
        words = raw.split()
        if words[:1] == ["format"] and len(words) > 1:
            fmt = words[1]
        elif words[:1] == ["element"] and len(words) == 3:
            try:
                count = int(words[2])
            except ValueError:
                raise InputError(
                    f"cannot read mesh {path}: PLY element count {words[2]!r} is not a number"
                ) from None
            elements.append([words[1], count, 0])
        elif words[:1] == ["property"] and elements:
            if len(words) >= 5 and words[1] == "list":
                items = 3 if elements[-1][0] == "face" else 0
                elements[-1][2] += PLY_SIZES.get(words[2], 1) + items * PLY_SIZES.get(words[3], 1)
            elif len(words) >= 3:
                elements[-1][2] += PLY_SIZES.get(words[1], 1)
    declared = ", ".join(f"{count} {name}" for name, count, _ in elements)
    body = data[body_start:] if body_start > 0 else b""
    if fmt == "ascii":
        lines = sum(1 for line in body.splitlines() if line.strip())
        if lines < sum(count for _, count, _ in elements):
            raise InputError(
                f"mesh {path} is truncated: its header declares {declared}, its body holds {lines} lines"
            )
    elif fmt.startswith("binary"):
        need = sum(count * size for _, count, size in elements)
        if len(body) < need:
            raise InputError(
                f"mesh {path} is truncated: its header declares {declared} (at least {need} bytes), "
                f"its body holds {len(body)} bytes"
            )


@dataclass(frozen=True)
class Normalization:
    """``unit = (input - center) · scale``: the mesh's longest half-extent becomes ``1 - margin``."""

    center: tuple[float, float, float]
    scale: float

    @classmethod
    def fit(cls, mesh: trimesh.Trimesh, margin: float = 0.1) -> Normalization:
        if not 0 <= margin < 1:
            raise InputError(f"--margin must be in [0, 1), got {margin}")
        lo, hi = mesh.bounds
        half = float((hi - lo).max()) / 2
        return cls(tuple(float(c) for c in (lo + hi) / 2), (1 - margin) / half)

    def to_unit(self, points: Float[np.ndarray, "n 3"]) -> Float[np.ndarray, "n 3"]:
        return (np.asarray(points) - np.asarray(self.center)) * self.scale

    def to_input(self, points: Float[np.ndarray, "n 3"]) -> Float[np.ndarray, "n 3"]:
        return np.asarray(points) / self.scale + np.asarray(self.center)

    def mesh_to_unit(self, mesh: trimesh.Trimesh) -> trimesh.Trimesh:
        return trimesh.Trimesh(self.to_unit(mesh.vertices), mesh.faces, process=False)

    def mesh_to_input(self, mesh: trimesh.Trimesh) -> trimesh.Trimesh:
        return trimesh.Trimesh(self.to_input(mesh.vertices), mesh.faces, process=False)

    def to_dict(self) -> dict:
        return {"center": list(self.center), "scale": self.scale}

    @classmethod
    def from_dict(cls, data: object, source: str = "normalization") -> Normalization:
        """The normalization saved by a run, checked strictly: ``scale`` a finite positive number,
        ``center`` three finite numbers (a damaged or edited file is one ``InputError``)."""
        if not isinstance(data, dict):
            what = type(data).__name__
            raise InputError(f"{source} must be a JSON object with center and scale, got {what}")
        center, scale = data.get("center"), data.get("scale")
        if not _number(scale) or not (math.isfinite(scale) and scale > 0):
            raise InputError(f"{source}: scale must be a finite number > 0, got {scale!r}")
        if not (isinstance(center, list) and len(center) == 3 and all(map(_number, center))):
            raise InputError(f"{source}: center must be a list of 3 numbers, got {center!r}")
        if not all(math.isfinite(c) for c in center):
            raise InputError(f"{source}: center must be finite, got {center!r}")
        return cls(tuple(float(c) for c in center), float(scale))


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def raycasting_scene(mesh: trimesh.Trimesh):
    """Open3D's BVH over the mesh's triangles (float32 vertices, as Open3D requires)."""
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(
        o3d.core.Tensor(np.ascontiguousarray(mesh.vertices, dtype=np.float32)),
        o3d.core.Tensor(np.ascontiguousarray(mesh.faces, dtype=np.uint32)),
    )
    return scene


def o3d_points(points: np.ndarray):
    import open3d as o3d

    return o3d.core.Tensor(np.ascontiguousarray(points, dtype=np.float32).reshape(-1, 3))


class MeshSdf:
    """Exact unsigned distance to a triangle mesh, signed by ray voting (Open3D, CPU, threaded)."""

    def __init__(self, mesh: trimesh.Trimesh, nsamples: int = 5, source: str = "") -> None:
        if nsamples < 1 or nsamples % 2 == 0:
            raise InputError(f"--ray-votes must be a positive odd number, got {nsamples}")
        self.mesh, self.nsamples = mesh, nsamples
        self.watertight = bool(mesh.is_watertight)
        if not self.watertight:
            warnings.warn(
                f"mesh {source or '(in memory)'} is not watertight; inside/outside is decided by a "
                f"majority of {nsamples} random rays per point",
                NonWatertightWarning,
                stacklevel=2,
            )
        self.scene = raycasting_scene(mesh)

    def occupancy(self, points: Float[np.ndarray, "n 3"], chunk: int = 1 << 21) -> np.ndarray:
        """Boolean inside mask, in chunks so a 512³ grid never needs its points all at once."""
        points = np.asarray(points).reshape(-1, 3)
        out = np.empty(len(points), dtype=bool)
        for start in range(0, len(points), chunk):
            q = o3d_points(points[start : start + chunk])
            out[start : start + chunk] = self.scene.compute_occupancy(q, nsamples=self.nsamples).numpy() > 0.5
        return out

    def signed_distance(self, points: Float[np.ndarray, "n 3"], chunk: int = 1 << 20) -> np.ndarray:
        """Distance to the surface, negative inside (Open3D's convention, as in DeepSDF)."""
        points = np.asarray(points).reshape(-1, 3)
        out = np.empty(len(points), dtype=np.float32)
        for start in range(0, len(points), chunk):
            q = o3d_points(points[start : start + chunk])
            out[start : start + chunk] = self.scene.compute_signed_distance(q, nsamples=self.nsamples).numpy()
        return out
