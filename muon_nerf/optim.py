"""Muon for hidden-layer matrices and Adam for everything else, as one ``torch.optim.Optimizer``.

Why one object: schedulers, ``state_dict()`` and checkpointing then work exactly as with any
torch optimizer. Muon groups reuse ``torch.optim.Muon``'s own update (momentum, Newton–Schulz
orthogonalization, shape-dependent LR adjustment); Adam groups reuse ``torch.optim.adam``.

Which parameters go to Muon is decided by each layer's *role* in the field (first, hidden,
last, encoding, head), never by guessing from tensor shapes: a first-layer weight is 2-D too,
but orthogonalizing it hurts coordinate networks (McGinnis et al. 2025).
"""

from __future__ import annotations

import inspect
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, Protocol

import torch
from torch import Tensor, nn
from torch.optim import _muon
from torch.optim import adam as _adam

Role = Literal["first", "hidden", "last", "encoding", "head"]
OptimizerName = Literal["adam", "muon"]
CompileMode = Literal["default", "reduce-overhead", "max-autotune-no-cudagraphs"]

# torch.optim.Muon's functional gained a required ``use_addmm`` flag in some releases (≥ 2.9 vary);
# the reference path passes it (off, torch's default) only where the signature has it.
_REFERENCE_EXTRA = {"use_addmm": False} if "use_addmm" in inspect.signature(_muon.muon).parameters else {}


@dataclass(frozen=True)
class ParamRole:
    """One trainable tensor and the role of the layer it belongs to."""

    name: str
    param: nn.Parameter
    role: Role
    is_weight: bool


class HasParamRoles(Protocol):
    """Anything whose trainable tensors can be listed with their layer roles (our fields)."""

    def param_roles(self) -> Iterator[ParamRole]: ...


def goes_to_muon(pr: ParamRole, muon_first_layer: bool = False) -> bool:
    """Muon gets hidden-layer weight matrices (and the first layer's, when asked)."""
    return pr.is_weight and (pr.role == "hidden" or (muon_first_layer and pr.role == "first"))


def zeropower_via_newtonschulz5_batched(
    g: Tensor, ns_coefficients: tuple[float, float, float], ns_steps: int, eps: float
) -> Tensor:
    """``torch.optim.Muon``'s quintic Newton–Schulz iteration on a stack ``(k, m, n)`` of matrices.

    Same coefficients, bf16 arithmetic, Frobenius pre-normalization and transposition rule as
    ``torch.optim._muon._zeropower_via_newtonschulz``, but one batched matmul chain for all k
    matrices: on a GPU the per-matrix chains of a small field are launch-bound, so batching
    turns ``5·k`` tiny launches per iteration into 5.
    """
    a, b, c = ns_coefficients
    x = g.bfloat16()
    tall = g.size(-2) > g.size(-1)
    if tall:
        x = x.mT
    x = x / x.norm(dim=(-2, -1), keepdim=True).clamp(min=eps)
    for _ in range(ns_steps):
        gram = x @ x.mT
        gram_update = torch.baddbmm(gram, gram, gram, beta=b, alpha=c)
        x = torch.baddbmm(x, gram_update, x, beta=a)
    return x.mT if tall else x


class MuonWithAuxAdam(torch.optim.Optimizer):
    """Muon on param groups flagged ``use_muon=True``, Adam on the others.

    Muon group keys: ``lr, momentum, nesterov, weight_decay, ns_coefficients, ns_steps, eps,
    adjust_lr_fn`` (defaults as ``torch.optim.Muon`` except ``weight_decay=0``, the paper's
    setting). Adam group keys: ``lr, betas, eps, weight_decay``.

    ``batched=True`` runs all same-shape Muon matrices of a group as one batched
    Newton–Schulz chain with foreach momentum; ``False`` calls ``torch.optim.Muon``'s
    per-parameter functional (the reference; the two agree within bf16 rounding).
    ``compile`` (GPU only, batched only) runs that chain through ``torch.compile`` in the given
    mode (``reduce-overhead`` replays it as a CUDA graph): fewer launches for small fields; whether
    it pays is measured by ``scripts/bench_speed.py``, so it is off by default.
    """

    MUON_DEFAULTS: dict[str, Any] = dict(
        lr=0.02,
        momentum=0.95,
        nesterov=True,
        weight_decay=0.0,
        ns_coefficients=(_muon.DEFAULT_A, _muon.DEFAULT_B, _muon.DEFAULT_C),
        ns_steps=_muon.DEFAULT_NS_STEPS,
        eps=_muon.EPS,
        adjust_lr_fn=None,
    )
    ADAM_DEFAULTS: dict[str, Any] = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)

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
        kwargs = {
            k: group[k]
            for k in (
                "lr",
                "weight_decay",
                "momentum",
                "nesterov",
                "ns_coefficients",
                "ns_steps",
                "eps",
                "adjust_lr_fn",
            )
        }
        if not self.batched:
            _muon.muon(params, grads, bufs, has_complex=False, **_REFERENCE_EXTRA, **kwargs)
            return
        _batched_muon(params, grads, bufs, orthogonalize=_newton_schulz(self.compile), **kwargs)

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
        return zeropower_via_newtonschulz5_batched
    return torch.compile(zeropower_via_newtonschulz5_batched, mode=compile_mode, fullgraph=True)


def _batched_muon(
    params: list[Tensor],
    grads: list[Tensor],
    bufs: list[Tensor],
    *,
    orthogonalize: Callable[..., Tensor],
    lr: float,
    weight_decay: float,
    momentum: float,
    nesterov: bool,
    ns_coefficients: tuple[float, float, float],
    ns_steps: int,
    eps: float,
    adjust_lr_fn: str | None,
) -> None:
    """``torch.optim.Muon``'s update, with foreach momentum and one NS chain per shape."""
    lr = float(lr)
    torch._foreach_lerp_(bufs, grads, 1 - momentum)
    updates = torch._foreach_lerp(grads, bufs, momentum) if nesterov else bufs
    by_shape: dict[torch.Size, list[int]] = defaultdict(list)
    for i, p in enumerate(params):
        by_shape[p.shape].append(i)
    if weight_decay:
        torch._foreach_mul_(params, 1 - lr * weight_decay)
    for shape, idx in by_shape.items():
        stacked = torch.stack([updates[i] for i in idx])
        ortho = orthogonalize(stacked, ns_coefficients, ns_steps, eps)
        adjusted = _muon._adjust_lr(lr, adjust_lr_fn, shape)
        torch._foreach_add_([params[i] for i in idx], list(ortho.unbind(0)), alpha=-adjusted)


def _validate_group(group: dict[str, Any]) -> None:
    if float(group["lr"]) < 0:
        raise ValueError(f"learning rate must be >= 0, got {group['lr']}")
    if not group["use_muon"]:
        return
    for p in group["params"]:
        if p.ndim != 2:
            raise ValueError(
                f"Muon groups take 2-D weight matrices only; got a parameter of shape "
                f"{tuple(p.shape)} (give biases and vectors to an Adam group)"
            )
        if torch.is_complex(p):
            raise ValueError(f"Muon groups take real parameters only; got {p.dtype}")


def split_params(
    field: HasParamRoles, muon_first_layer: bool = False
) -> tuple[list[ParamRole], list[ParamRole]]:
    """(Muon, Adam) partition of the field's trainable tensors by layer role."""
    muon, adam = [], []
    for pr in field.param_roles():
        if pr.param.requires_grad:
            (muon if goes_to_muon(pr, muon_first_layer) else adam).append(pr)
    return muon, adam


def format_split(field: HasParamRoles, muon_first_layer: bool = False) -> str:
    """Human-readable table of which tensor goes to which optimizer, with shapes."""
    muon, adam = split_params(field, muon_first_layer)
    rows = [f"{'optimizer':<6} {'role':<8} {'shape':<14} name"]
    for opt, prs in (("muon", muon), ("adam", adam)):
        for pr in prs:
            rows.append(f"{opt:<6} {pr.role:<8} {str(tuple(pr.param.shape)):<14} {pr.name}")
    return "\n".join(rows)


def build_optimizer(
    field: HasParamRoles,
    name: OptimizerName = "adam",
    lr: float = 1e-3,
    muon_lr: float = 0.1,
    muon_first_layer: bool = False,
    batched: bool = True,
    compile: CompileMode | None = None,
    **muon_kwargs: Any,
) -> MuonWithAuxAdam:
    """The paper's setup: ``adam`` puts everything on Adam(lr); ``muon`` puts hidden weights on
    Muon(muon_lr) and the rest on Adam(lr). Empty groups are omitted."""
    if name not in ("adam", "muon"):
        raise ValueError(f"optimizer must be 'adam' or 'muon', got {name!r}")
    if name == "adam":
        muon: list[ParamRole] = []
        adam = [pr for pr in field.param_roles() if pr.param.requires_grad]
    else:
        muon, adam = split_params(field, muon_first_layer)
    groups = []
    if muon:
        groups.append(dict(params=[pr.param for pr in muon], use_muon=True, lr=muon_lr, **muon_kwargs))
    if adam:
        groups.append(dict(params=[pr.param for pr in adam], use_muon=False, lr=lr))
    return MuonWithAuxAdam(groups, batched=batched, compile=compile)
