"""The machine a result was measured on, recorded in every results file."""

from __future__ import annotations

import platform
from collections import Counter

import torch


def hardware() -> dict:
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def thread_counts(threads: list[int], unit: str) -> str:
    """The torch thread counts of the results in one table, in words: "2 threads", or "4 runs at
    1 threads, 2 runs at 2 threads" when results kept from earlier runs ran with other counts."""
    counts = Counter(threads)
    if len(counts) == 1:
        return f"{threads[0]} threads"
    return ", ".join(f"{n} {unit} at {t} threads" for t, n in sorted(counts.items()))
