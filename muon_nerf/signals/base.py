"""What the fit loop needs from a signal: coordinates, targets, a forward operator and metrics.

Image, audio, CT, SISR and SDF differ only here. Pointwise signals (image, audio) need nothing but
``coords``/``values``; inverse problems (CT, SISR) override ``forward`` and ``measurements``;
SDF overrides ``sample`` and ``loss``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from muon_nerf.signals.metrics import mse

Panel = tuple[str, np.ndarray, str | None]
"""(title, array, colormap): images are 2-D/3-D arrays, 1-D arrays are drawn as lines."""


@dataclass
class Batch:
    coords: Tensor
    target: Tensor


class Signal:
    """Base class: a pointwise signal ``values[i] = f(coords[i])`` observed directly."""

    task: str = "signal"
    primary_metric: str = "psnr"
    coords: Tensor
    values: Tensor
    pointwise: bool = True
    """True when the loss at a coordinate needs only the field at that coordinate, so
    mini-batches of coordinates are valid; inverse problems set it False."""

    @property
    def in_dim(self) -> int:
        return self.coords.shape[-1]

    @property
    def out_dim(self) -> int:
        return self.values.shape[-1]

    def to(self, device: str | torch.device) -> Signal:
        for name, value in list(vars(self).items()):
            if isinstance(value, Tensor):
                setattr(self, name, value.to(device))
        return self

    def measurements(self) -> Tensor:
        """What is observed: the values themselves, or their image under the forward operator."""
        return self.values

    def forward(self, prediction: Tensor) -> Tensor:
        """Forward operator from field values at all ``coords`` to measurements (identity here)."""
        return prediction

    def sample(self, batch_size: int | None, generator: torch.Generator) -> Batch:
        if batch_size is None or batch_size >= len(self.coords):
            return Batch(self.coords, self.measurements())
        if not self.pointwise:
            raise ValueError(
                f"{self.task} is an inverse problem: its loss needs every coordinate; drop --batch-size"
            )
        idx = torch.randint(len(self.coords), (batch_size,), generator=generator, device=generator.device)
        return Batch(self.coords[idx], self.values[idx])

    def loss(self, field: nn.Module, batch: Batch) -> Tensor:
        """MSE in measurement space (``sample`` guarantees full coordinates for inverse problems)."""
        return mse(self.forward(field(batch.coords)), batch.target)

    @torch.no_grad()
    def predict(self, field: nn.Module, chunk: int = 1 << 16) -> Tensor:
        """Field values at every coordinate, in chunks so memory stays bounded."""
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
