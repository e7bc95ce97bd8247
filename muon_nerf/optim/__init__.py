"""Muon for hidden-layer matrices and Adam for everything else, and the policy that feeds it.

``muon`` is the algorithm (``MuonWithAuxAdam``, Newton–Schulz, Muon's LR scale; imports torch
only); ``groups`` is the policy (``split_by_role``, ``MuonConfig``, ``OptimConfig``; imports
``muon_nerf.fields``). Everything is importable from here.
"""

from muon_nerf.optim.groups import (
    GroupName,
    MuonConfig,
    OptimConfig,
    OptimizerName,
    build_optimizer,
    format_split,
    split_by_role,
)
from muon_nerf.optim.muon import (
    ADAM_LR,
    MUON_LR,
    AdjustLr,
    CompileMode,
    MuonWithAuxAdam,
    adjusted_lr,
    zeropower_via_newtonschulz5,
)
from muon_nerf.optim.muon import _newton_schulz as _newton_schulz  # tests compare it compiled and eager

__all__ = [
    "ADAM_LR",
    "MUON_LR",
    "AdjustLr",
    "CompileMode",
    "GroupName",
    "MuonConfig",
    "MuonWithAuxAdam",
    "OptimConfig",
    "OptimizerName",
    "adjusted_lr",
    "build_optimizer",
    "format_split",
    "split_by_role",
    "zeropower_via_newtonschulz5",
]
