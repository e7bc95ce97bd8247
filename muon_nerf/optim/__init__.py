"""Muon for hidden-layer matrices and Adam for everything else (``muon``), importable from here."""

from muon_nerf.optim.muon import (
    ADAM_LR,
    MUON_LR,
    AdjustLr,
    CompileMode,
    GroupName,
    MuonConfig,
    MuonWithAuxAdam,
    OptimConfig,
    OptimizerName,
    adjusted_lr,
    build_optimizer,
    format_split,
    split_by_role,
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
