"""SDF as a signal: the shared fit loop and ``execute`` do the training, tables and outputs.

Training samples (``train``) are a pool drawn once (``samples.py``); the signal's ``coords`` are
the *evaluation* points: the nodes of an ``R³`` grid (marching cubes, grid IoU) followed by uniform
points in the box (a resolution-free Monte Carlo IoU). The loop's ``predict`` evaluates them in
chunks; ``evaluate`` turns the grid into a mesh and scores it against the reference.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
import trimesh
from matplotlib import colormaps
from torch import Tensor, nn

from muon_nerf.fields import FieldConfig
from muon_nerf.fields.encodings import EncodingConfig, PositionalEncodingConfig
from muon_nerf.fit.errors import InputError
from muon_nerf.fit.loop import FitConfig
from muon_nerf.fit.signal import Batch, Panel, Signal
from muon_nerf.runs.io import atomic_write_bytes, run_name, write_json
from muon_nerf.runs.plotting import png_bytes
from muon_nerf.runs.task import Lrs, TaskConfig
from muon_nerf.sdf.extract import grid_points, marching_cubes, write_mesh
from muon_nerf.sdf.mesh import MeshSdf, Normalization, load_mesh
from muon_nerf.sdf.metrics import MetricConfig, Surface, iou, mesh_surface_metrics, warn_empty_mesh
from muon_nerf.sdf.render import render
from muon_nerf.sdf.samples import SampleConfig, draw_pool

SLICE_RANGE = 0.25
"""Signed distances shown in the slice panels saturate at ±this (normalized units)."""


@dataclass
class SdfData:
    """The mesh, its ground truth and how a fit is scored."""

    mesh: Path | None = None
    """Mesh to fit (PLY, OBJ, OFF, STL…); required."""
    margin: float = 0.1
    """The mesh is scaled so its longest half-extent is 1 - margin inside [-1, 1]³."""
    ray_votes: int = 5
    """Random rays per point voting inside/outside (odd); >1 makes holes harmless."""
    pool: SampleConfig = dataclasses.field(default_factory=SampleConfig)
    sdf_loss: Literal["l1", "mse"] = "l1"
    """Loss between predicted and true signed distance: l1 (DeepSDF's, with --clamp) or mse."""
    clamp: float | None = 0.1
    """DeepSDF's clamp δ: prediction and target are clipped to [-δ, δ] before the loss; None = off."""
    eikonal_weight: float = 0.0
    """Weight of the eikonal loss (‖∇f‖ - 1)² on the batch points; 0 = off (on, a step costs twice)."""
    eval_resolution: int = 128
    """Grid nodes per axis for evaluation meshes and the grid IoU (BACON's 128³)."""
    eval_volume_points: int = 200_000
    """Uniform points for the Monte Carlo IoU (finer than any grid); 0 = off."""
    metrics: MetricConfig = dataclasses.field(default_factory=MetricConfig)
    """How fitted meshes are scored against the reference: Chamfer, normal consistency, F-score."""
    render_size: int = 320
    """Side in pixels of the square mesh renderings in the figures and render.png."""

    def __post_init__(self) -> None:
        if self.eval_resolution < 8:
            raise InputError(f"--eval-resolution must be >= 8, got {self.eval_resolution}")
        if self.clamp is not None and not self.clamp > 0:
            raise InputError(f"--clamp must be > 0 (or None), got {self.clamp}")
        if self.eikonal_weight < 0 or self.eval_volume_points < 0:
            raise InputError("--eikonal-weight and --eval-volume-points must be >= 0")


def one_sided_clamp(pred: Tensor, target: Tensor, delta: float) -> tuple[Tensor, Tensor]:
    """DeepSDF's clamp, without its dead gradient. DeepSDF clips prediction and target to ±δ, so
    a prediction beyond ±δ gets no gradient even where the target lies inside (a field whose
    output starts beyond ±δ everywhere, as a hash grid's near-constant initial output can, never
    trains). Here the target is clipped as in DeepSDF and the prediction only on the side where
    its target is clipped too: the error is DeepSDF's wherever DeepSDF's has a gradient, and the
    prediction is pulled back where DeepSDF's is stuck."""
    clipped = target.clamp(-delta, delta)
    pred = torch.where(target >= delta, pred.clamp(max=delta), pred)
    pred = torch.where(target <= -delta, pred.clamp(min=-delta), pred)
    return pred, clipped


class SdfSignal(Signal):
    task = "sdf"
    primary_metric = "chamfer_l1_x1e3"

    def __init__(self, mesh: trimesh.Trimesh, cfg: SdfData, seed: int = 0, source: str = "") -> None:
        self.cfg, self.source = cfg, source
        self.normalization = Normalization.fit(mesh, cfg.margin)
        self.reference = self.normalization.mesh_to_unit(mesh)
        target = MeshSdf(self.reference, cfg.ray_votes, source)
        self.watertight = target.watertight
        pool = draw_pool(target, cfg.pool, seed)
        self.train = Batch(torch.from_numpy(pool.points), torch.from_numpy(pool.sdf)[:, None])
        self.out_dim = 1
        self.reference_surface = Surface(self.reference, cfg.metrics.surface_points, seed + 1)
        rng = np.random.default_rng(seed + 2)
        res = cfg.eval_resolution
        volume = rng.uniform(-1, 1, size=(cfg.eval_volume_points, 3)).astype(np.float32)
        eval_points = np.concatenate([grid_points(res), volume])
        self.coords = torch.from_numpy(eval_points)
        self.inside = target.occupancy(eval_points)
        self.num_grid = res**3

    @classmethod
    def from_config(cls, cfg: SdfData, seed: int = 0) -> SdfSignal:
        if cfg.mesh is None:
            raise InputError("--mesh is required: a PLY, OBJ, OFF or STL file")
        return cls(load_mesh(cfg.mesh), cfg, seed, str(cfg.mesh))

    def loss(self, field: nn.Module, batch: Batch) -> Tensor:
        eikonal = self.cfg.eikonal_weight > 0
        coords = batch.coords.detach().requires_grad_(True) if eikonal else batch.coords
        raw = field(coords)
        pred, target = raw, batch.target
        if self.cfg.clamp is not None:
            pred, target = one_sided_clamp(pred, target, self.cfg.clamp)
        err = pred - target
        loss = err.abs().mean() if self.cfg.sdf_loss == "l1" else err.square().mean()
        if eikonal:
            (grad,) = torch.autograd.grad(raw.sum(), coords, create_graph=True)
            loss = loss + self.cfg.eikonal_weight * (grad.norm(dim=-1) - 1).square().mean()
        return loss

    def grid(self, prediction: Tensor) -> np.ndarray:
        res = self.cfg.eval_resolution
        return prediction[: self.num_grid, 0].reshape(res, res, res).float().cpu().numpy()

    def mesh(self, prediction: Tensor) -> trimesh.Trimesh:
        """The reconstruction's marching-cubes mesh in the normalized frame."""
        return marching_cubes(self.grid(prediction))

    def evaluate(self, prediction: Tensor) -> dict[str, float]:
        inside_pred = prediction[:, 0].cpu().numpy() < 0
        n = self.num_grid
        metrics = mesh_surface_metrics(self.mesh(prediction), self.reference_surface, self.cfg.metrics)
        metrics[f"iou_{self.cfg.eval_resolution}"] = iou(inside_pred[:n], self.inside[:n])
        if len(self.inside) > n:
            metrics["iou_volume"] = iou(inside_pred[n:], self.inside[n:])
        return metrics

    def slice_panel(self, grid: np.ndarray, title: str) -> Panel:
        """The z = 0 plane of a signed distance grid, diverging colours fixed at ±SLICE_RANGE."""
        plane = grid[:, :, grid.shape[2] // 2].T[::-1]  # y up, x right
        rgb = colormaps["RdBu"](np.clip(0.5 + plane / (2 * SLICE_RANGE), 0, 1))[..., :3]
        return (title, rgb, None)

    def panels(self, prediction: Tensor | None) -> list[Panel]:
        size = self.cfg.render_size
        if prediction is None:
            inside = self.inside[: self.num_grid].reshape((self.cfg.eval_resolution,) * 3)
            return [
                ("reference mesh", render(self.reference, size), None),
                self.slice_panel(np.where(inside, -SLICE_RANGE, SLICE_RANGE), "reference inside (z = 0)"),
            ]
        grid = self.grid(prediction)
        return [("mesh", render(marching_cubes(grid), size), None), self.slice_panel(grid, "SDF, z = 0")]

    def save(self, prediction: Tensor, run_dir: Path) -> None:
        """Mesh in the input's coordinates (PLY + OBJ), its picture, and the transform."""
        mesh = self.mesh(prediction)
        if len(mesh.faces) == 0:
            warn_empty_mesh(f"the final mesh of run {run_name(run_dir)}")
        write_mesh(self.normalization.mesh_to_input(mesh), run_dir / "mesh")
        atomic_write_bytes(run_dir / "render.png", png_bytes(render(mesh, self.cfg.render_size)))
        write_json(
            run_dir / "normalization.json",
            {"source": self.source, "margin": self.cfg.margin, **self.normalization.to_dict()},
        )

    def describe(self) -> dict:
        return {
            "task": self.task,
            "source": self.source,
            "vertices": len(self.reference.vertices),
            "faces": len(self.reference.faces),
            "watertight": self.watertight,
            "normalization": self.normalization.to_dict(),
            "pool": len(self.train.coords),
            "eval_resolution": self.cfg.eval_resolution,
            "eval_volume_points": len(self.coords) - self.num_grid,
            "distances": "normalized frame: longest half-extent of the mesh = 1 - margin",
        }


@dataclass
class SdfTask(TaskConfig):
    """Fit a signed distance field to a mesh. Defaults: a CPU-sized bunny."""

    field: FieldConfig = dataclasses.field(
        default_factory=lambda: FieldConfig(arch="relu_pe", num_layers=4, width=128, encoding=pe_encoding(6))
    )
    fit: FitConfig = dataclasses.field(
        default_factory=lambda: FitConfig(steps=1000, batch_size=4096, eval_every=500, rank_every=250)
    )
    data: SdfData = dataclasses.field(default_factory=SdfData)

    # the optimizers' own lrs (Muon's is Keller Jordan's): on the bunny at 500 steps the image
    # script's Muon lr 0.1 left a rough surface (Chamfer-L1 8.0·10⁻³ vs 1.6·10⁻³ with Muon's own)
    default_lrs: ClassVar[Lrs] = Lrs()

    def signal(self) -> SdfSignal:
        return SdfSignal.from_config(self.data, self.fit.seed)

    @classmethod
    def profiles(cls) -> dict[str, Callable[[], TaskConfig]]:
        return {"cpu": cls, "paper": paper_profile}


def pe_encoding(octaves: int) -> EncodingConfig:
    return EncodingConfig(positional=PositionalEncodingConfig(pe_frequencies=octaves))


def paper_profile() -> SdfTask:
    """Network size of the FINER/BACON SDF experiments (2 hidden layers × 256) with a long
    schedule and a large pool: meant for a GPU (``--device cuda``)."""
    return SdfTask(
        field=FieldConfig(arch="relu_pe", num_layers=4, width=256, encoding=pe_encoding(8)),
        fit=FitConfig(steps=20_000, batch_size=65_536, eval_every=2000, rank_every=1000),
        data=SdfData(
            pool=SampleConfig(num_surface=500_000, num_near=2_000_000, num_uniform=250_000),
            eval_resolution=256,
            eval_volume_points=1_000_000,
        ),
    )
