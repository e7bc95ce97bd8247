"""The policy: which of a field's tensors go to Muon, and the optimizer's command-line settings.

Which parameters go to Muon is decided by each layer's *role* in the field (first, hidden,
last, encoding, head), never by guessing from tensor shapes: a first-layer weight is 2-D too,
but orthogonalizing it hurts coordinate networks (McGinnis et al. 2025). ``split_by_role`` is the
one place that decides; every front end (``muon-fit``, ``muon-sdf``, ``muon-sweep``, the
nerfstudio plugin) builds its groups through it, for :class:`~muon_nerf.optim.muon.MuonWithAuxAdam`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from torch import Tensor

from muon_nerf.fields.roles import HasParamRoles, ParamRole
from muon_nerf.optim.muon import (
    ADAM_LR,
    DEFAULTS,
    MAX_NS_STEPS,
    MUON_LR,
    AdjustLr,
    CompileMode,
    MuonWithAuxAdam,
    check_hyperparameters,
)

OptimizerName = Literal["adam", "muon"]
GroupName = Literal["muon", "adam", "encoding"]


@dataclass
class MuonConfig:
    """Muon's hyperparameters besides the learning rate: torch.optim.Muon's defaults, except
    weight decay 0 (the paper's setting; torch defaults to 0.1), as the optimizer declares them.
    Nested by every front end."""

    momentum: float = DEFAULTS["momentum"]
    """Momentum β in [0, 1): Muon orthogonalizes the running average buf ← β·buf + (1 - β)·grad."""
    nesterov: bool = DEFAULTS["nesterov"]
    """Nesterov momentum: orthogonalize the gradient blended with the buffer rather than the buffer."""
    ns_steps: int = DEFAULTS["ns_steps"]
    """Quintic Newton–Schulz iterations."""
    ns_coefficients: tuple[float, float, float] = DEFAULTS["ns_coefficients"]
    """(a, b, c) of the step X ← aX + b(XXᵀ)X + c(XXᵀ)²X, chosen to maximize the slope at zero."""
    ns_eps: float = DEFAULTS["ns_eps"]
    """Floor of the Frobenius norm that normalizes the update before Newton–Schulz."""
    muon_weight_decay: float = DEFAULTS["muon_weight_decay"]
    """Decoupled weight decay of Muon's matrices: each step scales them by 1 - lr × this (paper: 0)."""
    adjust_lr: AdjustLr = DEFAULTS["adjust_lr"]
    """original: lr·√max(1, rows/cols); match_rms_adamw: lr·0.2·√max(rows, cols)."""

    def check(self) -> None:
        """Refuse bad values with one line before any work, named by their flags; anything else
        the optimizer refuses, with its message."""
        if not 0 <= self.momentum < 1:
            raise ValueError(f"--momentum must be in [0, 1), got {self.momentum}")
        if not 0 < self.ns_steps <= MAX_NS_STEPS:
            raise ValueError(f"--ns-steps must be in 1..{MAX_NS_STEPS}, got {self.ns_steps}")
        if not self.ns_eps > 0 or not self.muon_weight_decay >= 0:
            raise ValueError("--ns-eps must be > 0 and --muon-weight-decay >= 0")
        check_hyperparameters(self.group([], MUON_LR), use_muon=True)

    def group(self, params: Iterable[Tensor], lr: float) -> dict[str, Any]:
        """A Muon param group for ``MuonWithAuxAdam`` with these hyperparameters."""
        return dict(
            params=list(params),
            use_muon=True,
            lr=lr,
            momentum=self.momentum,
            nesterov=self.nesterov,
            ns_steps=self.ns_steps,
            ns_coefficients=tuple(self.ns_coefficients),
            eps=self.ns_eps,
            weight_decay=self.muon_weight_decay,
            adjust_lr=self.adjust_lr,
        )


def split_by_role(
    field_: HasParamRoles, optimizer: OptimizerName = "muon", muon_first_layer: bool = False
) -> dict[GroupName, list[ParamRole]]:
    """The field's trainable tensors by group: ``muon`` (hidden weight matrices, and the first
    layer's with ``muon_first_layer``; only when ``optimizer`` is muon), ``encoding`` (a trainable
    encoding's tensors: Adam with its own lr/eps) and ``adam`` (the rest). An exact partition."""
    if optimizer not in ("adam", "muon"):
        raise ValueError(f"optimizer must be 'adam' or 'muon', got {optimizer!r}")
    groups: dict[GroupName, list[ParamRole]] = {"muon": [], "adam": [], "encoding": []}
    for pr in field_.param_roles():
        if not pr.param.requires_grad:
            continue
        to_muon = (
            optimizer == "muon"
            and pr.is_weight
            and (pr.role == "hidden" or (muon_first_layer and pr.role == "first"))
        )
        groups["muon" if to_muon else "encoding" if pr.role == "encoding" else "adam"].append(pr)
    return groups


@dataclass
class OptimConfig:
    """The paper's optimizer flags (--optimizer, --lr, --muon-lr) and Muon's settings."""

    optimizer: OptimizerName = "muon"
    """adam: every parameter trains with Adam (the baseline).
    muon: the hidden-layer weight matrices train with Muon, everything else with Adam."""
    lr: float | None = ADAM_LR
    """Adam learning rate (all parameters with adam; first/last layers and biases with muon).
    Not given: from --preset/--profile, else tuned for the task and --arch, else the task's default."""
    muon_lr: float | None = MUON_LR
    """Muon learning rate for the hidden-layer weight matrices.
    Not given: from --preset/--profile, else tuned for the task and --arch, else the task's default."""
    muon_adam_lr: float | None = None
    """Adam lr of what Muon leaves to Adam (first/last layers, biases) in Muon runs; None: --lr.
    Lets a comparison give each optimizer the Adam lr that is best for it."""
    muon_first_layer: bool = False
    """Also give the first layer's weight matrix to Muon."""
    muon: MuonConfig = field(default_factory=MuonConfig)
    encoding_lr: float | None = None
    """Adam lr of a trainable encoding's parameters (hash grids); None: the run's Adam lr."""
    encoding_eps: float = 1e-15
    """Adam eps of a trainable encoding's parameters (instant-ngp's 1e-15: their gradients are sparse)."""
    muon_compile: CompileMode | None = None
    """GPU: run the batched Newton–Schulz chain through torch.compile in this mode; None = off.
    A compile at start-up; reduce-overhead also replays the chain as a CUDA graph."""

    lr_sources: ClassVar[dict[str, str]] = {}
    """Where each lr came from (``{"lr": "tuned: image/relu", …}``), set on a parsed config by the
    task commands' resolver (``muon_nerf.runs.tuned.resolve_lrs``) and printed by ``describe_lrs``.
    Not a setting: no flag, never saved, dropped by ``dataclasses.replace``."""

    def check(self) -> None:
        """Refuse bad values with a one-line message (called before any work starts)."""
        self.muon.check()
        for name in ("lr", "muon_lr", "muon_adam_lr", "encoding_lr"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"--{name.replace('_', '-')} must be > 0, got {value}")

    def param_groups(
        self, field_: HasParamRoles, optimizer: OptimizerName | None = None
    ) -> list[dict[str, Any]]:
        """Param groups of ``field_`` for ``MuonWithAuxAdam`` (empty groups omitted)."""
        optimizer = optimizer or self.optimizer
        split = split_by_role(field_, optimizer, self.muon_first_layer)
        if optimizer == "muon" and not split["muon"]:
            raise ValueError(
                "--optimizer muon: this field has no hidden weight matrix for Muon (it would train "
                "with Adam only); use --num-layers 3 or more, --muon-first-layer, or --optimizer adam"
            )
        adam_lr = self.adam_lr(optimizer)
        groups = []
        if split["muon"]:
            groups.append(self.muon.group((pr.param for pr in split["muon"]), self.muon_lr_or_default))
        if split["adam"]:
            groups.append(dict(params=[pr.param for pr in split["adam"]], use_muon=False, lr=adam_lr))
        if split["encoding"]:
            lr = adam_lr if self.encoding_lr is None else self.encoding_lr
            groups.append(
                dict(
                    params=[pr.param for pr in split["encoding"]],
                    use_muon=False,
                    lr=lr,
                    eps=self.encoding_eps,
                )
            )
        return groups

    @property
    def muon_lr_or_default(self) -> float:
        """--muon-lr, or where unset Muon's own default (``MUON_LR``)."""
        return MUON_LR if self.muon_lr is None else self.muon_lr

    def adam_lr(self, optimizer: OptimizerName) -> float:
        """The lr of a run's Adam group: --lr, or in a Muon run --muon-adam-lr where given; where
        unset, Adam's own default (``ADAM_LR``)."""
        lr = self.lr if optimizer == "adam" or self.muon_adam_lr is None else self.muon_adam_lr
        return ADAM_LR if lr is None else lr

    def describe_lrs(self, optimizer: OptimizerName) -> str:
        """The learning rates a run of ``optimizer`` uses, as its flags, each with where it came
        from where known (``lr_sources``): printed before a fit, because the task commands'
        defaults depend on the task, the arch and the tuned table. A Muon run's "Adam part" is
        what Muon leaves to Adam (first/last layers, biases)."""

        def lr(name: str, value: float) -> str:
            source = self.lr_sources.get(name)
            return f"{value:.3g}" + (f" ({source})" if source else "")

        encoding = "" if self.encoding_lr is None else f", encodings {self.encoding_lr:.3g}"
        if optimizer == "adam":
            return f"adam: --lr {lr('lr', self.adam_lr('adam'))}{encoding}"
        muon, adam = lr("muon_lr", self.muon_lr_or_default), lr("muon_adam_lr", self.adam_lr("muon"))
        return f"muon: --muon-lr {muon}, Adam part {adam}{encoding}"

    def build(self, field_: HasParamRoles, optimizer: OptimizerName | None = None) -> MuonWithAuxAdam:
        """The optimizer of ``field_``: ``adam`` puts everything on Adam; ``muon`` puts hidden weights
        on Muon and the rest on Adam."""
        return MuonWithAuxAdam(self.param_groups(field_, optimizer), compile=self.muon_compile)


def build_optimizer(field_: HasParamRoles, name: OptimizerName = "adam", **settings: Any) -> MuonWithAuxAdam:
    """Shorthand for ``OptimConfig(optimizer=name, **settings).build(field_)`` (Muon settings such
    as ``momentum`` go into its :class:`MuonConfig`)."""
    muon_keys = {f for f in MuonConfig.__dataclass_fields__}
    muon = MuonConfig(**{k: settings.pop(k) for k in list(settings) if k in muon_keys})
    return OptimConfig(optimizer=name, muon=muon, **settings).build(field_)


def format_split(
    field_: HasParamRoles, optimizer: OptimizerName = "muon", muon_first_layer: bool = False
) -> str:
    """Human-readable table of which tensor goes to which optimizer group, with shapes."""
    rows = [f"{'group':<9} {'role':<8} {'shape':<14} name"]
    for name, prs in split_by_role(field_, optimizer, muon_first_layer).items():
        for pr in prs:
            rows.append(f"{name:<9} {pr.role:<8} {str(tuple(pr.param.shape)):<14} {pr.name}")
    return "\n".join(rows)
