"""What the fit loop needs from a signal: training samples, evaluation points, a forward
operator and metrics.

Image, audio, CT, SISR and SDF differ only here. A signal keeps two sets apart:

- ``train``: what the loss is computed on — inputs where the field is evaluated and the targets
  they are compared with after ``forward``. Pointwise signals (image, audio) train on every pixel
  or sample; inverse problems (CT, SISR) on the full grid against their measurements (sinogram,
  low-resolution image); SDF on a pool of points near and away from the surface.
- ``coords``: the evaluation points ``predict`` fills in and ``evaluate`` scores (the pixel grid,
  the time axis, SDF's marching-cubes grid).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from muon_nerf.fit.metrics import mse

Panel = tuple[str, np.ndarray, str | None]
"""(title, array, colormap): images are 2-D/3-D arrays, 1-D arrays are drawn as lines."""


@dataclass
class Batch:
    """Field inputs and the targets their (forward-mapped) field values are compared with."""

    coords: Tensor
    target: Tensor

    def to(self, device: str | torch.device) -> Batch:
        return Batch(self.coords.to(device), self.target.to(device))


class Signal:
    """Base class. Subclasses set ``train``, ``coords`` and ``out_dim`` and say how to score,
    draw and save a prediction."""

    task: str = "signal"
    primary_metric: str = "psnr"
    train: Batch
    """The training set (see the module docstring)."""
    coords: Tensor
    """Evaluation points, ``(N, in_dim)``."""
    out_dim: int
    """Values the field outputs per point."""
    pointwise: bool = True
    """True when the loss at a training point needs only the field at that point, so
    mini-batches are valid; inverse problems set it False."""

    @property
    def in_dim(self) -> int:
        return self.coords.shape[-1]

    def to(self, device: str | torch.device) -> Signal:
        for name, value in list(vars(self).items()):
            if isinstance(value, (Tensor, Batch)):
                setattr(self, name, value.to(device))
        return self

    def forward(self, prediction: Tensor) -> Tensor:
        """Forward operator from field values at ``train.coords`` to the targets' space (identity)."""
        return prediction

    def sample(self, batch_size: int | None, generator: torch.Generator) -> Batch:
        """The whole training set, or ``batch_size`` random training points of it."""
        if batch_size is None or batch_size >= len(self.train.coords):
            return self.train
        if not self.pointwise:
            raise ValueError(
                f"{self.task} is an inverse problem: its loss needs every coordinate; drop --batch-size"
            )
        idx = torch.randint(
            len(self.train.coords), (batch_size,), generator=generator, device=generator.device
        )
        return Batch(self.train.coords[idx], self.train.target[idx])

    def loss(self, field: nn.Module, batch: Batch) -> Tensor:
        """MSE in the targets' space (``sample`` guarantees full coordinates for inverse problems)."""
        return mse(self.forward(field(batch.coords)), batch.target)

    @torch.no_grad()
    def predict(self, field: nn.Module, chunk: int = 1 << 16) -> Tensor:
        """Field values at every evaluation point, in chunks so memory stays bounded."""
        return torch.cat([field(c) for c in self.coords.split(chunk)])

    def evaluate(self, prediction: Tensor) -> dict[str, float]:
        raise NotImplementedError

    def panels(self, prediction: Tensor | None) -> list[Panel]:
        """Figure panels: the ground truth when ``prediction`` is None, else reconstruction views."""
        raise NotImplementedError

    def save(self, prediction: Tensor, run_dir: Path) -> None:
        """Write the reconstruction in the signal's own format (PNG, WAV…)."""
        raise NotImplementedError

    def describe(self) -> dict:
        """What was fitted (source, shape, scale), recorded in ``metrics.json``."""
        return {"task": self.task, "num_coords": len(self.coords), "out_dim": self.out_dim}
