"""Stable and effective rank against closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from muon_nerf.fit.diagnostics import RankTracker, effective_rank, stable_rank
from muon_nerf.runs.figures import ranks_figure


def test_ranks_closed_forms():
    assert stable_rank(torch.eye(8)) == pytest.approx(8.0)
    assert effective_rank(torch.eye(8)) == pytest.approx(8.0)
    rank_one = torch.outer(torch.arange(1.0, 6), torch.arange(1.0, 4))
    assert stable_rank(rank_one) == pytest.approx(1.0, rel=1e-5)
    assert effective_rank(rank_one) == pytest.approx(1.0, rel=1e-4)
    d = torch.diag(torch.tensor([2.0, 1.0, 1.0]))  # σ² = 4, 1, 1
    assert stable_rank(d) == pytest.approx(6 / 4)
    p = torch.tensor([4 / 6, 1 / 6, 1 / 6])
    assert effective_rank(d) == pytest.approx(math.exp(-(p * p.log()).sum().item()))


def test_tracker_records_and_plots(tmp_path):
    tracker = RankTracker()
    for step in (0, 10):
        tracker.record(
            step, {"hidden.0.weight": torch.eye(4) * (step + 1), "hidden.1.weight": torch.ones(3, 3)}
        )
    assert tracker.steps == [0, 10]
    assert tracker.final_stable() == pytest.approx({"hidden.0.weight": 4.0, "hidden.1.weight": 1.0})
    ranks_figure(tracker, tmp_path / "ranks.png")
    assert (tmp_path / "ranks.png").read_bytes()[:4] == b"\x89PNG"
