"""Mesh quality against a reference: Chamfer, normal consistency, F-score and volumetric IoU.

All distances are in the reference's normalized frame (its longest half-extent is ``1 - margin``,
0.9 by default), so numbers are comparable across shapes. With ``a`` the reconstruction and ``b``
the reference, ``n`` area-weighted samples on each (default 100k), and ``d(x, M)`` the exact
distance from ``x`` to the *triangles* of mesh ``M`` (Open3D closest-point queries):

- ``chamfer_l2 = mean_a d(a, B)² + mean_b d(b, A)²``: squared distances summed over both
  directions, the form neural-SDF papers report (the issue attributes it to FINER/BACON; we did
  not check their evaluation code);
- ``chamfer_l1 = ½ (mean_a d(a, B) + mean_b d(b, A))``: unsquared, Occupancy Networks' form;
- ``normal_consistency = ½ (mean_a |n_a · n_B(a)| + mean_b |n_b · n_A(b)|)`` with ``n_M(x)`` the
  normal of the closest triangle of ``M``: orientation-free;
- ``fscore`` at threshold τ: harmonic mean of precision ``P(d(a, B) < τ)`` and recall
  ``P(d(b, A) < τ)``;
- ``iou = |inside_a ∧ inside_b| / |inside_a ∨ inside_b|`` over the nodes of a grid on [-1, 1]³.

Point-to-surface rather than point-to-point (sample-to-nearest-sample, as a KD-tree would give):
a mesh scores exactly 0 against itself, and the sample count only sets Monte Carlo noise, not a
floor of ~½ the sample spacing (≈ 3·10⁻³ for 100k samples on the bunny) that would swamp the
differences between good fits. Reported with a scale in the key (``chamfer_l1_x1e3`` is
chamfer_l1 × 10³) so printed tables keep their significant digits.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import trimesh
from jaxtyping import Float

from muon_nerf.fit.errors import InputError
from muon_nerf.sdf.extract import grid_axis, grid_points
from muon_nerf.sdf.mesh import MeshSdf, Normalization, o3d_points, raycasting_scene
from muon_nerf.sdf.samples import surface_points

CHAMFER_L1_SCALE = 1e3
CHAMFER_L2_SCALE = 1e5


@dataclass
class MetricConfig:
    surface_points: int = 100_000
    """Surface samples per mesh for Chamfer, normal consistency and F-score."""
    fscore_threshold: float = 0.01
    """τ of the F-score, in normalized units (0.5 % of the [-1, 1] box side)."""

    def __post_init__(self) -> None:
        if self.surface_points < 1 or not self.fscore_threshold > 0:
            raise InputError(
                f"--surface-points must be >= 1 and --fscore-threshold > 0, got "
                f"{self.surface_points} and {self.fscore_threshold}"
            )


def iou(inside_a: np.ndarray, inside_b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    union = np.logical_or(inside_a, inside_b).sum()
    return 1.0 if union == 0 else float(np.logical_and(inside_a, inside_b).sum() / union)


class Surface:
    """A mesh with its samples and a closest-point index: one side of a surface comparison."""

    def __init__(self, mesh: trimesh.Trimesh, num_samples: int, seed: int = 0) -> None:
        self.points, self.normals = surface_points(mesh, num_samples, np.random.default_rng(seed))
        self.face_normals = np.asarray(mesh.face_normals)
        self.triangles = (np.asarray(mesh.vertices), np.asarray(mesh.faces))
        self.scene = raycasting_scene(mesh)

    def __getstate__(self) -> dict:
        # Open3D's scene cannot be pickled (muon-sweep ships the signal to Ray workers): rebuilt on load.
        return {k: v for k, v in self.__dict__.items() if k != "scene"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.scene = raycasting_scene(trimesh.Trimesh(*self.triangles, process=False))

    def closest(self, points: Float[np.ndarray, "n 3"]) -> tuple[np.ndarray, np.ndarray]:
        """Distance from each point to this mesh and the normal of the closest triangle."""
        hit = self.scene.compute_closest_points(o3d_points(points))
        dist = np.linalg.norm(hit["points"].numpy() - points, axis=-1)
        return dist, self.face_normals[hit["primitive_ids"].numpy().astype(np.int64)]


def surface_metrics(a: Surface, b: Surface, threshold: float) -> dict[str, float]:
    """Chamfer (L1 and L2), normal consistency and F-score of ``a`` against ``b``."""
    d_ab, n_ab = b.closest(a.points)
    d_ba, n_ba = a.closest(b.points)
    nc_ab = np.abs(np.sum(a.normals * n_ab, axis=-1)).mean()
    nc_ba = np.abs(np.sum(b.normals * n_ba, axis=-1)).mean()
    precision, recall = float((d_ab < threshold).mean()), float((d_ba < threshold).mean())
    fscore = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return {
        "chamfer_l1_x1e3": float(0.5 * (d_ab.mean() + d_ba.mean()) * CHAMFER_L1_SCALE),
        "chamfer_l2_x1e5": float((np.mean(d_ab**2) + np.mean(d_ba**2)) * CHAMFER_L2_SCALE),
        "normal_consistency": float(0.5 * (nc_ab + nc_ba)),
        "fscore": fscore,
        "precision": precision,
        "recall": recall,
    }


EMPTY_SURFACE = {
    "chamfer_l1_x1e3": float("nan"),
    "chamfer_l2_x1e5": float("nan"),
    "normal_consistency": float("nan"),
    "fscore": 0.0,
    "precision": 0.0,
    "recall": 0.0,
}
"""What a reconstruction without a zero level set scores (early in training, say)."""


def warn_empty_mesh(what: str) -> None:
    """One stderr line: an empty mesh has no surface metrics (they are written as null)."""
    print(
        f"warning: {what} is empty (the field has no zero crossing on the grid): "
        "its Chamfer and normal metrics are null",
        file=sys.stderr,
    )


def mesh_surface_metrics(
    mesh: trimesh.Trimesh, reference: Surface, cfg: MetricConfig, seed: int = 0
) -> dict[str, float]:
    """``surface_metrics`` of a mesh against a prepared reference; ``EMPTY_SURFACE`` if no surface."""
    if len(mesh.faces) == 0 or mesh.area <= 0:
        return dict(EMPTY_SURFACE)
    return surface_metrics(Surface(mesh, cfg.surface_points, seed), reference, cfg.fscore_threshold)


def compare_meshes(
    mesh_a: trimesh.Trimesh,
    mesh_b: trimesh.Trimesh,
    cfg: MetricConfig,
    iou_resolutions: tuple[int, ...] = (128, 256),
    margin: float = 0.1,
    ray_votes: int = 5,
    seed: int = 0,
) -> dict[str, float]:
    """Every metric of ``mesh_a`` (reconstruction) against ``mesh_b`` (reference), both in the
    same input coordinates; evaluated in ``mesh_b``'s normalized frame. Inside/outside of both
    meshes comes from ray voting, so open meshes get a sensible IoU too."""
    norm = Normalization.fit(mesh_b, margin)
    a, b = norm.mesh_to_unit(mesh_a), norm.mesh_to_unit(mesh_b)
    if len(a.faces) == 0:
        raise InputError("mesh A has no triangles")
    out = mesh_surface_metrics(a, Surface(b, cfg.surface_points, seed), cfg, seed + 1)
    scenes = [MeshSdf(m, ray_votes, name) for m, name in ((a, "A"), (b, "B"))]
    for res in iou_resolutions:
        out[f"iou_{res}"] = iou(*(grid_occupancy(s, res) for s in scenes))
    return out


def grid_occupancy(target: MeshSdf, resolution: int, slab_points: int = 1 << 21) -> np.ndarray:
    """Inside mask of the ``R³`` grid nodes, one x-slab at a time (no ``R³ × 3`` point array)."""
    axis = grid_axis(resolution)
    slab = max(1, slab_points // resolution**2)
    return np.concatenate(
        [target.occupancy(grid_points(resolution, axis[i : i + slab])) for i in range(0, resolution, slab)]
    )
