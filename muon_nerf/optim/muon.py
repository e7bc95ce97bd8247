"""Muon for hidden-layer matrices and Adam for everything else, as one ``torch.optim.Optimizer``.

Why one object: schedulers, ``state_dict()`` and checkpointing then work exactly as with any
torch optimizer. The Muon update is ``torch.optim.Muon``'s (momentum, Nesterov, quintic
Newton–Schulz orthogonalization in bf16, shape-dependent LR scale), written here from the math
with public torch API only (tests check it against ``torch.optim.Muon``); Adam groups use
``torch.optim.adam.adam``, the functional behind ``torch.optim.Adam``.

This module is the algorithm only: which parameters go to Muon, and the command-line settings,
are the policy in :mod:`muon_nerf.optim.groups`.
"""

from __future__ import annotations

import math
import numbers
from collections import defaultdict
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any, Literal, get_args

import torch
from jaxtyping import Float
from torch import Tensor
from torch.optim import adam as _adam
from torch.optim.optimizer import ParamsT

CompileMode = Literal["default", "reduce-overhead", "max-autotune-no-cudagraphs"]
AdjustLr = Literal["original", "match_rms_adamw"]

DEFAULTS: dict[str, Any] = dict(
    use_muon=False,
    muon_lr=0.02,  # Keller Jordan's
    momentum=0.95,
    nesterov=True,
    ns_steps=5,
    ns_coefficients=(3.4445, -4.7750, 2.0315),
    ns_eps=1e-7,
    muon_weight_decay=0.0,  # the paper's; torch.optim.Muon's is 0.1
    adjust_lr="original",
    adam_lr=1e-3,
    betas=(0.9, 0.999),
    adam_eps=1e-8,
    adam_weight_decay=0.0,
)
"""``MuonWithAuxAdam``'s hyperparameters and defaults, declared once: torch.optim.Muon's for Muon
(except weight decay 0) and torch.optim.Adam's for Adam. Also the optimizer's ``defaults``."""
MUON_KEYS: dict[str, str] = dict(
    lr="muon_lr",
    momentum="momentum",
    nesterov="nesterov",
    ns_steps="ns_steps",
    ns_coefficients="ns_coefficients",
    eps="ns_eps",
    weight_decay="muon_weight_decay",
    adjust_lr="adjust_lr",
)
"""A Muon group's hyperparameters (torch.optim.Muon's names), each with the default it takes."""
ADAM_KEYS: dict[str, str] = dict(
    lr="adam_lr", betas="betas", eps="adam_eps", weight_decay="adam_weight_decay"
)
"""An Adam group's hyperparameters (torch.optim.Adam's names), each with the default it takes."""
OTHER_KEYS = ("params", "use_muon", "param_names", "initial_lr")
"""Keys any group may hold besides its hyperparameters (``param_names``: torch's named params;
``initial_lr``: set by LR schedulers, given again when a group is added after one)."""
MAX_NS_STEPS = 99

MUON_LR: float = DEFAULTS["muon_lr"]
"""Muon's learning rate unless a task sets its own."""
ADAM_LR: float = DEFAULTS["adam_lr"]


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

    A Muon group's keys are ``lr, momentum, nesterov, ns_steps, ns_coefficients, eps,
    weight_decay, adjust_lr``; an Adam group's ``lr, betas, eps, weight_decay``. What a group
    leaves out comes from the constructor's arguments (``muon_lr``, ``ns_eps``,
    ``muon_weight_decay`` for Muon's ``lr``, ``eps``, ``weight_decay``; ``adam_lr``,
    ``adam_eps``, ``adam_weight_decay`` for Adam's), here and in :meth:`add_param_group`. Every
    value is checked there; a key the group's kind does not take is refused, not ignored.

    ``batched=True`` orthogonalizes all same-shape Muon matrices of a group as one batched
    Newton–Schulz chain; ``False`` runs one chain per matrix (the reference; the two agree within
    bf16 rounding). ``compile`` (GPU, batched only) runs that chain through ``torch.compile`` in
    the given mode (``reduce-overhead`` replays it as a CUDA graph): fewer launches for small
    fields; whether it pays is measured by ``scripts/bench_speed.py``, so it is off by default.
    """

    def __init__(
        self,
        params: ParamsT,
        muon_lr: float = DEFAULTS["muon_lr"],
        momentum: float = DEFAULTS["momentum"],
        nesterov: bool = DEFAULTS["nesterov"],
        ns_steps: int = DEFAULTS["ns_steps"],
        ns_coefficients: tuple[float, float, float] = DEFAULTS["ns_coefficients"],
        ns_eps: float = DEFAULTS["ns_eps"],
        muon_weight_decay: float = DEFAULTS["muon_weight_decay"],
        adjust_lr: AdjustLr = DEFAULTS["adjust_lr"],
        adam_lr: float = DEFAULTS["adam_lr"],
        betas: tuple[float, float] = DEFAULTS["betas"],
        adam_eps: float = DEFAULTS["adam_eps"],
        adam_weight_decay: float = DEFAULTS["adam_weight_decay"],
        *,
        batched: bool = True,
        compile: CompileMode | None = None,
    ) -> None:
        if not isinstance(batched, bool):
            raise ValueError(f"Invalid batched value: {batched!r} (True or False expected)")
        if compile is not None and compile not in get_args(CompileMode):
            raise ValueError(f"Invalid compile value: {compile!r} (None or one of {get_args(CompileMode)})")
        if compile is not None and not batched:
            raise ValueError("compile applies to the batched Newton–Schulz chain: use it with batched=True")
        defaults = dict(
            use_muon=False,
            muon_lr=muon_lr,
            momentum=momentum,
            nesterov=nesterov,
            ns_steps=ns_steps,
            ns_coefficients=ns_coefficients,
            ns_eps=ns_eps,
            muon_weight_decay=muon_weight_decay,
            adjust_lr=adjust_lr,
            adam_lr=adam_lr,
            betas=betas,
            adam_eps=adam_eps,
            adam_weight_decay=adam_weight_decay,
        )
        for use_muon in (True, False):
            check_hyperparameters(group_defaults(defaults, use_muon), use_muon)
        self.batched = batched
        self.compile = compile
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """torch's ``add_param_group``, with the defaults of the group's kind (Muon or Adam)
        filled in and every key and value checked before the group is added."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")
        use_muon = param_group.setdefault("use_muon", self.defaults["use_muon"])
        if not isinstance(use_muon, bool):
            raise ValueError(f"Invalid use_muon value: {use_muon!r} (True or False expected)")
        defaults = group_defaults(self.defaults, use_muon)
        allowed = (*defaults, *OTHER_KEYS)
        unknown = [key for key in param_group if key not in allowed]
        if unknown:
            raise ValueError(
                f"Unknown param group key(s) {', '.join(map(repr, unknown))} for "
                f"{'a Muon' if use_muon else 'an Adam'} group (use_muon={use_muon}); "
                f"allowed: {', '.join(allowed)}"
            )
        for key, value in defaults.items():
            param_group.setdefault(key, value)
        check_hyperparameters(param_group, use_muon)
        params = param_group["params"]
        if not isinstance(params, (Tensor, set)):  # a set: torch's TypeError below
            param_group["params"] = params = list(params)  # read an iterator once
        if use_muon:
            check_matrices([params] if isinstance(params, Tensor) else params)
        super().add_param_group(param_group)
        # torch also filled in the defaults a group of this kind does not take: not its keys
        for key in [key for key in param_group if key not in allowed]:
            del param_group[key]

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


def group_defaults(defaults: dict[str, Any], use_muon: bool) -> dict[str, Any]:
    """A Muon (or Adam) group's hyperparameters under the group's own names, from ``defaults``
    (the optimizer's: :data:`DEFAULTS`' names)."""
    return {key: defaults[name] for key, name in (MUON_KEYS if use_muon else ADAM_KEYS).items()}


def check_hyperparameters(group: dict[str, Any], use_muon: bool) -> None:
    """Refuse a Muon (or Adam) group's out-of-range or mistyped value with torch.optim's
    ``ValueError`` ("Invalid momentum value: 1.5")."""
    lr = group["lr"]
    if not _is_real(lr) or not 0 <= lr < math.inf:
        raise ValueError(f"Invalid learning rate: {lr!r} (learning rate must be >= 0 and finite)")
    weight_decay = group["weight_decay"]
    if not _is_real(weight_decay) or not 0 <= weight_decay < math.inf:
        raise ValueError(f"Invalid weight_decay value: {weight_decay!r} (>= 0 and finite expected)")
    eps = group["eps"]
    if not use_muon:
        if not _is_real(eps) or not 0 <= eps < math.inf:
            raise ValueError(f"Invalid epsilon value: {eps!r} (>= 0 and finite expected)")
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"Invalid betas value: {betas!r} (a pair (beta1, beta2) expected)")
        for i, beta in enumerate(betas):
            if not _is_real(beta) or not 0 <= beta < 1:
                raise ValueError(f"Invalid beta parameter at index {i}: {beta!r} (in [0, 1) expected)")
        return
    # a zero-norm update divided by a zero floor would be NaN: Muon's eps must be positive
    if not _is_real(eps) or not 0 < eps < math.inf:
        raise ValueError(
            f"Invalid epsilon value: {eps!r} (Muon's Newton–Schulz floor: > 0 and finite expected)"
        )
    momentum = group["momentum"]
    if not _is_real(momentum) or not 0 <= momentum < 1:
        raise ValueError(f"Invalid momentum value: {momentum!r} (in [0, 1) expected)")
    if not isinstance(group["nesterov"], bool):
        raise ValueError(f"Invalid nesterov value: {group['nesterov']!r} (True or False expected)")
    ns_steps = group["ns_steps"]
    if not isinstance(ns_steps, numbers.Integral) or isinstance(ns_steps, bool):
        raise ValueError(
            f"Invalid ns_steps value: {ns_steps!r} (ns_steps must be an int in 1..{MAX_NS_STEPS})"
        )
    if not 0 < ns_steps <= MAX_NS_STEPS:
        raise ValueError(f"Invalid ns_steps value: {ns_steps} (ns_steps must be in 1..{MAX_NS_STEPS})")
    coefficients = group["ns_coefficients"]
    if (
        not isinstance(coefficients, (tuple, list))
        or len(coefficients) != 3
        or not all(_is_real(c) and math.isfinite(c) for c in coefficients)
    ):
        raise ValueError(
            f"Invalid ns_coefficients value: {coefficients!r} (three finite numbers (a, b, c) expected)"
        )
    if group["adjust_lr"] not in get_args(AdjustLr):
        raise ValueError(f"adjust_lr must be 'original' or 'match_rms_adamw', got {group['adjust_lr']!r}")


def check_matrices(params: Iterable[Any]) -> None:
    """Refuse what Muon cannot orthogonalize: a tensor that is not a real 2-D matrix."""
    for p in params:
        p = p[1] if isinstance(p, tuple) else p  # torch's (name, tensor) pairs
        if not isinstance(p, Tensor):
            continue  # torch's add_param_group names it
        if p.ndim != 2:
            raise ValueError(
                f"Muon groups take 2-D weight matrices only; got a parameter of shape "
                f"{tuple(p.shape)} (give biases and vectors to an Adam group)"
            )
        if torch.is_complex(p):
            raise ValueError(f"Muon groups take real parameters only; got {p.dtype}")


def _is_real(value: Any) -> bool:
    """A real number (numpy's too), not a bool and not NaN."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isnan(value)


@cache
def _newton_schulz(compile_mode: CompileMode | None) -> Callable[..., Tensor]:
    """The batched chain, eager or compiled once per mode (torch.compile caches per shape)."""
    if compile_mode is None:
        return zeropower_via_newtonschulz5
    return torch.compile(zeropower_via_newtonschulz5, mode=compile_mode, fullgraph=True)
