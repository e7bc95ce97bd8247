"""Headless pictures of meshes: Open3D ray casting, two-sided Lambert shading with a headlight.

No display, OpenGL or EGL: rays are cast on the CPU with ``RaycastingScene``, so this works on a
server and in CI. Meshes are drawn in the normalized [-1, 1]³ frame, so the reference and every
reconstruction of it share the camera.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import trimesh

from muon_nerf.sdf.mesh import raycasting_scene

BASE_COLOR = np.array([0.72, 0.76, 0.85])
BACKGROUND = np.array([1.0, 1.0, 1.0])


@dataclass
class Camera:
    azimuth: float = 30.0
    """Degrees about the y (up) axis, from +z towards +x."""
    elevation: float = 15.0
    distance: float = 3.2
    fov: float = 45.0
    """Horizontal field of view in degrees."""

    def eye(self) -> np.ndarray:
        az, el = math.radians(self.azimuth), math.radians(self.elevation)
        return self.distance * np.array(
            [math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)]
        )


def render(mesh: trimesh.Trimesh, size: int = 320, camera: Camera | None = None) -> np.ndarray:
    """``(size, size, 3)`` float image in [0, 1]; white where no triangle is hit."""
    import open3d as o3d

    camera = camera or Camera()
    image = np.broadcast_to(BACKGROUND, (size, size, 3)).copy()
    if len(mesh.faces) == 0:
        return image
    scene = raycasting_scene(mesh)
    f32 = o3d.core.Dtype.Float32
    rays = scene.create_rays_pinhole(
        fov_deg=camera.fov,
        center=o3d.core.Tensor([0.0, 0.0, 0.0], f32),
        eye=o3d.core.Tensor(camera.eye().tolist(), f32),
        up=o3d.core.Tensor([0.0, 1.0, 0.0], f32),
        width_px=size,
        height_px=size,
    )
    hits = scene.cast_rays(rays)
    hit = np.isfinite(hits["t_hit"].numpy())
    normals = hits["primitive_normals"].numpy()
    directions = rays.numpy()[..., 3:]
    directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
    # Two-sided: the angle to the viewer, whichever way the triangle is wound.
    lambert = np.abs(np.sum(normals * directions, axis=-1))
    shade = 0.25 + 0.75 * lambert
    image[hit] = np.clip(BASE_COLOR * shade[hit, None] + 0.15 * lambert[hit, None] ** 16, 0, 1)
    # Open3D's pinhole rays come out rotated by 180° relative to image rows/columns (+y would be
    # drawn at the bottom, +x on the left); turn the picture upright.
    return image[::-1, ::-1].copy()
