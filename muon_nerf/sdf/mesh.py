"""Meshes in: loading, normalization into [-1, 1]³ and ground-truth signed distance.

The sign comes from Open3D's ``RaycastingScene`` with ray voting (``nsamples`` random rays per
query, majority wins), so scanned meshes with small holes, like the Stanford bunny, still get a
sensible inside/outside; a warning says when the mesh is not watertight.
"""

from __future__ import annotations

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
    """Any single mesh trimesh reads (PLY, OBJ, OFF, STL…); scenes are concatenated."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"mesh not found: {path}")
    try:
        loaded = trimesh.load(path, force="mesh", process=True)
    except Exception as err:  # trimesh raises many types for unreadable files
        raise InputError(f"cannot read mesh {path}: {err}") from None
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise InputError(f"mesh {path} has no triangles (expected a surface mesh: PLY, OBJ, OFF, STL)")
    mesh = loaded
    mesh.remove_unreferenced_vertices()
    extent = mesh.bounds[1] - mesh.bounds[0]
    if not np.all(np.isfinite(mesh.vertices)):
        raise InputError(f"mesh {path} has non-finite vertex coordinates")
    if mesh.area <= 0 or extent.max() <= 0:
        raise InputError(f"mesh {path} is degenerate: surface area {mesh.area:g}, extent {extent.tolist()}")
    return mesh


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
    def from_dict(cls, data: dict) -> Normalization:
        return cls(tuple(data["center"]), float(data["scale"]))


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
