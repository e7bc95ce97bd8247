"""Fields: shapes, layer roles, initialization statistics, encodings (fixed as buffers, trainable
with their own role), activations, and ω-folding as part of the field's config."""

from __future__ import annotations

import math
import re

import pytest
import torch
from torch import nn

from muon_nerf.fields import ARCHITECTURES, FieldConfig, MLPField
from muon_nerf.fields.activations import ActivationConfig, Finer, Gauss, RealWire
from muon_nerf.fields.encodings import (
    EncodingConfig,
    FourierFeaturesConfig,
    GaussianFourierFeatures,
    PositionalEncoding,
    PositionalEncodingConfig,
)
from muon_nerf.fields.fold import OmegaFoldedLinear, fold_layers
from muon_nerf.fields.inits import InitConfig
from tests.conftest import ToyEncodingConfig, ToyTrainableEncoding

SMALL_ENCODINGS = EncodingConfig(
    positional=PositionalEncodingConfig(pe_frequencies=3), fourier=FourierFeaturesConfig(ff_features=8)
)


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_architecture_maps_coords_to_values(arch: str):
    field = MLPField(FieldConfig(arch=arch, num_layers=4, width=16, encoding=SMALL_ENCODINGS), 2, 3)
    out = field(torch.rand(7, 5, 2) * 2 - 1)
    assert out.shape == (7, 5, 3) and torch.isfinite(out).all()
    roles = [role for _, _, role in field.layers()]
    assert roles == ["first", "hidden", "hidden", "last"]  # num_layers counts all linear layers
    assert list(field.hidden_weights()) == ["hidden.0.weight", "hidden.1.weight"]
    # every trainable tensor has exactly one role
    assert sorted(id(pr.param) for pr in field.param_roles()) == sorted(id(p) for p in field.parameters())


def test_arch_presets_name_their_parts_and_a_part_can_override_them():
    assert FieldConfig(arch="relu_pe").spec() == ARCHITECTURES["relu_pe"]
    assert (ARCHITECTURES["siren"].encoding, ARCHITECTURES["siren"].activation) == ("none", "sine")
    mixed = FieldConfig(arch="siren", encoding=EncodingConfig(encoding="positional"))
    assert mixed.spec().encoding == "positional" and mixed.spec().activation == "sine"
    field = MLPField(FieldConfig(arch="relu", width=8, activation=ActivationConfig(activation="gauss")), 2, 1)
    assert isinstance(field.activation, Gauss)


def test_siren_init_bounds():
    omega, width = 40.0, 64
    cfg = FieldConfig(arch="siren", num_layers=4, width=width, activation=ActivationConfig(omega=omega))
    field = MLPField(cfg.under("adam"), 2, 1)  # the published (unfolded) parametrization
    assert field.first.weight.abs().max() <= 1 / 2
    assert field.first.weight.abs().max() > 0.9 / 2  # uniform fills its range
    bound = math.sqrt(6 / width) / omega
    for layer in [*field.hidden, field.last]:
        assert layer.weight.abs().max() <= bound
        # U(-b, b) has std b/√3
        assert abs(layer.weight.std().item() - bound / math.sqrt(3)) < 0.1 * bound
    finer = MLPField(FieldConfig(arch="finer", width=32, init=InitConfig(first_bias_scale=20.0)), 2, 1)
    assert finer.first.bias.abs().max() > 10


def test_fourier_and_positional_encodings_are_buffers_with_expected_dims():
    ff = GaussianFourierFeatures(2, num_features=128, sigma=10.0)
    assert [n for n, _ in ff.named_buffers()] == ["B"] and not list(ff.parameters())
    assert ff.out_dim == 256 and abs(ff.B.std().item() - 10.0) < 1.5
    pe = PositionalEncoding(3, num_frequencies=4)
    x = torch.rand(5, 3)
    enc = pe(x)
    assert enc.shape == (5, 3 * 9) and pe.out_dim == 27
    torch.testing.assert_close(enc[:, :3], x)
    torch.testing.assert_close(enc[:, 3 + 3 * 2], torch.sin(math.pi * 4 * x[:, 1]), msg="sin(2^2 π x_1)")
    field = MLPField(FieldConfig(arch="relu_ff", width=16, encoding=SMALL_ENCODINGS), 2, 3)
    assert field.first.in_features == 16  # 2 × ff_features
    assert "encoding.B" in field.state_dict() and all(
        "encoding" not in n for n, _ in field.named_parameters()
    )


def test_trainable_encoding_is_plugged_by_config_and_its_tensors_get_the_encoding_role():
    field = MLPField(FieldConfig(arch="relu", num_layers=4, width=8, encoding=ToyEncodingConfig()), 2, 1)
    assert isinstance(field.encoding, ToyTrainableEncoding)
    roles = {pr.name: (pr.role, pr.is_weight) for pr in field.param_roles()}
    assert roles["encoding.scale"] == ("encoding", False) and roles["encoding.mix"] == ("encoding", True)
    assert sorted(id(pr.param) for pr in field.param_roles()) == sorted(id(p) for p in field.parameters())
    field(torch.rand(4, 2)).sum().backward()
    assert field.encoding.scale.grad is not None  # gradients reach the encoding


def test_activations_closed_forms():
    x = torch.linspace(-1, 1, 11)
    torch.testing.assert_close(Finer(2.0)(x), torch.sin(2.0 * (x.abs() + 1) * x))
    torch.testing.assert_close(Gauss(0.5)(x), torch.exp(-(x**2) / 0.5))
    torch.testing.assert_close(RealWire(3.0, 2.0)(x), torch.sin(3 * x) * torch.exp(-4 * x**2))


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(arch="mlp"), "unknown arch"), (dict(num_layers=1), "num_layers"), (dict(width=0), "width")],
)
def test_bad_field_config_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FieldConfig(**kwargs).check()


@pytest.mark.parametrize(
    "config, message",
    [
        (PositionalEncodingConfig(pe_frequencies=0), "--pe-frequencies must be in 1..24"),
        (PositionalEncodingConfig(pe_frequencies=1000), "--pe-frequencies must be in 1..24"),
        (FourierFeaturesConfig(ff_sigma=math.inf), "--ff-sigma finite, > 0; got 256, inf"),
        (FourierFeaturesConfig(ff_sigma=math.nan), "--ff-sigma finite, > 0; got 256, nan"),
    ],
)
def test_encodings_that_would_only_make_nan_are_refused_before_training(config, message):
    """1000 octaves overflow 2^k to inf and an infinite σ makes B infinite: the fit would end in
    NaN and be blamed on the learning rate; refused when the field is built, naming the flag."""
    with pytest.raises(ValueError, match=re.escape(message)):
        config.setup(2)
    PositionalEncodingConfig(pe_frequencies=24).setup(2)  # the bound itself is fine
    # and before any work: the field's own check looks at the encoding its arch uses
    field = FieldConfig(arch="relu_pe" if isinstance(config, PositionalEncodingConfig) else "relu_ff")
    field.encoding.positional = field.encoding.fourier = config
    with pytest.raises(ValueError, match=re.escape(message)):
        field.check()


@pytest.mark.parametrize(
    "arch, factor",
    [("siren", 30.0), ("finer", 30.0), ("gauss", 1 / 0.05), ("wire", 20.0)],
)
def test_omega_folding_keeps_the_function_and_scales_the_stored_matrix(arch, factor):
    activation = ActivationConfig(omega=30.0, gauss_a=0.05, wire_omega=20.0)
    cfg = FieldConfig(arch=arch, num_layers=4, width=16, activation=activation)
    assert cfg.under("muon").fold_frequency() == pytest.approx(factor)
    assert cfg.under("adam").fold_frequency() is None
    torch.manual_seed(0)
    plain = MLPField(cfg.under("adam"), 2, 1)
    torch.manual_seed(0)
    folded = MLPField(cfg.under("muon"), 2, 1)
    assert not isinstance(plain.hidden[0], OmegaFoldedLinear)
    assert all(isinstance(layer, OmegaFoldedLinear) for layer in folded.hidden)
    x = torch.rand(9, 2) * 2 - 1
    torch.testing.assert_close(folded(x), plain(x))
    torch.testing.assert_close(folded.hidden[0].weight, factor * plain.hidden[0].weight)
    assert [pr.name for pr in folded.param_roles() if pr.role == "hidden" and pr.is_weight] == [
        "hidden.0.weight",
        "hidden.1.weight",
    ]


def test_folding_is_a_field_setting_off_for_relu_and_when_disabled():
    relu = FieldConfig(arch="relu", num_layers=3, width=8)
    assert relu.under("muon").fold_frequency() is None  # ReLU is not steep: nothing to fold
    assert not any(isinstance(m, OmegaFoldedLinear) for m in MLPField(relu.under("muon"), 2, 1).modules())
    off = FieldConfig(arch="siren", num_layers=3, width=8, fold_omega=False)
    assert off.under("muon").fold_frequency() is None
    assert not isinstance(MLPField(off.under("muon"), 2, 1).hidden[0], OmegaFoldedLinear)
    # `under` never turns folding back on, and leaves the rest of the config alone
    assert off.under("muon") == off and relu.under("adam") == FieldConfig(
        arch="relu", num_layers=3, width=8, fold_omega=False
    )


def test_fold_layers_replaces_every_linear_in_place():
    layers = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4)])
    x = torch.rand(3, 4)
    before = [layer(x) for layer in layers]
    fold_layers(layers, 5.0)
    for layer, out in zip(layers, before, strict=True):
        assert isinstance(layer, OmegaFoldedLinear) and layer.omega == 5.0
        torch.testing.assert_close(layer(x), out)
