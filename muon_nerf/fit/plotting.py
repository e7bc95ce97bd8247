"""Figures shared by every front end: headless (Agg), consistent style, atomic PNG writes."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from muon_nerf.fit.io import atomic_write_bytes  # noqa: E402

OPTIMIZER_COLORS = {"adam": "tab:blue", "muon": "tab:red"}


def new_figure(rows: int, cols: int, size: tuple[float, float] | None = None):
    size = size or (3.0 * cols, 2.8 * rows)
    fig, axes = plt.subplots(rows, cols, figsize=size, squeeze=False, constrained_layout=True)
    return fig, axes


def save_figure(fig, path: Path, dpi: int = 150) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def draw_panel(ax, title: str, data: np.ndarray, cmap: str | None = None) -> None:
    """An image (2-D/3-D array) with imshow, or a 1-D signal as a line."""
    if data.ndim == 1:
        ax.plot(data, linewidth=0.5)
        ax.set_xlim(0, len(data))
    else:
        ax.imshow(np.clip(data, 0, 1) if data.ndim == 3 else data, cmap=cmap or "gray")
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_title(title, fontsize=8)


def png_bytes(image: np.ndarray) -> bytes:
    """uint8/uint16 or float [0,1] array → PNG bytes (16-bit kept for 16-bit grayscale)."""
    from PIL import Image

    if image.dtype == np.uint16:
        pil = Image.fromarray(image)
    else:
        if image.dtype != np.uint8:
            image = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
        pil = Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()
