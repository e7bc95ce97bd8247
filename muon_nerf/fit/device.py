"""The device a run uses, and the CPU float mode every command sets when it starts."""

from __future__ import annotations

import warnings

import torch


def check_device(name: str) -> None:
    """Refuse (one line) a device torch does not know or this machine does not have."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"--device must be cpu, cuda or cuda:N, got {name!r}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {name}: MPS is not available on this machine; use --device cpu")


def flush_denormals() -> None:
    """Flush denormal floats to zero in this process, for the rest of it.

    Gauss and WIRE activations underflow into denormals away from their peak, which x86 CPUs
    compute in microcode (several times slower per step). Flush-to-zero is a per-thread flag
    that OpenMP workers copy when they are created, so a command sets it when it starts (before
    its first parallel torch op), not per fit; it changes only values below 1.2e-38 (to 0).
    It is a process-wide setting, so only our commands and sweep trials call it, never an
    import: a nerfstudio process or a user's notebook that imports the package keeps its own.
    NumPy notices (its ``finfo`` then reports the smallest subnormal as zero) and warns once per
    dtype: that warning is expected and silenced here.
    """
    torch.set_flush_denormal(True)
    warnings.filterwarnings("ignore", message="The value of the smallest subnormal", category=UserWarning)
