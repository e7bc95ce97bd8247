"""What a process can still allocate, what a fit will allocate, and one line when it cannot.

The kernel kills a process that outgrows its memory with no message (SIGKILL, nothing on
stderr), and CUDA fails late with a traceback; both after the user waited. So every allocation
that a flag can make arbitrarily large (the field's width and depth, the Radon operator's
projections, an extraction grid, a sweep's plan) is estimated before any of it is made and
refused in one line naming the flag when it exceeds what this process can get now: the host's
``MemAvailable`` capped by its cgroup's headroom (a container's limit, not the host's memory),
or the GPU's free memory for a CUDA device.
"""

from __future__ import annotations

from pathlib import Path

import psutil
import torch

from muon_nerf.fields.mlp import FieldConfig, MLPField
from muon_nerf.fit.errors import InputError
from muon_nerf.fit.signal import Signal

GIB = 2**30
CGROUP_FILES = (
    ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # v2
    ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),  # v1
)


def cgroup_headroom() -> int | None:
    """The memory this process's cgroup may still use (limit − usage), None when unlimited or
    unknown."""
    for limit_file, usage_file in CGROUP_FILES:
        try:
            limit_text = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit_text == "max" or not limit_text.isdigit() or int(limit_text) >= 2**60:
            return None
        return max(0, int(limit_text) - usage)
    return None


def host_memory() -> int:
    """Bytes a new host allocation can get: the kernel's ``MemAvailable`` (psutil's ``available``),
    less where this process's cgroup allows less (its limit minus what the cgroup uses; psutil
    reads the host's memory, not a container's)."""
    available = psutil.virtual_memory().available
    cgroup = cgroup_headroom()
    return available if cgroup is None else min(available, cgroup)


def available_memory(device: str | torch.device = "cpu") -> int:
    """Bytes this process can still allocate on ``device``: the host's (``host_memory``) for the
    CPU, the GPU's free memory for a CUDA device."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    return host_memory()


def check_fits(need: int, what: str, advice: str, device: str | torch.device = "cpu") -> None:
    """Refuse (``InputError``, one line) when ``need`` bytes exceed what ``device`` has now;
    ``what`` names the flag(s) that asked for them, ``advice`` what to do instead."""
    have = available_memory(device)
    if need > have:
        where = "this GPU has free" if torch.device(device).type == "cuda" else "this process can get now"
        raise InputError(
            f"{what} needs about {need / GIB:.2f} GiB, more than the {have / GIB:.2f} GiB {where}; {advice}"
        )


OPTIMIZER_COPIES = 5
"""Copies of every parameter a fit holds: the weights, their gradients, Adam's two moments (or
Muon's momentum and its Newton–Schulz temporaries), and a checkpoint's copy while it is written."""
LIVE_ACTIVATIONS = 3
"""Values per point and layer output kept during a step: the pre-activation and the output saved
for the backward pass, and the gradient flowing back."""


def field_size(field: FieldConfig, in_dim: int, out_dim: int) -> tuple[int, int]:
    """(parameters and buffers, values its layers output per point: encoding, hidden layers,
    output) of the field ``field`` builds, built on the meta device: nothing is allocated,
    whatever the size."""
    with torch.device("meta"):
        module = MLPField(field.under("muon"), in_dim, out_dim)
    count = sum(t.numel() for t in (*module.parameters(), *module.buffers()))
    return count, module.encoding.out_dim + field.width * (field.num_layers - 1) + out_dim


def check_fit_memory(field: FieldConfig, signal: Signal, batch_size: int | None, device: str) -> None:
    """Refuse, before the field exists, a fit whose float32 parameters with their optimizer
    copies and one step's activations exceed what ``device`` has (``check_fits``)."""
    parameters, widths = field_size(field, signal.in_dim, signal.out_dim)
    points = len(signal.train.coords) if batch_size is None else min(batch_size, len(signal.train.coords))
    weights, activations = OPTIMIZER_COPIES * parameters, LIVE_ACTIVATIONS * points * widths
    advice = "use a smaller --width or --num-layers"
    if activations > weights and signal.pointwise:  # the step's points, not the field, are the bulk
        advice = "use a smaller --batch-size (points per step), --width or --num-layers"
    check_fits(
        4 * (weights + activations),
        f"--width {field.width} with --num-layers {field.num_layers} ({parameters / 1e6:.1f}M parameters, "
        f"{points} points per step)",
        advice,
        device,
    )
