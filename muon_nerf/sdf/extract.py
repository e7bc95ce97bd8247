"""Marching cubes on a field evaluated slab by slab, with a memory estimate checked up front.

The grid is ``R`` nodes per axis on [-1, 1] (node ``i`` at ``-1 + 2i/(R-1)``). The field is
evaluated one x-slab at a time in chunks of points, so the only ``O(R³)`` allocation is the
float32 volume that PyMCubes reads (512 MiB at 512³); nothing else grows with ``R³``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psutil
import torch
import trimesh
from jaxtyping import Float
from torch import Tensor, nn

from muon_nerf.fit.errors import InputError
from muon_nerf.fit.memory import host_memory
from muon_nerf.runs.io import write_files

SdfFn = Callable[[Float[Tensor, "n 3"]], Float[Tensor, "n 1"]]


def grid_axis(resolution: int) -> np.ndarray:
    return np.linspace(-1.0, 1.0, resolution, dtype=np.float32)


def grid_points(resolution: int, xs: np.ndarray | None = None) -> Float[np.ndarray, "n 3"]:
    """Nodes of the grid in ``ij`` order (x slowest); ``xs`` restricts x to a slab."""
    axis = grid_axis(resolution)
    xs = axis if xs is None else xs
    return np.stack(np.meshgrid(xs, axis, axis, indexing="ij"), -1).reshape(-1, 3)


def estimate_bytes(resolution: int, chunk: int, width: int = 256) -> int:
    """Peak memory of an extraction: the float32 volume, one chunk's activations (a few live
    ``chunk × width`` tensors) and the mesh (≈ 2R² vertices and 4R² faces for a shape spanning the
    box, float64/int64, with trimesh's copies when it merges and exports)."""
    volume = 4 * resolution**3
    activations = 4 * chunk * (3 * width + 64) * 2
    mesh = 3 * (2 * resolution**2 * 24 + 4 * resolution**2 * 24)
    return volume + activations + mesh


def check_memory(resolution: int, chunk: int, width: int = 256, limit: int | None = None) -> int:
    """Refuse (InputError) when the estimate exceeds ``limit`` (default: available memory)."""
    if resolution < 2:
        raise InputError(f"--resolution must be >= 2, got {resolution}")
    if chunk < 1:
        raise InputError(f"--chunk must be >= 1 (points per field evaluation), got {chunk}")
    need = estimate_bytes(resolution, chunk, width)
    limit = host_memory() if limit is None else limit
    if need > limit:
        raise InputError(
            f"--resolution {resolution} needs about {need / 2**30:.2f} GiB "
            f"({resolution}³ float32 volume + mesh), more than the {limit / 2**30:.2f} GiB available; "
            f"use a smaller --resolution"
        )
    return need


@torch.no_grad()
def evaluate_grid(fn: SdfFn, resolution: int, chunk: int = 1 << 16, device: str = "cpu") -> np.ndarray:
    """``(R, R, R)`` float32 field values, one x-slab at a time."""
    volume = np.empty((resolution,) * 3, dtype=np.float32)
    axis = grid_axis(resolution)
    slab = max(1, chunk // resolution**2)
    for start in range(0, resolution, slab):
        pts = torch.from_numpy(grid_points(resolution, axis[start : start + slab])).to(device)
        vals = torch.cat([fn(c)[..., 0] for c in pts.split(chunk)])
        volume[start : start + slab] = vals.reshape(-1, resolution, resolution).cpu().numpy()
    return volume


def marching_cubes(volume: Float[np.ndarray, "r r r"], level: float = 0.0) -> trimesh.Trimesh:
    """Zero level set of a signed distance volume (negative inside) on the [-1, 1]³ node grid,
    faces oriented outwards. Empty mesh when the volume has no sign change."""
    import mcubes

    if not (volume.min() < level < volume.max()):
        return trimesh.Trimesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64), process=False)
    vertices, faces = mcubes.marching_cubes(volume, level)
    vertices = vertices * (2.0 / (volume.shape[0] - 1)) - 1.0
    # PyMCubes orients faces towards increasing values; an SDF increases outwards, so flip.
    return trimesh.Trimesh(vertices, faces[:, ::-1].astype(np.int64), process=False)


def field_fn(field: nn.Module) -> SdfFn:
    return lambda coords: field(coords)


def mesh_paths(path_stem: Path) -> tuple[Path, Path]:
    """``<stem>.ply`` and ``<stem>.obj``: the files a mesh is written as."""
    return Path(f"{path_stem}.ply"), Path(f"{path_stem}.obj")


def mesh_files(mesh: trimesh.Trimesh, path_stem: Path) -> dict[Path, bytes]:
    """The bytes of ``<stem>.ply`` (binary) and ``<stem>.obj``."""
    files = {}
    for path in mesh_paths(path_stem):
        data = mesh.export(file_type=path.suffix[1:])
        files[path] = data if isinstance(data, bytes) else data.encode()
    return files


def write_mesh(mesh: trimesh.Trimesh, path_stem: Path) -> list[Path]:
    """``<stem>.ply`` and ``<stem>.obj``, both or neither."""
    files = mesh_files(mesh, path_stem)
    write_files(files)
    return list(files)


def peak_rss_reset() -> bool:
    """Reset the kernel's peak-RSS counter (Linux ``clear_refs``); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss() -> int:
    """Peak resident memory of this process in bytes since the last ``peak_rss_reset`` (Linux's
    ``VmHWM``, which psutil does not report; 0 where unknown)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def rss() -> int:
    return psutil.Process().memory_info().rss


@dataclass
class Extraction:
    mesh: trimesh.Trimesh
    """In the normalized [-1, 1]³ frame."""
    resolution: int
    eval_seconds: float
    mc_seconds: float
    peak_rss_bytes: int
    """Whole process, since the extraction started."""
    baseline_rss_bytes: int
    """Resident memory just before it (model, torch, reference mesh)."""
    estimate_bytes: int

    def summary(self) -> dict:
        return {
            "resolution": self.resolution,
            "eval_seconds": self.eval_seconds,
            "marching_cubes_seconds": self.mc_seconds,
            "total_seconds": self.eval_seconds + self.mc_seconds,
            "peak_rss_mib": self.peak_rss_bytes / 2**20,
            "peak_increase_mib": (self.peak_rss_bytes - self.baseline_rss_bytes) / 2**20,
            "estimate_mib": self.estimate_bytes / 2**20,
            "vertices": len(self.mesh.vertices),
            "faces": len(self.mesh.faces),
        }


def extract(
    field: nn.Module, resolution: int, chunk: int = 1 << 16, memory_limit: int | None = None
) -> Extraction:
    """Evaluate ``field`` on the grid and run marching cubes, timing both and recording peak RSS."""
    width = getattr(getattr(field, "config", None), "width", 256)
    need = check_memory(resolution, chunk, width, memory_limit)
    device = str(next(field.parameters()).device)
    peak_rss_reset()
    baseline = rss()
    t0 = time.perf_counter()
    volume = evaluate_grid(field_fn(field), resolution, chunk, device)
    t1 = time.perf_counter()
    mesh = marching_cubes(volume)
    del volume
    t2 = time.perf_counter()
    return Extraction(mesh, resolution, t1 - t0, t2 - t1, peak_rss(), baseline, need)
