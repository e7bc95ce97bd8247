"""``muon_nerf.fit.memory``: allocations a flag can make arbitrarily large are estimated before any
is made and refused in one line against what the process can get (its cgroup's headroom too)."""

from __future__ import annotations

import pytest
import torch

from muon_nerf.fields.mlp import FieldConfig, MLPField
from muon_nerf.fit import memory
from muon_nerf.fit.errors import InputError
from muon_nerf.runs import run as run_module
from muon_nerf.signals.cli import main as muon_fit
from muon_nerf.signals.radon import radon_bytes, radon_grid, uniform_angles
from muon_nerf.sweep.config import SweepConfig

MIB = 2**20


def test_cgroup_headroom_is_limit_minus_usage_and_caps_the_host(tmp_path, monkeypatch):
    limit, usage = tmp_path / "memory.max", tmp_path / "memory.current"
    limit.write_text(f"{512 * MIB}\n")
    usage.write_text(f"{200 * MIB}\n")
    monkeypatch.setattr(memory, "CGROUP_FILES", ((str(limit), str(usage)),))
    assert memory.cgroup_headroom() == 312 * MIB
    assert memory.host_memory() <= 312 * MIB  # a container's limit, not the host's MemAvailable
    limit.write_text("max\n")
    assert memory.cgroup_headroom() is None
    monkeypatch.setattr(memory, "CGROUP_FILES", ((str(tmp_path / "absent"), str(usage)),))
    assert memory.cgroup_headroom() is None


@pytest.mark.parametrize("arch", ["relu", "relu_ff", "siren", "hash"])
def test_field_size_counts_what_the_field_builds_without_allocating_it(arch):
    config = FieldConfig(arch=arch, num_layers=4, width=32)
    count, widths = memory.field_size(config, 2, 3)
    field = MLPField(config.under("muon"), 2, 3)
    assert count == sum(t.numel() for t in (*field.parameters(), *field.buffers()))
    assert widths == field.encoding.out_dim + 32 * 3 + 3
    huge, _ = memory.field_size(FieldConfig(arch=arch, width=100_000), 2, 3)  # on the meta device
    assert huge > 3 * 10**10


def test_radon_estimate_covers_the_grid_it_builds():
    h, w, a = 20, 30, 7
    grid = radon_grid(h, w, uniform_angles(a))
    assert radon_bytes(h, w, a) >= 7 * grid.numel() * grid.element_size()  # float64 build, then float32


def _tight(monkeypatch, mib: int) -> None:
    monkeypatch.setattr(memory, "host_memory", lambda: mib * MIB)


def test_each_large_allocation_is_refused_in_one_line_before_work(tmp_path, monkeypatch, capsys):
    """The class, through each front end that can make one: a field (muon-fit's --width), the
    Radon operator (--projections), a sweep's plan (--grid); nothing is written."""
    _tight(monkeypatch, 64)

    def no_field(*_: object) -> None:
        raise AssertionError("a field was built before the memory estimate refused it")

    monkeypatch.setattr(run_module, "make_field", no_field)  # check_optimizers builds a real one
    out = tmp_path / "out"
    cases = (
        ("image", ["--width", "4000"], "--width 4000 with --num-layers 5"),
        ("ct", ["--projections", "4000", "--downscale", "4"], "--projections 4000 on a 100×100"),
    )
    for task, flags, words in cases:
        with pytest.raises(SystemExit) as stop:
            muon_fit(task, [*flags, "--steps", "2", "--no-progress", "--output-dir", str(out)])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and err.startswith(f"error: {words}") and err.count("\n") == 1, err
        assert "GiB, more than the 0.06 GiB this process can get now" in err
    assert not out.exists()
    with pytest.raises(InputError, match=r"--grid 100x100 \(10100 trials\) needs about 0\.6"):
        SweepConfig(grid="100x100").check()
    _tight(monkeypatch, 4096)
    SweepConfig(grid="100x100").check()  # the same plan where there is room


def test_a_cuda_device_is_checked_against_its_free_memory(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (3 * MIB, 80 * 2**30))
    with pytest.raises(InputError, match="more than the 0.00 GiB this GPU has free"):
        memory.check_fits(4 * MIB, "--width 10", "use less", "cuda:0")
    memory.check_fits(2 * MIB, "--width 10", "use less", "cuda:0")
