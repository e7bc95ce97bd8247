"""Shared tiny fixtures: tests never read ../shared data, they make their own."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from muon_nerf.fields.encodings import EncodingConfig


@pytest.fixture(autouse=True)
def _deterministic():
    random.seed(0)  # nerfstudio's data loaders draw from it
    torch.manual_seed(0)
    np.random.seed(0)


def make_test_image(h: int = 32, w: int = 32, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A smooth-plus-detail RGB pattern in [0, 1]: enough high frequency that a small plain
    ReLU MLP is capacity/rank limited, so optimizers can be told apart."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    chans = []
    for _ in range(channels):
        fx, fy, ph = rng.uniform(2, 7, 2).tolist() + [rng.uniform(0, 6.28)]
        chans.append(
            0.5 + 0.25 * np.sin(2 * np.pi * (fx * x + fy * y) + ph) + 0.15 * np.cos(9 * np.pi * x * y)
        )
    img = np.stack(chans, -1) + 0.1 * rng.standard_normal((h, w, channels)).cumsum(0) / h
    return np.clip(img, 0, 1).astype(np.float32)


class ToyTrainableEncoding(nn.Module):
    """A trainable encoding in its smallest form, standing in for a hash grid: a learned
    per-coordinate scale (a vector) and a learned mixing matrix (2-D, yet never Muon's)."""

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.out_dim = in_dim
        self.scale = nn.Parameter(torch.ones(in_dim))
        self.mix = nn.Parameter(torch.eye(in_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.scale) @ self.mix


@dataclass
class ToyEncodingConfig(EncodingConfig):
    """Plugs :class:`ToyTrainableEncoding` into any ``FieldConfig`` by configuration alone."""

    def setup(self, name: str, in_dim: int) -> nn.Module:
        return ToyTrainableEncoding(in_dim)
