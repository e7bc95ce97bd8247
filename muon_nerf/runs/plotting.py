"""Figures shared by every front end: headless, consistent style, atomic PNG writes.

Figures are ``matplotlib.figure.Figure`` objects drawn without pyplot, so no backend is chosen
and no global state is touched: importing this module in a notebook leaves its backend alone."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from muon_nerf.runs.io import atomic_write_bytes

OPTIMIZER_COLORS = {"adam": "tab:blue", "muon": "tab:red"}


def new_figure(rows: int, cols: int, size: tuple[float, float] | None = None):
    size = size or (3.0 * cols, 2.8 * rows)
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.subplots(rows, cols, squeeze=False)


def save_figure(fig, path: Path, dpi: int = 150) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
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


def _png16_color(image: np.ndarray) -> bytes:
    """A 16-bit RGB/RGBA PNG, which Pillow cannot write, through pypng."""
    import png

    height, width, channels = image.shape
    writer = png.Writer(width, height, greyscale=False, alpha=channels == 4, bitdepth=16)
    buf = io.BytesIO()
    writer.write_array(buf, np.ascontiguousarray(image, dtype=np.uint16).reshape(-1))
    return buf.getvalue()


def png_bytes(image: np.ndarray) -> bytes:
    """uint8/uint16 or float [0,1] array → PNG bytes (uint16 stays 16-bit, gray or colour)."""
    from PIL import Image

    if image.dtype == np.uint16 and image.ndim == 3 and image.shape[-1] in (3, 4):
        return _png16_color(image)
    if image.dtype == np.uint16:
        pil = Image.fromarray(image[..., 0] if image.ndim == 3 else image)
    else:
        if image.dtype != np.uint8:
            image = (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)
        pil = Image.fromarray(image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()
