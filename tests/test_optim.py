"""MuonWithAuxAdam against the public ``torch.optim.Muon`` / ``torch.optim.Adam``, Muon's LR
adjustment against its closed forms, the Newton–Schulz band, and the one param-group builder."""

from __future__ import annotations

import ast
import io
import math
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from muon_nerf.fields import FieldConfig, MLPField
from muon_nerf.optim import (
    MuonConfig,
    MuonWithAuxAdam,
    OptimConfig,
    adjusted_lr,
    build_optimizer,
    format_split,
    split_by_role,
    zeropower_via_newtonschulz5,
)
from muon_nerf.optim import muon as muon_module
from tests.conftest import ToyEncodingConfig

BF16_EPS = torch.finfo(torch.bfloat16).eps
"""2⁻⁷: the Newton–Schulz chain runs in bf16 (here and in torch.optim.Muon)."""


def _field(**kw) -> MLPField:
    return MLPField(FieldConfig(arch="relu", num_layers=5, width=32, **kw), 2, 3)


def _loss(field: MLPField, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x, y = torch.rand(64, 2, generator=g) * 2 - 1, torch.rand(64, 3, generator=g)
    return ((field(x) - y) ** 2).mean()


def _train(field: nn.Module, optimizers: list[torch.optim.Optimizer], steps: int) -> None:
    for step in range(steps):
        for o in optimizers:
            o.zero_grad()
        _loss(field, step).backward()
        for o in optimizers:
            o.step()


def test_muon_update_singular_values_in_newton_schulz_band_adam_not():
    torch.manual_seed(1)
    w = nn.Parameter(torch.randn(64, 64) * 0.1)
    g = torch.randn(64, 64)
    deltas = {}
    for name, group in {"muon": dict(use_muon=True, lr=0.1), "adam": dict(use_muon=False, lr=0.1)}.items():
        p = nn.Parameter(w.detach().clone())
        opt = MuonWithAuxAdam([dict(params=[p], **group)])
        p.grad = g.clone()
        opt.step()
        deltas[name] = torch.linalg.svdvals((w - p).detach() / 0.1)
    assert deltas["muon"].min() > 0.5 and deltas["muon"].max() < 1.5
    assert not (deltas["adam"].min() > 0.5 and deltas["adam"].max() < 1.5)


def test_muon_defaults_are_torch_muons_except_weight_decay():
    """Declared once in MuonConfig; they are torch.optim.Muon's, with the paper's weight decay 0."""
    torch_defaults = torch.optim.Muon([nn.Parameter(torch.zeros(2, 2))]).defaults
    ours = MuonConfig()
    assert ours.momentum == torch_defaults["momentum"] and ours.nesterov == torch_defaults["nesterov"]
    assert ours.ns_steps == torch_defaults["ns_steps"] and ours.ns_eps == torch_defaults["eps"]
    assert tuple(ours.ns_coefficients) == tuple(torch_defaults["ns_coefficients"])
    assert ours.muon_weight_decay == 0.0 and torch_defaults["weight_decay"] == 0.1
    group = MuonWithAuxAdam([dict(params=[nn.Parameter(torch.zeros(2, 2))], use_muon=True)]).param_groups[0]
    assert group["weight_decay"] == 0.0 and group["momentum"] == 0.95 and group["ns_steps"] == 5


MUON_SETTINGS = {
    "defaults": MuonConfig(),
    "plain-momentum": MuonConfig(momentum=0.8, nesterov=False, ns_steps=3, ns_eps=1e-6),
}


@pytest.mark.parametrize("adjust", ["original", "match_rms_adamw"])
@pytest.mark.parametrize("settings", list(MUON_SETTINGS))
@pytest.mark.parametrize("batched", [False, True])
def test_matches_public_torch_muon_plus_adam(batched: bool, settings: str, adjust: str):
    """Same updates as ``torch.optim.Muon`` (public class, weight decay 0, same lr, momentum,
    Nesterov, Newton–Schulz settings and LR adjustment) on the Muon matrices plus
    ``torch.optim.Adam`` on the rest, equal within bf16 rounding of the orthogonalized steps.
    The first layer is on Muon too, so a tall (32×2) matrix exercises the shape adjustment."""
    muon = MuonConfig(**{**vars(MUON_SETTINGS[settings]), "adjust_lr": adjust})
    cfg = OptimConfig(optimizer="muon", lr=1e-3, muon_lr=0.05, muon_first_layer=True, muon=muon)
    ours_field, ref_field = _field(), _field()
    ref_field.load_state_dict(ours_field.state_dict())
    ours = MuonWithAuxAdam(cfg.param_groups(ours_field), batched=batched)
    split = split_by_role(ref_field, "muon", muon_first_layer=True)
    ref_muon = torch.optim.Muon(
        [pr.param for pr in split["muon"]],
        lr=0.05,
        weight_decay=0.0,
        momentum=muon.momentum,
        nesterov=muon.nesterov,
        ns_coefficients=muon.ns_coefficients,
        eps=muon.ns_eps,
        ns_steps=muon.ns_steps,
        adjust_lr_fn=adjust,
    )
    ref_adam = torch.optim.Adam([pr.param for pr in split["adam"]], lr=1e-3)
    steps = 5
    _train(ours_field, [ours], steps)
    _train(ref_field, [ref_muon, ref_adam], steps)
    muon_names = {pr.name for pr in split["muon"]}
    assert muon_names == {"first.weight", "hidden.0.weight", "hidden.1.weight", "hidden.2.weight"}
    ref_state = ref_field.state_dict()
    for name, value in ours_field.state_dict().items():
        if name in muon_names:  # each step: at most a bf16 rounding of an O(1) entry, times the lr
            atol = steps * adjusted_lr(0.05, adjust, value.shape) * BF16_EPS
        else:
            atol = 1e-6
        torch.testing.assert_close(value, ref_state[name], atol=atol, rtol=0, msg=name)


def test_batched_and_per_matrix_paths_agree():
    fields = [_field(), _field()]
    fields[1].load_state_dict(fields[0].state_dict())
    cfg = OptimConfig(optimizer="muon", lr=1e-3, muon_lr=0.05, muon_first_layer=True)
    opts = [
        MuonWithAuxAdam(cfg.param_groups(f), batched=b) for f, b in zip(fields, (True, False), strict=True)
    ]
    for field, opt in zip(fields, opts, strict=True):
        _train(field, [opt], 5)
    for (name, a), (_, b) in zip(fields[0].state_dict().items(), fields[1].state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, atol=5 * 0.05 * BF16_EPS, rtol=0, msg=name)
    # and the batched chain orthogonalizes each matrix of a stack as it would on its own
    stack = torch.randn(3, 24, 16, generator=torch.Generator().manual_seed(2))
    coefficients = MuonConfig().ns_coefficients
    together = zeropower_via_newtonschulz5(stack, coefficients, 5, 1e-7).float()
    for i in range(3):
        alone = zeropower_via_newtonschulz5(stack[i : i + 1], coefficients, 5, 1e-7).float()[0]
        torch.testing.assert_close(together[i], alone, atol=2 * BF16_EPS, rtol=0)


@pytest.mark.parametrize(
    "shape, original, match_rms",
    [
        ((64, 16), 2.0, 0.2 * 8.0),  # tall: √(rows/cols) = 2; 0.2·√max = 1.6
        ((16, 64), 1.0, 0.2 * 8.0),  # wide: no boost; AdamW-matched by the larger side
        ((32, 32), 1.0, 0.2 * math.sqrt(32)),
        ((9, 4, 3, 3), 1.5, 0.6),  # conv-shaped: only the first two sizes count
    ],
)
def test_adjusted_lr_closed_forms(shape, original, match_rms):
    size = torch.Size(shape)
    assert adjusted_lr(0.1, "original", size) == pytest.approx(0.1 * original)
    assert adjusted_lr(0.1, "match_rms_adamw", size) == pytest.approx(0.1 * match_rms)
    with pytest.raises(ValueError, match="adjust_lr must be"):
        adjusted_lr(0.1, "spectral", size)  # type: ignore[arg-type]


def test_compiled_chain_matches_eager_within_bf16_rounding():
    """The torch.compile'd chain (the GPU fast path's option) computes the same orthogonalization.

    Compared on full-rank matrices: on a rank-deficient gradient Newton–Schulz blows bf16 rounding
    in the near-null directions up to O(1), so no two implementations agree there."""
    from muon_nerf.optim import _newton_schulz

    g = torch.randn(3, 24, 16, generator=torch.Generator().manual_seed(0))
    muon = MuonConfig()
    eager = _newton_schulz(None)(g, muon.ns_coefficients, muon.ns_steps, muon.ns_eps).float()
    compiled = _newton_schulz("default")(g, muon.ns_coefficients, muon.ns_steps, muon.ns_eps).float()
    assert compiled.shape == eager.shape == g.shape
    torch.testing.assert_close(compiled, eager, atol=2e-2, rtol=0)


def test_compile_needs_the_batched_chain():
    with pytest.raises(ValueError, match="batched=True"):
        MuonWithAuxAdam(OptimConfig().param_groups(_field()), batched=False, compile="default")


def test_split_puts_exactly_hidden_weights_on_muon():
    field = _field()
    split = split_by_role(field)
    muon, adam = split["muon"], split["adam"]
    assert [pr.name for pr in muon] == ["hidden.0.weight", "hidden.1.weight", "hidden.2.weight"]
    assert split["encoding"] == []  # no trainable encoding
    all_ids = {id(p) for p in field.parameters()}
    assert {id(pr.param) for pr in muon} | {id(pr.param) for pr in adam} == all_ids
    assert not {id(pr.param) for pr in muon} & {id(pr.param) for pr in adam}
    muon_first = split_by_role(field, muon_first_layer=True)["muon"]
    assert [pr.name for pr in muon_first] == ["first.weight"] + [pr.name for pr in muon]
    adam_only = split_by_role(field, "adam", muon_first_layer=True)
    assert adam_only["muon"] == [] and {id(pr.param) for pr in adam_only["adam"]} == all_ids
    text = format_split(field)
    assert "muon      hidden   (32, 32)       hidden.0.weight" in text
    assert "adam      first    (32, 2)        first.weight" in text


def test_adam_mode_has_one_group_and_muon_mode_two():
    field = _field()
    assert [g["use_muon"] for g in build_optimizer(field, "adam").param_groups] == [False]
    assert [g["use_muon"] for g in build_optimizer(field, "muon").param_groups] == [True, False]
    assert build_optimizer(field, "muon").param_groups[0]["weight_decay"] == 0.0
    # Muon settings given to the shorthand reach the Muon group
    group = build_optimizer(field, "muon", muon_lr=0.3, momentum=0.9, ns_steps=4).param_groups[0]
    assert (group["lr"], group["momentum"], group["ns_steps"]) == (0.3, 0.9, 4)
    with pytest.raises(ValueError, match="optimizer must be"):
        build_optimizer(field, "sgd")  # type: ignore[arg-type]


@pytest.mark.parametrize("optimizer", ["muon", "adam"])
def test_trainable_encoding_gets_its_own_adam_group(optimizer):
    field = MLPField(FieldConfig(arch="relu", num_layers=4, width=16, encoding=ToyEncodingConfig()), 2, 3)
    split = split_by_role(field, optimizer, muon_first_layer=True)
    assert [pr.name for pr in split["encoding"]] == ["encoding.scale", "encoding.mix"]
    assert not any(pr.role == "encoding" for pr in split["muon"] + split["adam"])  # 2-D, yet never Muon's
    cfg = OptimConfig(optimizer=optimizer, lr=1e-3, encoding_lr=1e-2, encoding_eps=1e-15)
    groups = cfg.param_groups(field)
    encoding = [g for g in groups if any(p is field.encoding.mix for p in g["params"])]
    assert len(encoding) == 1 and len(groups) == (3 if optimizer == "muon" else 2)
    (group,) = encoding
    assert group["params"] == [field.encoding.scale, field.encoding.mix]
    assert not group["use_muon"] and group["lr"] == 1e-2 and group["eps"] == 1e-15
    assert OptimConfig(lr=3e-3).param_groups(field)[-1]["lr"] == 3e-3  # encoding_lr None: --lr

    # stepped as torch.optim.Adam with that lr and eps (the rest as torch's Muon + Adam would step it)
    ref = MLPField(FieldConfig(arch="relu", num_layers=4, width=16, encoding=ToyEncodingConfig()), 2, 3)
    ref.load_state_dict(field.state_dict())
    ref_split = split_by_role(ref, optimizer)
    ref_opts: list[torch.optim.Optimizer] = [
        torch.optim.Adam(
            [
                dict(params=[pr.param for pr in ref_split["adam"]]),
                dict(params=[pr.param for pr in ref_split["encoding"]], lr=1e-2, eps=1e-15),
            ],
            lr=1e-3,
        )
    ]
    if optimizer == "muon":
        ref_opts.append(
            torch.optim.Muon([pr.param for pr in ref_split["muon"]], lr=cfg.muon_lr, weight_decay=0)
        )
    _train(field, [cfg.build(field)], 3)
    _train(ref, ref_opts, 3)
    ref_state = ref.state_dict()
    for name, value in field.state_dict().items():
        torch.testing.assert_close(value, ref_state[name], atol=1e-6, rtol=0, msg=name)


def test_muon_group_rejects_non_matrix_and_complex_and_bad_settings():
    with pytest.raises(ValueError, match=r"2-D weight matrices only; got a parameter of shape \(5,\)"):
        MuonWithAuxAdam([dict(params=[nn.Parameter(torch.zeros(5))], use_muon=True)])
    with pytest.raises(ValueError, match="real parameters only"):
        MuonWithAuxAdam(
            [dict(params=[nn.Parameter(torch.zeros(3, 3, dtype=torch.complex64))], use_muon=True)]
        )
    square = [nn.Parameter(torch.zeros(3, 3))]
    with pytest.raises(ValueError, match="adjust_lr must be"):
        MuonWithAuxAdam([dict(params=square, use_muon=True, adjust_lr="none")])
    with pytest.raises(ValueError, match="ns_steps must be"):
        MuonWithAuxAdam([dict(params=square, use_muon=True, ns_steps=0)])
    with pytest.raises(ValueError, match="learning rate must be >= 0"):
        MuonWithAuxAdam([dict(params=square, use_muon=False, lr=-1.0)])
    with pytest.raises(ValueError, match="--encoding-lr must be > 0"):
        OptimConfig(encoding_lr=0.0).check()


def test_scheduler_and_state_dict_round_trip_through_weights_only_checkpoint():
    fields = [_field(), _field()]
    fields[1].load_state_dict(fields[0].state_dict())
    opts = [build_optimizer(f, "muon", lr=1e-2, muon_lr=0.05) for f in fields]
    scheds = [torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=1e-6) for o in opts]
    for step in range(4):
        opts[0].zero_grad()
        _loss(fields[0], step).backward()
        opts[0].step()
        scheds[0].step()
    buf = io.BytesIO()
    torch.save(
        {"field": fields[0].state_dict(), "opt": opts[0].state_dict(), "sched": scheds[0].state_dict()}, buf
    )
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)
    fields[1].load_state_dict(ckpt["field"])
    opts[1].load_state_dict(ckpt["opt"])
    scheds[1].load_state_dict(ckpt["sched"])
    assert [g["lr"] for g in opts[1].param_groups] == [g["lr"] for g in opts[0].param_groups]
    assert opts[0].param_groups[0]["lr"] < 0.05  # the cosine schedule moved the Muon LR too
    for step in range(4, 7):
        for f, o, s in zip(fields, opts, scheds, strict=True):
            o.zero_grad()
            _loss(f, step).backward()
            o.step()
            s.step()
    for a, b in zip(fields[0].parameters(), fields[1].parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


# MuonWithAuxAdam at torch.optim's standard (issue 26): real defaults, every value checked, typos refused


def _matrix() -> nn.Parameter:
    return nn.Parameter(torch.randn(8, 4, generator=torch.Generator().manual_seed(3)))


def test_unknown_constructor_argument_and_group_key_are_refused():
    p = _matrix()
    with pytest.raises(TypeError, match="bad_key"):  # as torch.optim.Adam([p], bad_key=1) does
        MuonWithAuxAdam([p], bad_key=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="bad_key"):
        torch.optim.Adam([p], bad_key=1)  # type: ignore[call-arg]
    # torch ignores a group key it does not know; a typo here would silently train with the default
    with pytest.raises(ValueError, match=r"'momentun' for a Muon group .*allowed: lr, momentum, nesterov"):
        MuonWithAuxAdam([dict(params=[p], use_muon=True, momentun=0.5)])
    with pytest.raises(
        ValueError, match=r"'momentum' for an Adam group .*allowed: lr, betas, eps, weight_decay"
    ):
        MuonWithAuxAdam([dict(params=[p], momentum=0.5)])  # a Muon key on an Adam group
    with pytest.raises(ValueError, match="Invalid use_muon value: 1"):
        MuonWithAuxAdam([dict(params=[p], use_muon=1)])


BAD_VALUES = [
    (dict(momentum=1.5), "Invalid momentum value: 1.5"),
    (dict(momentum=-0.1), "Invalid momentum value: -0.1"),
    (dict(muon_lr=-1.0), "Invalid learning rate: -1.0"),
    (dict(adam_lr=-1e-3), "Invalid learning rate: -0.001"),
    (dict(muon_lr=math.inf), "Invalid learning rate: inf"),
    (dict(adam_lr=math.nan), "Invalid learning rate: nan"),
    (dict(adam_eps=-1e-8), "Invalid epsilon value: -1e-08"),
    (dict(ns_eps=0.0), "Invalid epsilon value: 0.0"),  # Muon's floor: 0 turns a zero update into NaN
    (dict(muon_weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    (dict(adam_weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    (dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0: 1.0"),
    (dict(betas=(0.9, -0.5)), "Invalid beta parameter at index 1: -0.5"),
    (dict(betas=(0.9,)), "Invalid betas value"),
    (dict(ns_steps=0), "Invalid ns_steps value: 0"),
    (dict(ns_steps=100), "Invalid ns_steps value: 100"),
    (dict(ns_steps=2.5), "Invalid ns_steps value: 2.5"),
    (dict(nesterov="yes"), "Invalid nesterov value: 'yes'"),
    (dict(ns_coefficients=(3.4, -4.7)), "Invalid ns_coefficients value"),
    (dict(adjust_lr="spectral"), "adjust_lr must be 'original' or 'match_rms_adamw'"),
]
"""Constructor arguments out of range or of the wrong type, and the start of their message."""


def _as_group_keys(kwargs: dict) -> tuple[dict, bool]:
    """A constructor argument as the group key it is the default of, and the group's kind."""
    ((name, value),) = kwargs.items()
    for use_muon, keys in ((True, muon_module.MUON_KEYS), (False, muon_module.ADAM_KEYS)):
        for key, default in keys.items():
            if default == name:
                return {key: value}, use_muon
    raise AssertionError(name)


@pytest.mark.parametrize("kwargs, message", BAD_VALUES, ids=[str(kw) for kw, _ in BAD_VALUES])
def test_bad_hyperparameter_is_refused_as_default_as_group_value_and_when_added(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        MuonWithAuxAdam([_matrix()], **kwargs)
    group, use_muon = _as_group_keys(kwargs)
    with pytest.raises(ValueError, match=re.escape(message)):
        MuonWithAuxAdam([dict(params=[_matrix()], use_muon=use_muon, **group)])
    opt = MuonWithAuxAdam([nn.Parameter(torch.zeros(3))])
    with pytest.raises(ValueError, match=re.escape(message)):
        opt.add_param_group(dict(params=[_matrix()], use_muon=use_muon, **group))
    assert len(opt.param_groups) == 1  # nothing half-added


def test_defaults_are_the_constructors_arguments_and_fill_each_kind_of_group():
    p, b = _matrix(), nn.Parameter(torch.zeros(4))
    opt = MuonWithAuxAdam([dict(params=[p], use_muon=True), dict(params=[b])], muon_lr=0.05, momentum=0.9)
    assert opt.defaults == {**muon_module.DEFAULTS, "muon_lr": 0.05, "momentum": 0.9}
    muon, adam = opt.param_groups
    assert {k: v for k, v in muon.items() if k != "params"} == dict(
        use_muon=True,
        lr=0.05,
        momentum=0.9,
        nesterov=True,
        ns_steps=5,
        ns_coefficients=MuonConfig().ns_coefficients,
        eps=1e-7,
        weight_decay=0.0,
        adjust_lr="original",
    )
    assert {k: v for k, v in adam.items() if k != "params"} == dict(
        use_muon=False, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0
    )
    # a bare list of tensors is one group with the defaults: Adam, as a group without use_muon
    (group,) = MuonWithAuxAdam([b], adam_lr=0.01).param_groups
    assert not group["use_muon"] and group["lr"] == 0.01
    # MuonConfig's defaults are the optimizer's, declared once
    assert MuonConfig().group([p], muon_module.MUON_LR) == {
        **muon,
        "params": [p],
        "lr": 0.02,
        "momentum": 0.95,
    }


def test_added_param_groups_take_the_defaults_and_train_as_torch_muon_and_adam():
    """``add_param_group`` with only ``params`` (and ``use_muon``): the group steps as
    ``torch.optim.Muon`` / ``torch.optim.Adam`` built with the same settings would."""
    first = nn.Parameter(torch.zeros(3))
    w, b = _matrix(), nn.Parameter(torch.randn(4, generator=torch.Generator().manual_seed(4)))
    ref_w, ref_b = nn.Parameter(w.detach().clone()), nn.Parameter(b.detach().clone())
    opt = MuonWithAuxAdam(
        [first], muon_lr=0.05, momentum=0.9, nesterov=False, adam_lr=0.01, betas=(0.8, 0.99)
    )
    opt.add_param_group({"params": w, "use_muon": True})  # a lone tensor, as torch takes it
    opt.add_param_group({"params": iter([b])})  # an iterator, read once
    assert [g["params"] for g in opt.param_groups[1:]] == [[w], [b]]
    ref_muon = torch.optim.Muon([ref_w], lr=0.05, momentum=0.9, nesterov=False, weight_decay=0.0)
    ref_adam = torch.optim.Adam([ref_b], lr=0.01, betas=(0.8, 0.99))
    for step in range(3):
        g = torch.Generator().manual_seed(10 + step)
        grad_w, grad_b = torch.randn(8, 4, generator=g), torch.randn(4, generator=g)
        w.grad, ref_w.grad, b.grad, ref_b.grad = grad_w, grad_w.clone(), grad_b, grad_b.clone()
        opt.step()
        ref_muon.step()
        ref_adam.step()
    assert not torch.equal(w, _matrix())  # the added Muon matrix moved...
    torch.testing.assert_close(w, ref_w, atol=3 * adjusted_lr(0.05, "original", w.shape) * BF16_EPS, rtol=0)
    torch.testing.assert_close(b, ref_b, atol=1e-7, rtol=0)  # ...and the added Adam vector, as torch's
    assert torch.equal(first, torch.zeros(3))  # no gradient, no step


def test_add_param_group_refuses_what_torch_refuses_and_non_matrices_on_muon():
    w = _matrix()
    opt = MuonWithAuxAdam([dict(params=[w], use_muon=True)])
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group(dict(params=[w]))  # torch's own check still runs
    with pytest.raises(TypeError, match="ordered collections"):
        opt.add_param_group(dict(params={_matrix()}, use_muon=True))
    with pytest.raises(ValueError, match=r"2-D weight matrices only; got a parameter of shape \(4,\)"):
        opt.add_param_group(dict(params=[nn.Parameter(torch.zeros(4))], use_muon=True))
    with pytest.raises(ValueError, match=r"2-D weight matrices only; got a parameter of shape \(2, 3, 3\)"):
        opt.add_param_group(dict(params=[nn.Parameter(torch.zeros(2, 3, 3))], use_muon=True))
    with pytest.raises(ValueError, match="Unknown param group key"):
        opt.add_param_group(dict(params=[_matrix()], use_muon=True, lr_muon=0.1))
    assert len(opt.param_groups) == 1
    opt.add_param_group(dict(params=[nn.Parameter(torch.zeros(4))]))  # a vector on Adam is fine
    opt.add_param_group(dict(params=[_matrix()], use_muon=True, initial_lr=0.02))  # after a scheduler
    assert len(opt.param_groups) == 3


def test_muon_config_check_refuses_what_the_optimizer_refuses():
    with pytest.raises(ValueError, match="--momentum must be in"):
        MuonConfig(momentum=1.5).check()
    with pytest.raises(ValueError, match="adjust_lr must be"):
        MuonConfig(adjust_lr="spectral").check()  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Invalid ns_coefficients value"):
        MuonConfig(ns_coefficients=(1.0, math.nan, 0.0)).check()


CHECKPOINT_KEYS = {
    True: {"params", "use_muon", "lr", "momentum", "nesterov", "ns_steps", "ns_coefficients", "eps"}
    | {"weight_decay", "adjust_lr", "initial_lr"},
    False: {"params", "use_muon", "lr", "betas", "eps", "weight_decay", "initial_lr"},
}
"""A checkpoint's param group keys, Muon and Adam (the format before issue 26; ``initial_lr``:
the scheduler's)."""


def _through_checkpoint(obj: dict) -> dict:
    """``obj`` saved and loaded back as a resumed run reads it (``weights_only``)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_state_dict_keeps_its_format_and_round_trips_with_an_added_group():
    def build(field: MLPField) -> tuple[MuonWithAuxAdam, torch.optim.lr_scheduler.LRScheduler]:
        """Muon + Adam groups, and the last layer in an Adam group of its own added afterwards."""
        opt = build_optimizer(field, "muon", lr=1e-2, muon_lr=0.05)
        last = [p for name, p in field.named_parameters() if name.startswith("last")]
        opt.param_groups[1]["params"] = [
            p for p in opt.param_groups[1]["params"] if all(p is not q for q in last)
        ]
        opt.add_param_group(dict(params=last, lr=3e-3))
        return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)

    fields = [_field(), _field()]
    fields[1].load_state_dict(fields[0].state_dict())
    (opt, sched), (opt2, sched2) = build(fields[0]), build(fields[1])
    _train(fields[0], [opt], 3)
    for _ in range(3):
        sched.step()
    saved = opt.state_dict()
    assert [set(g) for g in saved["param_groups"]] == [
        CHECKPOINT_KEYS[g["use_muon"]] for g in saved["param_groups"]
    ]
    assert [g["lr"] for g in saved["param_groups"]] == [0.05 / 2, 1e-2 / 2, 3e-3 / 2]
    ckpt = _through_checkpoint({"field": fields[0].state_dict(), "opt": saved, "sched": sched.state_dict()})
    fields[1].load_state_dict(ckpt["field"])
    opt2.load_state_dict(ckpt["opt"])
    sched2.load_state_dict(ckpt["sched"])
    assert opt2.state_dict()["param_groups"] == saved["param_groups"]
    _train(fields[0], [opt], 2)
    _train(fields[1], [opt2], 2)
    for a, b in zip(fields[0].parameters(), fields[1].parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_the_algorithm_module_imports_torch_only():
    """``optim/muon.py`` (the algorithm) never imports the policy or the fields; ``groups.py`` may."""
    tree = ast.parse(Path(muon_module.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not {m for m in imported if m.startswith("muon_nerf")}, imported
