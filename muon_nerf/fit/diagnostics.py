"""Rank diagnostics of weight matrices: the paper's explanation of the low-frequency bias.

Stable rank ``Σσ² / σ_max²`` collapses under Adam and stays high under Muon; effective rank
``exp(H(p))`` with ``p = σ² / Σσ²`` is the smoother entropy-based count (Roy & Vetterli 2007,
on the squared spectrum so both measures weigh energy alike).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor


def singular_values(w: Tensor) -> Tensor:
    """σ of ``w``, computed on the CPU: a field's matrices are small, and a GPU SVD of a 256×256
    matrix costs milliseconds of solver launches and syncs, which made rank tracking a visible
    share of a GPU fit loop."""
    return torch.linalg.svdvals(w.detach().float().cpu())


def _stable(s2: Tensor) -> float:
    return float(s2.sum() / s2.max().clamp_min(1e-30))


def _effective(s2: Tensor) -> float:
    p = s2 / s2.sum().clamp_min(1e-30)
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def stable_rank(w: Tensor) -> float:
    """``‖W‖_F² / ‖W‖_2²``: between 1 (rank one) and min(m, n) (all σ equal)."""
    return _stable(singular_values(w) ** 2)


def effective_rank(w: Tensor) -> float:
    """``exp`` of the Shannon entropy of the normalized squared spectrum."""
    return _effective(singular_values(w) ** 2)


@dataclass
class RankTracker:
    """Stable and effective rank of named matrices, recorded at chosen steps."""

    steps: list[int] = field(default_factory=list)
    stable: dict[str, list[float]] = field(default_factory=dict)
    effective: dict[str, list[float]] = field(default_factory=dict)

    def record(self, step: int, weights: dict[str, Tensor]) -> None:
        self.steps.append(step)
        for name, w in weights.items():
            s2 = singular_values(w) ** 2  # one SVD per matrix for both measures
            self.stable.setdefault(name, []).append(_stable(s2))
            self.effective.setdefault(name, []).append(_effective(s2))

    def final_stable(self) -> dict[str, float]:
        return {name: values[-1] for name, values in self.stable.items()}

    def to_dict(self) -> dict:
        return {"steps": self.steps, "stable_rank": self.stable, "effective_rank": self.effective}

    @classmethod
    def from_dict(cls, data: dict) -> RankTracker:
        """The tracker ``to_dict`` described (a resumed fit continues its curves)."""
        return cls(list(data["steps"]), dict(data["stable_rank"]), dict(data["effective_rank"]))
