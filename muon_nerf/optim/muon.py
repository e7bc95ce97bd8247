"""Muon for hidden-layer matrices and Adam for everything else, as one ``torch.optim.Optimizer``.

Why one object: schedulers, ``state_dict()`` and checkpointing then work exactly as with any
torch optimizer. The Muon update is ``torch.optim.Muon``'s (momentum, Nesterov, quintic
Newton–Schulz orthogonalization in bf16, shape-dependent LR scale), written here from the math
with public torch API only (tests check it against ``torch.optim.Muon``); Adam groups use
``torch.optim.adam.adam``, the functional behind ``torch.optim.Adam``.

Which parameters go to Muon is decided by each layer's *role* in the field (first, hidden,
last, encoding, head), never by guessing from tensor shapes: a first-layer weight is 2-D too,
but orthogonalizing it hurts coordinate networks (McGinnis et al. 2025). ``split_by_role`` is the
one place that decides; every front end (``muon-fit``, ``muon-sdf``, ``muon-sweep``, the
nerfstudio plugin) builds its groups through it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

import torch
from jaxtyping import Float
from torch import Tensor
from torch.optim import adam as _adam

from muon_nerf.fields.roles import HasParamRoles, ParamRole

OptimizerName = Literal["adam", "muon"]
GroupName = Literal["muon", "adam", "encoding"]
CompileMode = Literal["default", "reduce-overhead", "max-autotune-no-cudagraphs"]
AdjustLr = Literal["original", "match_rms_adamw"]

MUON_LR = 0.02
"""Muon's learning rate unless a task sets its own (Keller Jordan's default)."""
ADAM_LR = 1e-3


@dataclass
class MuonConfig:
    """Muon's hyperparameters besides the learning rate: torch.optim.Muon's defaults, except
    weight decay 0 (the paper's setting; torch defaults to 0.1). Declared once, nested by every
    front end."""

    momentum: float = 0.95
    """Momentum β in [0, 1): Muon orthogonalizes the running average buf ← β·buf + (1 - β)·grad."""
    nesterov: bool = True
    """Nesterov momentum: orthogonalize the gradient blended with the buffer rather than the buffer."""
    ns_steps: int = 5
    """Quintic Newton–Schulz iterations."""
    ns_coefficients: tuple[float, float, float] = (3.4445, -4.7750, 2.0315)
    """(a, b, c) of the step X ← aX + b(XXᵀ)X + c(XXᵀ)²X, chosen to maximize the slope at zero."""
    ns_eps: float = 1e-7
    """Floor of the Frobenius norm that normalizes the update before Newton–Schulz."""
    muon_weight_decay: float = 0.0
    """Decoupled weight decay of Muon's matrices: each step scales them by 1 - lr × this (paper: 0)."""
    adjust_lr: AdjustLr = "original"
    """original: lr·√max(1, rows/cols); match_rms_adamw: lr·0.2·√max(rows, cols)."""

    def check(self) -> None:
        """Refuse bad values with one line before any work (the optimizer checks them again)."""
        if not 0 <= self.momentum < 1:
            raise ValueError(f"--momentum must be in [0, 1), got {self.momentum}")
        if not 0 < self.ns_steps < 100:
            raise ValueError(f"--ns-steps must be in 1..99, got {self.ns_steps}")
        if not self.ns_eps > 0 or not self.muon_weight_decay >= 0:
            raise ValueError("--ns-eps must be > 0 and --muon-weight-decay >= 0")

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


def zeropower_via_newtonschulz5(
    g: Float[Tensor, "k m n"], coefficients: tuple[float, float, float], steps: int, eps: float
) -> Float[Tensor, "k m n"]:
    """Approximately orthogonalize each matrix of a stack ``(k, m, n)``: ``U S' Vᵀ`` with
    ``S'`` near 1 where ``G = U S Vᵀ`` (Keller Jordan's quintic Newton–Schulz iteration).

    In bf16, after scaling each matrix to Frobenius norm ≤ 1 (so its spectral norm is too); on
    the wide orientation (``m ≤ n``) so the Gram matrix ``X Xᵀ`` is the small one. One batched
    matmul chain for all k matrices: a small field's per-matrix chains are launch-bound on a GPU.
    """
    a, b, c = coefficients
    x = g.bfloat16()
    tall = g.size(-2) > g.size(-1)
    if tall:
        x = x.mT
    x = x / x.norm(dim=(-2, -1), keepdim=True).clamp(min=eps)
    for _ in range(steps):
        gram = x @ x.mT
        poly = torch.baddbmm(gram, gram, gram, beta=b, alpha=c)
        x = torch.baddbmm(x, poly, x, beta=a)
    return x.mT if tall else x


def adjusted_lr(lr: float, adjust: AdjustLr, shape: torch.Size) -> float:
    """Muon's shape-dependent step: an orthogonal update of a tall matrix has small per-entry RMS,
    so ``original`` scales by √(rows/cols) when rows > cols; ``match_rms_adamw`` matches
    AdamW's update RMS (0.2·√max dim, Moonshot's rule)."""
    rows, cols = shape[:2]
    if adjust == "original":
        return lr * math.sqrt(max(1.0, rows / cols))
    if adjust == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(rows, cols))
    raise ValueError(f"adjust_lr must be 'original' or 'match_rms_adamw', got {adjust!r}")


class MuonWithAuxAdam(torch.optim.Optimizer):
    """Muon on param groups flagged ``use_muon=True``, Adam on the others.

    Muon group keys: ``lr, momentum, nesterov, weight_decay, ns_coefficients, ns_steps, eps,
    adjust_lr`` (defaults: :class:`MuonConfig`). Adam group keys: ``lr, betas, eps,
    weight_decay``.

    ``batched=True`` orthogonalizes all same-shape Muon matrices of a group as one batched
    Newton–Schulz chain; ``False`` runs one chain per matrix (the reference; the two agree within
    bf16 rounding). ``compile`` (GPU, batched only) runs that chain through ``torch.compile`` in
    the given mode (``reduce-overhead`` replays it as a CUDA graph): fewer launches for small
    fields; whether it pays is measured by ``scripts/bench_speed.py``, so it is off by default.
    """

    MUON_DEFAULTS: dict[str, Any] = {
        k: v for k, v in MuonConfig().group([], MUON_LR).items() if k != "params"
    }
    ADAM_DEFAULTS: dict[str, Any] = dict(lr=ADAM_LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)

    def __init__(
        self,
        param_groups: Iterable[dict[str, Any]],
        batched: bool = True,
        compile: CompileMode | None = None,
    ) -> None:
        if compile is not None and not batched:
            raise ValueError("compile applies to the batched Newton–Schulz chain: use it with batched=True")
        groups = []
        for group in param_groups:
            group = dict(group)
            use_muon = bool(group.get("use_muon", False))
            group["params"] = list(group["params"])
            for key, value in (self.MUON_DEFAULTS if use_muon else self.ADAM_DEFAULTS).items():
                group.setdefault(key, value)
            group["use_muon"] = use_muon
            _validate_group(group)
            groups.append(group)
        self.batched = batched
        self.compile = compile
        super().__init__(groups, defaults={})

    @torch.no_grad()
    def step(self, closure=None):  # noqa: ANN001 - torch.optim signature
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            if group["use_muon"]:
                self._muon_step(group)
            else:
                self._adam_step(group)
        return loss

    def _muon_step(self, group: dict[str, Any]) -> None:
        """Momentum (Nesterov: the update is the gradient pulled toward the buffer), then each
        update orthogonalized and applied with the shape-adjusted lr."""
        params = [p for p in group["params"] if p.grad is not None]
        if not params:
            return
        grads = [p.grad for p in params]
        bufs = []
        for p in params:
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            bufs.append(state["momentum_buffer"])
        momentum, lr = group["momentum"], float(group["lr"])
        updates = []
        for p, g, buf in zip(params, grads, bufs, strict=True):
            buf.lerp_(g, 1 - momentum)
            updates.append(g.lerp(buf, momentum) if group["nesterov"] else buf)
            if group["weight_decay"]:
                p.mul_(1 - lr * group["weight_decay"])
        orthogonalize = _newton_schulz(self.compile if self.batched else None)
        buckets: dict[object, list[int]] = defaultdict(list)  # batched: one chain per shape
        for i, p in enumerate(params):
            buckets[p.shape if self.batched else i].append(i)
        for idx in buckets.values():
            shape = params[idx[0]].shape
            ortho = orthogonalize(
                torch.stack([updates[i] for i in idx]),
                group["ns_coefficients"],
                group["ns_steps"],
                group["eps"],
            )
            step = adjusted_lr(lr, group["adjust_lr"], shape)
            for i, update in zip(idx, ortho.unbind(0), strict=True):
                params[i].add_(update, alpha=-step)

    def _adam_step(self, group: dict[str, Any]) -> None:
        params, grads, exp_avgs, exp_avg_sqs, steps = [], [], [], [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if not state:
                state["step"] = torch.tensor(0.0)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            params.append(p)
            grads.append(p.grad)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            steps.append(state["step"])
        if not params:
            return
        beta1, beta2 = group["betas"]
        _adam.adam(
            params,
            grads,
            exp_avgs,
            exp_avg_sqs,
            [],
            steps,
            amsgrad=False,
            beta1=beta1,
            beta2=beta2,
            lr=group["lr"],
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=False,
        )


@cache
def _newton_schulz(compile_mode: CompileMode | None) -> Callable[..., Tensor]:
    """The batched chain, eager or compiled once per mode (torch.compile caches per shape)."""
    if compile_mode is None:
        return zeropower_via_newtonschulz5
    return torch.compile(zeropower_via_newtonschulz5, mode=compile_mode, fullgraph=True)


def _validate_group(group: dict[str, Any]) -> None:
    if float(group["lr"]) < 0:
        raise ValueError(f"learning rate must be >= 0, got {group['lr']}")
    if not group["use_muon"]:
        return
    if group["adjust_lr"] not in ("original", "match_rms_adamw"):
        raise ValueError(f"adjust_lr must be 'original' or 'match_rms_adamw', got {group['adjust_lr']!r}")
    if not 0 < group["ns_steps"] < 100:
        raise ValueError(f"ns_steps must be in 1..99, got {group['ns_steps']}")
    for p in group["params"]:
        if p.ndim != 2:
            raise ValueError(
                f"Muon groups take 2-D weight matrices only; got a parameter of shape "
                f"{tuple(p.shape)} (give biases and vectors to an Adam group)"
            )
        if torch.is_complex(p):
            raise ValueError(f"Muon groups take real parameters only; got {p.dtype}")


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
    lr: float = ADAM_LR
    """Adam learning rate (all parameters with adam; first/last layers and biases with muon,
    unless --muon-adam-lr is given). The task commands default all three lrs to the values tuned
    for the task and --arch, where a sweep chose them (docs/results/sweeps/tuned.md)."""
    muon_lr: float = MUON_LR
    """Muon learning rate for the hidden-layer weight matrices."""
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
            groups.append(self.muon.group((pr.param for pr in split["muon"]), self.muon_lr))
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

    def adam_lr(self, optimizer: OptimizerName) -> float:
        """The lr of a run's Adam group: --lr, or in a Muon run --muon-adam-lr where given."""
        return self.lr if optimizer == "adam" or self.muon_adam_lr is None else self.muon_adam_lr

    def describe_lrs(self, optimizer: OptimizerName) -> str:
        """The learning rates a run of ``optimizer`` uses, as its flags: printed before a fit,
        because the task commands' defaults depend on the arch."""
        encoding = "" if self.encoding_lr is None else f", encodings {self.encoding_lr:.3g}"
        if optimizer == "adam":
            return f"adam: --lr {self.lr:.3g}{encoding}"
        return (
            f"muon: --muon-lr {self.muon_lr:.3g} (hidden matrices), Adam {self.adam_lr('muon'):.3g} (rest)"
            f"{encoding}"
        )

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
