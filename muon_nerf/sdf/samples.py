"""The training pool: points on, near and around the surface with their true signed distance.

Drawn once per run (ground truth by ray casting is the expensive part), then the fit loop draws
mini-batches from it every step. Near-surface points are surface points plus Gaussian offsets at
two scales, as in DeepSDF: the fine scale resolves detail, the coarse one the band around it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh
from jaxtyping import Float

from muon_nerf.fit.errors import InputError
from muon_nerf.sdf.mesh import MeshSdf


@dataclass
class SampleConfig:
    """Pool sizes and offsets, in the normalized [-1, 1]³ frame."""

    num_surface: int = 100_000
    """Area-weighted points on the surface (signed distance 0)."""
    num_near: int = 200_000
    """Surface points moved by a Gaussian offset, half at each scale of --near-sigmas."""
    num_uniform: int = 50_000
    """Uniform points in the box [-1, 1]³."""
    near_sigmas: tuple[float, float] = (0.01, 0.05)
    """Standard deviations of the two near-surface offset scales."""

    def __post_init__(self) -> None:
        counts = {"num_surface": self.num_surface, "num_near": self.num_near, "num_uniform": self.num_uniform}
        if any(n < 0 for n in counts.values()) or sum(counts.values()) == 0:
            raise InputError(f"pool sizes must be >= 0 and not all zero, got {counts}")
        if len(self.near_sigmas) != 2 or min(self.near_sigmas) <= 0:
            raise InputError(f"--near-sigmas needs two positive scales, got {self.near_sigmas}")


@dataclass
class SamplePool:
    points: Float[np.ndarray, "n 3"]
    sdf: Float[np.ndarray, " n"]
    kind: np.ndarray
    """0 surface, 1 near, 2 uniform (for inspection and tests)."""


def surface_points(
    mesh: trimesh.Trimesh, count: int, rng: np.random.Generator
) -> tuple[Float[np.ndarray, "n 3"], Float[np.ndarray, "n 3"]]:
    """Area-weighted uniform points on the triangles and their face normals (seeded by ``rng``)."""
    if count == 0:
        return np.zeros((0, 3)), np.zeros((0, 3))
    points, faces = trimesh.sample.sample_surface(mesh, count, seed=int(rng.integers(2**31)))
    return np.asarray(points), np.asarray(mesh.face_normals[faces])


def draw_pool(target: MeshSdf, cfg: SampleConfig, seed: int = 0) -> SamplePool:
    """``target`` must already be in the normalized frame."""
    rng = np.random.default_rng(seed)
    surf, _ = surface_points(target.mesh, cfg.num_surface, rng)
    base, _ = surface_points(target.mesh, cfg.num_near, rng)
    sigma = np.repeat(np.asarray(cfg.near_sigmas), [(cfg.num_near + 1) // 2, cfg.num_near // 2])
    near = base + rng.normal(size=base.shape) * sigma[:, None]
    uniform = rng.uniform(-1, 1, size=(cfg.num_uniform, 3))
    off_surface = np.concatenate([near, uniform]).astype(np.float32)
    sdf = np.concatenate([np.zeros(len(surf), np.float32), target.signed_distance(off_surface)])
    kind = np.repeat(np.arange(3, dtype=np.int8), [len(surf), len(near), len(uniform)])
    return SamplePool(np.concatenate([surf.astype(np.float32), off_surface]), sdf, kind)
