"""LPIPS only from weights already on disk: evaluation never reaches the network.

torchmetrics' LPIPS ships its linear heads but fetches the AlexNet trunk through torchvision,
which downloads into the torch hub cache when the file is missing. We look for that file first
and build LPIPS only when it is there.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn


def alexnet_cache_path() -> Path:
    """Where torchvision keeps (and would download) the AlexNet weights LPIPS uses."""
    from torchvision.models import AlexNet_Weights

    filename = Path(urlparse(AlexNet_Weights.DEFAULT.url).path).name
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def cached_lpips() -> tuple[nn.Module | None, str]:
    """``(LPIPS module, "")`` when the AlexNet weights are cached, else ``(None, why not)``."""
    try:
        path = alexnet_cache_path()
    except ImportError as err:
        return None, f"torchvision is not importable ({err})"
    if not path.is_file():
        return None, f"AlexNet weights are not cached at {path} (nothing is downloaded)"
    try:
        from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

        return LearnedPerceptualImagePatchSimilarity(net_type="alex", normalize=True), ""
    except Exception as err:  # noqa: BLE001 - a broken cache must not stop training or evaluation
        return None, f"LPIPS could not be built from {path}: {err}"
