"""``--hash-implementation tcnn``: the glue that lends our table to tiny-cuda-nn's grid (on the
CPU, against a stand-in ``tinycudann`` that records what it is given), the one-line refusals, and,
where CUDA and tiny-cuda-nn are installed, values and gradients against the torch path."""

from __future__ import annotations

import importlib.util
import sys
import types

import pytest
import torch
from torch import nn

from muon_nerf.fields.hashgrid import HashGridConfig, HashGridEncoding
from muon_nerf.fields.hashgrid_tcnn import tcnn_config

HAS_TCNN = torch.cuda.is_available() and importlib.util.find_spec("tinycudann") is not None

# dense and hashed levels in 2-D and 3-D, tiny-cuda-nn's supported features per level
GRIDS = [
    (2, dict(levels=4, features_per_level=2, log2_table_size=6, base_resolution=4, finest_resolution=32)),
    (3, dict(levels=4, features_per_level=2, log2_table_size=6, base_resolution=2, finest_resolution=16)),
    (3, dict(levels=16, features_per_level=2, log2_table_size=14, base_resolution=16, finest_resolution=512)),
]


class StandIn(nn.Module):
    """What the glue uses of ``tinycudann.Encoding``: a flat ``params`` parameter sized from the
    config as tiny-cuda-nn sizes it (given here), and the config it was built with."""

    built: list[dict] = []

    def __init__(self, n_input_dims: int, encoding_config: dict, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        StandIn.built.append({"n_input_dims": n_input_dims, "config": encoding_config, "dtype": dtype})
        self.params = nn.Parameter(torch.zeros(StandIn.num_params))


@pytest.fixture
def stand_in(monkeypatch):
    module = types.SimpleNamespace(Encoding=StandIn)
    monkeypatch.setitem(sys.modules, "tinycudann", module)
    StandIn.built = []
    return StandIn


def test_the_grid_is_handed_to_tcnn_with_our_config_and_keeps_its_own_table(stand_in):
    d, cfg = GRIDS[1]
    reference = HashGridEncoding(d, **cfg)
    stand_in.num_params = reference.table.numel()
    enc = HashGridEncoding(d, **cfg, implementation="tcnn")
    (built,) = stand_in.built
    assert built["n_input_dims"] == 3 and built["dtype"] == torch.float32
    assert built["config"] == {
        "otype": "Grid",
        "type": "Hash",
        "hash": "CoherentPrime",
        "interpolation": "Linear",
        "n_levels": 4,
        "n_features_per_level": 2,
        "log2_hashmap_size": 6,
        "base_resolution": 2,
        "per_level_scale": pytest.approx(2.0),  # 2 → 16 over 4 levels
    }
    # one parameter, the table, in the optimizer's view and in checkpoints, as with torch
    assert [name for name, _ in enc.named_parameters()] == ["table"]
    assert list(enc.state_dict()) == ["table"]
    enc.load_state_dict(reference.state_dict())
    assert torch.equal(enc.table, reference.table)
    with pytest.raises(RuntimeError, match="CUDA"):
        enc(torch.zeros(4, 3))


def test_a_tcnn_layout_that_differs_from_ours_is_refused(stand_in):
    d, cfg = GRIDS[0]
    stand_in.num_params = HashGridEncoding(d, **cfg).table.numel() + 16
    with pytest.raises(ValueError, match="lays this grid out"):
        HashGridConfig(
            hash_levels=4,
            hash_log2_table_size=6,
            hash_base_resolution=4,
            hash_finest_resolution=32,
            hash_implementation="tcnn",
        ).setup(2)


def test_grids_tcnn_does_not_build_are_refused_before_importing_it(stand_in):
    with pytest.raises(ValueError, match="input dimensions"):
        HashGridConfig(hash_implementation="tcnn").setup(1)
    with pytest.raises(ValueError, match="features per level"):
        HashGridConfig(hash_features_per_level=3, hash_implementation="tcnn").setup(3)
    assert stand_in.built == []


@pytest.mark.skipif(importlib.util.find_spec("tinycudann") is not None, reason="tiny-cuda-nn is installed")
def test_without_tcnn_the_flag_is_one_clear_error():
    with pytest.raises(ValueError, match="needs tiny-cuda-nn's torch bindings"):
        HashGridConfig(hash_implementation="tcnn").setup(3)


@pytest.mark.skipif(not HAS_TCNN, reason="needs CUDA and tiny-cuda-nn")
@pytest.mark.parametrize("d, cfg", GRIDS)
def test_tcnn_matches_the_torch_path_on_the_same_table(d, cfg):
    torch.manual_seed(0)
    ours = HashGridEncoding(d, **cfg, init_scale=1.0).cuda()
    theirs = HashGridEncoding(d, **cfg, implementation="tcnn").cuda()
    assert tcnn_config(theirs)["n_levels"] == cfg["levels"]
    theirs.load_state_dict(ours.state_dict())
    x = torch.rand(4096, d, device="cuda") * 2 - 1
    upstream = torch.randn(4096, ours.out_dim, device="cuda")
    values = [enc(x) for enc in (ours, theirs)]
    torch.testing.assert_close(values[1], values[0], rtol=1e-4, atol=1e-3)
    for out in values:
        (out * upstream).sum().backward()
    torch.testing.assert_close(theirs.table.grad, ours.table.grad, rtol=1e-4, atol=1e-3)
