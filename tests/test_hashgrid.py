"""Hash-grid encoding: values against a plain per-point reference (levels, dense and hashed rows,
d-linear weights), partition of unity and continuity, sparse gradients, its role in the optimizer
split, and ``--arch hash`` end to end in muon-fit image and muon-sdf fit."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from muon_nerf.fields import FieldConfig, MLPField
from muon_nerf.fields.encodings import EncodingConfig
from muon_nerf.fields.hashgrid import HashGridConfig, HashGridEncoding
from muon_nerf.optim import OptimConfig
from tests.conftest import make_test_image

# 2-D: b = 2, vertices per axis 4, 8, 16, 32; a 64-row table holds 4² and 8² densely, hashes 16², 32².
GRID_2D = dict(levels=4, features_per_level=3, log2_table_size=6, base_resolution=4, finest_resolution=32)
# 3-D: vertices per axis 2, 4, 8, 16; 2³ and 4³ dense, 8³ and 16³ hashed into 64 rows.
GRID_3D = dict(levels=4, features_per_level=2, log2_table_size=6, base_resolution=2, finest_resolution=16)


def reference(x: list[float], enc: HashGridEncoding, cfg: dict) -> tuple[list[float], dict[int, float]]:
    """instant-ngp's lookup of one point, written out: its features, and each table row's total
    interpolation weight (what ``d out.sum() / d row`` is)."""
    d, levels, table_max = len(x), cfg["levels"], 2 ** cfg["log2_table_size"]
    growth = math.exp(math.log(cfg["finest_resolution"] / cfg["base_resolution"]) / (levels - 1))
    table = enc.table.detach().double().numpy()
    primes = [np.uint32(1), np.uint32(2654435761), np.uint32(805459861)]
    out: list[float] = []
    row_weights: dict[int, float] = {}
    offset = 0
    for level in range(levels):
        scale = cfg["base_resolution"] * growth**level - 1
        res = round(scale) + 1  # the scales here are whole numbers
        rows_in_level = min(math.ceil(res**d / 8) * 8, table_max)
        pos = [((xi + 1) / 2) * scale + 0.5 for xi in x]
        cell = [math.floor(p) for p in pos]
        frac = [p - c for p, c in zip(pos, cell, strict=True)]
        features = np.zeros(cfg["features_per_level"])
        for upper in itertools.product((0, 1), repeat=d):
            vertex = [c + k for c, k in zip(cell, upper, strict=True)]
            weight = math.prod(f if k else 1 - f for f, k in zip(frac, upper, strict=True))
            if res**d <= table_max:
                index = sum(v * res**i for i, v in enumerate(vertex))
            else:
                with np.errstate(over="ignore"):  # uint32 products wrap, as on the GPU
                    index = 0
                    for i, v in enumerate(vertex):
                        index ^= int(np.uint32(v) * primes[i])
            row = offset + index % rows_in_level
            features += weight * table[row]
            row_weights[row] = row_weights.get(row, 0.0) + weight
        out += features.tolist()
        offset += rows_in_level
    return out, row_weights


def small_grid(cfg: dict, d: int) -> HashGridEncoding:
    """Features of order 1 in float64, so a wrong row or weight cannot hide in rounding."""
    return HashGridEncoding(d, **cfg, init_scale=1.0).double()


@pytest.mark.parametrize("d, cfg", [(2, GRID_2D), (3, GRID_3D)])
def test_levels_rows_and_values_match_a_per_point_reference(d, cfg):
    enc = small_grid(cfg, d)
    assert enc.hashed == [False, False, True, True]
    assert enc.resolutions == ([4, 8, 16, 32] if d == 2 else [2, 4, 8, 16])
    assert enc.table_sizes == ([16, 64, 64, 64] if d == 2 else [8, 64, 64, 64])
    assert enc.out_dim == cfg["levels"] * cfg["features_per_level"]
    x = torch.rand(200, d, dtype=torch.float64) * 2 - 1
    x[:3] = torch.tensor([[-1.0] * d, [1.0] * d, [0.0] * d], dtype=torch.float64)  # corners, centre
    got = enc(x.reshape(20, 10, d))
    assert got.shape == (20, 10, enc.out_dim)
    want = torch.tensor([reference(p, enc, cfg)[0] for p in x.tolist()], dtype=torch.float64)
    torch.testing.assert_close(got.reshape(200, -1), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("d, cfg", [(2, GRID_2D), (3, GRID_3D)])
def test_weights_sum_to_one_and_the_encoding_is_continuous_across_cells(d, cfg):
    enc = small_grid(cfg, d)
    ones = small_grid(cfg, d)
    torch.nn.init.ones_(ones.table)
    x = torch.rand(100, d, dtype=torch.float64) * 2 - 1
    torch.testing.assert_close(ones(x), torch.ones(100, ones.out_dim, dtype=torch.float64))
    # points just either side of every level's cell walls (in vertex units pos = u·s + 0.5)
    eps = 1e-9
    for scale in enc.scales:
        walls = (torch.arange(1, int(scale) + 1, dtype=torch.float64) - 0.5) / scale  # u of each wall
        u = torch.rand(len(walls), d, dtype=torch.float64)
        u[:, 0] = walls
        left, right = u.clone(), u.clone()
        left[:, 0] -= eps
        right[:, 0] += eps
        jump = (enc(left * 2 - 1) - enc(right * 2 - 1)).abs().max().item()
        assert jump < 1e-6, f"jump {jump} at the cell walls of scale {scale}"


@pytest.mark.parametrize("d, cfg", [(2, GRID_2D), (3, GRID_3D)])
def test_gradients_reach_only_the_rows_a_point_touches(d, cfg):
    enc = small_grid(cfg, d)
    x = torch.rand(5, d, dtype=torch.float64) * 2 - 1
    enc(x).sum().backward()
    expected = torch.zeros(enc.table.shape[0], dtype=torch.float64)
    for p in x.tolist():
        for row, weight in reference(p, enc, cfg)[1].items():
            expected[row] += weight
    grad = enc.table.grad
    assert set(grad.abs().sum(1).nonzero().flatten().tolist()) == set(expected.nonzero().flatten().tolist())
    # d(sum of outputs)/d(row, feature) is the row's total interpolation weight, for every feature
    torch.testing.assert_close(grad, expected[:, None].expand_as(grad), rtol=1e-12, atol=1e-12)


def test_hash_arch_puts_the_table_in_the_encoding_group():
    encoding = EncodingConfig(hash=HashGridConfig(hash_levels=3, hash_log2_table_size=8))
    field = MLPField(FieldConfig(arch="hash", num_layers=4, width=16, encoding=encoding), 2, 3)
    assert isinstance(field.encoding, HashGridEncoding) and field.first.in_features == 6
    roles = {pr.name: pr.role for pr in field.param_roles()}
    assert roles["encoding.table"] == "encoding"
    assert sorted(id(pr.param) for pr in field.param_roles()) == sorted(id(p) for p in field.parameters())
    muon, adam, enc = OptimConfig(lr=1e-3).param_groups(field, "muon")
    assert muon["use_muon"] and {id(p) for p in muon["params"]} == {id(h.weight) for h in field.hidden}
    assert not adam["use_muon"] and len(adam["params"]) == 2 * 4 - 2  # first/last weights, 4 biases
    assert enc["params"] == [field.encoding.table] and enc["eps"] == 1e-15 and enc["lr"] == 1e-3
    groups = OptimConfig(lr=1e-3, encoding_lr=1e-2).param_groups(field, "adam")
    assert [g["lr"] for g in groups] == [1e-3, 1e-2]
    out = field(torch.rand(9, 2) * 2 - 1)
    assert out.shape == (9, 3) and torch.isfinite(out).all()


def test_bad_hash_config_is_refused():
    with pytest.raises(ValueError, match="--hash-base-resolution"):
        HashGridConfig(hash_base_resolution=64, hash_finest_resolution=32).setup(2)
    with pytest.raises(ValueError, match="--hash-log2-table-size"):
        HashGridConfig(hash_log2_table_size=40).setup(2)
    with pytest.raises(ValueError, match="input dimension"):
        HashGridConfig().setup(4)


SMALL_HASH = "--hash-levels 4 --hash-log2-table-size 8 --hash-base-resolution 4 --hash-finest-resolution 16"


def test_muon_fit_image_arch_hash_compare(tmp_path):
    from muon_nerf.signals.cli import main

    png = tmp_path / "tiny.png"
    Image.fromarray((make_test_image(12, 12) * 255 + 0.5).astype(np.uint8)).save(png)
    flags = f"--arch hash --compare --steps 4 --width 16 --num-layers 3 --eval-every 2 {SMALL_HASH}"
    flags += " --encoding-lr 0.01 --no-progress --run-name h"
    main("image", ["--image", str(png), "--output-dir", str(tmp_path / "out"), *flags.split()])
    run = tmp_path / "out" / "image" / "h"
    assert sorted(p.name for p in run.iterdir()) == ["adam", "compare.png", "comparison.json", "muon"]
    metrics = json.loads((run / "muon" / "metrics.json").read_text())
    assert metrics["config"]["field"]["arch"] == "hash"
    assert metrics["config"]["field"]["encoding"]["hash"]["hash_levels"] == 4
    assert (run / "muon" / "field.pt").stat().st_size > 0


def test_muon_sdf_fit_arch_hash_compare(tmp_path):
    for module in ("trimesh", "mcubes", "open3d"):
        pytest.importorskip(module, reason="muon-sdf needs the [sdf] extra (trimesh, PyMCubes, open3d)")
    import trimesh

    from muon_nerf.sdf.cli import main

    mesh = tmp_path / "sphere.ply"
    trimesh.creation.icosphere(subdivisions=3, radius=0.5).export(mesh)
    flags = "--num-surface 1000 --num-near 2000 --num-uniform 500 --eval-resolution 16"
    flags += " --eval-volume-points 1000 --surface-points 1000 --render-size 24"
    flags += f" --arch hash --steps 4 --batch-size 256 --width 16 --num-layers 3 --no-progress {SMALL_HASH}"
    flags += f" --compare --output-dir {tmp_path / 'out'} --run-name h"
    main("fit", ["--mesh", str(mesh), *flags.split()])
    run = tmp_path / "out" / "sdf" / "h"
    for name in ("adam", "muon"):
        for f in ("mesh.ply", "field.pt", "metrics.json"):
            assert (run / name / f).is_file(), f"{name}/{f}"
    assert json.loads((run / "muon" / "metrics.json").read_text())["config"]["field"]["arch"] == "hash"
