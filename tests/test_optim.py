"""MuonWithAuxAdam against torch.optim.Muon / torch.optim.Adam and the Newton–Schulz band."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from muon_nerf.fields import FieldConfig, MLPField
from muon_nerf.optim import MuonWithAuxAdam, build_optimizer, format_split, split_params


def _field(**kw) -> MLPField:
    return MLPField(FieldConfig(arch="relu", num_layers=5, width=32, **kw), 2, 3)


def _loss(field: MLPField, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x, y = torch.rand(64, 2, generator=g) * 2 - 1, torch.rand(64, 3, generator=g)
    return ((field(x) - y) ** 2).mean()


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


@pytest.mark.parametrize("batched", [False, True])
def test_matches_torch_muon_plus_adam(batched: bool):
    """Same updates as torch.optim.Muon on the hidden weights + torch.optim.Adam on the rest."""
    ours_field, ref_field = _field(), _field()
    ref_field.load_state_dict(ours_field.state_dict())
    ours = build_optimizer(ours_field, "muon", lr=1e-3, muon_lr=0.05, batched=batched)
    muon_ref, adam_ref = split_params(ref_field)
    ref_m = torch.optim.Muon([pr.param for pr in muon_ref], lr=0.05, weight_decay=0.0)
    ref_a = torch.optim.Adam([pr.param for pr in adam_ref], lr=1e-3)
    for step in range(5):
        for field, opts in ((ours_field, [ours]), (ref_field, [ref_m, ref_a])):
            for o in opts:
                o.zero_grad()
            _loss(field, step).backward()
            for o in opts:
                o.step()
    # bf16 Newton–Schulz: the batched chain may round differently from the per-matrix one
    tol = dict(atol=0, rtol=0) if not batched else dict(atol=2e-3, rtol=0)
    for (n, a), (_, b) in zip(ours_field.state_dict().items(), ref_field.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, **tol, msg=n)


def test_compiled_chain_matches_eager_within_bf16_rounding():
    """The torch.compile'd chain (the GPU fast path's option) computes the same orthogonalization.

    Compared on full-rank matrices: on a rank-deficient gradient Newton–Schulz blows bf16 rounding
    in the near-null directions up to O(1), so no two implementations agree there."""
    from torch.optim import _muon

    from muon_nerf.optim import _newton_schulz

    g = torch.randn(3, 24, 16, generator=torch.Generator().manual_seed(0))
    coefficients = (_muon.DEFAULT_A, _muon.DEFAULT_B, _muon.DEFAULT_C)
    eager = _newton_schulz(None)(g, coefficients, 5, _muon.EPS).float()
    compiled = _newton_schulz("default")(g, coefficients, 5, _muon.EPS).float()
    assert compiled.shape == eager.shape == g.shape
    torch.testing.assert_close(compiled, eager, atol=2e-2, rtol=0)


def test_compile_needs_the_batched_chain():
    with pytest.raises(ValueError, match="batched=True"):
        build_optimizer(_field(), "muon", batched=False, compile="default")


def test_split_puts_exactly_hidden_weights_on_muon():
    field = _field()
    muon, adam = split_params(field)
    assert [pr.name for pr in muon] == ["hidden.0.weight", "hidden.1.weight", "hidden.2.weight"]
    all_ids = {id(p) for p in field.parameters()}
    assert {id(pr.param) for pr in muon} | {id(pr.param) for pr in adam} == all_ids
    assert not {id(pr.param) for pr in muon} & {id(pr.param) for pr in adam}
    muon_first, _ = split_params(field, muon_first_layer=True)
    assert [pr.name for pr in muon_first] == ["first.weight"] + [pr.name for pr in muon]
    text = format_split(field)
    assert "muon   hidden   (32, 32)       hidden.0.weight" in text
    assert "adam   first    (32, 2)        first.weight" in text


def test_adam_mode_has_one_group_and_muon_mode_two():
    field = _field()
    assert [g["use_muon"] for g in build_optimizer(field, "adam").param_groups] == [False]
    assert [g["use_muon"] for g in build_optimizer(field, "muon").param_groups] == [True, False]
    assert build_optimizer(field, "muon").param_groups[0]["weight_decay"] == 0.0
    with pytest.raises(ValueError, match="optimizer must be"):
        build_optimizer(field, "sgd")  # type: ignore[arg-type]


def test_muon_group_rejects_non_matrix_and_complex():
    with pytest.raises(ValueError, match=r"2-D weight matrices only; got a parameter of shape \(5,\)"):
        MuonWithAuxAdam([dict(params=[nn.Parameter(torch.zeros(5))], use_muon=True)])
    with pytest.raises(ValueError, match="real parameters only"):
        MuonWithAuxAdam(
            [dict(params=[nn.Parameter(torch.zeros(3, 3, dtype=torch.complex64))], use_muon=True)]
        )


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
