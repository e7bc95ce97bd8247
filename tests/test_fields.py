"""Architectures: shapes, layer roles, initialization statistics, encodings as buffers."""

from __future__ import annotations

import math

import pytest
import torch

from muon_nerf.fields import ARCHITECTURES, FieldConfig, MLPField
from muon_nerf.fields.activations import Finer, Gauss, RealWire
from muon_nerf.fields.encodings import GaussianFourierFeatures, PositionalEncoding


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_architecture_maps_coords_to_values(arch: str):
    field = MLPField(FieldConfig(arch=arch, num_layers=4, width=16, ff_features=8, pe_frequencies=3), 2, 3)
    out = field(torch.rand(7, 5, 2) * 2 - 1)
    assert out.shape == (7, 5, 3) and torch.isfinite(out).all()
    roles = [role for _, _, role in field.layers()]
    assert roles == ["first", "hidden", "hidden", "last"]  # num_layers counts all linear layers
    assert list(field.hidden_weights()) == ["hidden.0.weight", "hidden.1.weight"]
    # every trainable tensor has exactly one role
    assert sorted(id(pr.param) for pr in field.param_roles()) == sorted(id(p) for p in field.parameters())


def test_siren_init_bounds():
    omega, width = 40.0, 64
    field = MLPField(FieldConfig(arch="siren", num_layers=4, width=width, omega=omega), 2, 1)
    assert field.first.weight.abs().max() <= 1 / 2
    assert field.first.weight.abs().max() > 0.9 / 2  # uniform fills its range
    bound = math.sqrt(6 / width) / omega
    for layer in [*field.hidden, field.last]:
        assert layer.weight.abs().max() <= bound
        # U(-b, b) has std b/√3
        assert abs(layer.weight.std().item() - bound / math.sqrt(3)) < 0.1 * bound
    finer = MLPField(FieldConfig(arch="finer", width=32, first_bias_scale=20.0), 2, 1)
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
    field = MLPField(FieldConfig(arch="relu_ff", width=16, ff_features=8), 2, 3)
    assert "encoding.B" in field.state_dict() and all(
        "encoding" not in n for n, _ in field.named_parameters()
    )


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
    "arch, factor",
    [("siren", 30.0), ("finer", 30.0), ("gauss", 1 / 0.05), ("wire", 20.0)],
)
def test_omega_folding_keeps_the_function_and_scales_the_stored_matrix(arch, factor):
    from muon_nerf.fields.fold import OmegaFoldedLinear, fold_omega

    cfg = FieldConfig(arch=arch, num_layers=4, width=16, omega=30.0, gauss_a=0.05, wire_omega=20.0)
    field = MLPField(cfg, 2, 1)
    x = torch.rand(9, 2) * 2 - 1
    before, w = field(x), field.hidden[0].weight.detach().clone()
    fold_omega(field)
    assert isinstance(field.hidden[0], OmegaFoldedLinear)
    torch.testing.assert_close(field(x), before)
    torch.testing.assert_close(field.hidden[0].weight, factor * w)
    assert [pr.name for pr in field.param_roles() if pr.role == "hidden" and pr.is_weight] == [
        "hidden.0.weight",
        "hidden.1.weight",
    ]


def test_folding_a_relu_field_is_refused():
    from muon_nerf.fields.fold import fold_omega

    with pytest.raises(ValueError, match="omega folding applies to"):
        fold_omega(MLPField(FieldConfig(arch="relu", num_layers=3, width=8), 2, 1))
