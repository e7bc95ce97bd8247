"""Image fitting: RGB or grayscale, 8- or 16-bit PNG, coordinates in [-1, 1]²."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from muon_nerf.fit.errors import InputError
from muon_nerf.fit.io import atomic_write_bytes
from muon_nerf.fit.metrics import psnr, ssim
from muon_nerf.fit.plotting import png_bytes
from muon_nerf.fit.signal import Batch, Panel, Signal
from muon_nerf.fit.task import TaskConfig

BUNDLED_IMAGE = "kodim01_96x64.png"


def bundled_image() -> Path:
    """Kodak kodim01 box-downscaled ×8 (96×64), shipped so the main job needs no data."""
    return Path(__file__).resolve().parent.parent / "assets" / BUNDLED_IMAGE


def png_depth(path: Path) -> tuple[int, int] | None:
    """(bit depth, colour type) from a PNG's header; None for other files."""
    with open(path, "rb") as f:
        head = f.read(26)
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def read_colour16(path: Path) -> np.ndarray | None:
    """A 16-bit colour PNG at full depth as ``(H, W, 3)`` float64 in [0, 1] (alpha dropped), or
    None when OpenCV (the one reader here that keeps 48-bit RGB; Pillow reads it as 8-bit) is missing."""
    try:
        import cv2
    except ImportError:
        return None
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16 or arr.ndim != 3:
        return None
    return arr[..., 2::-1].astype(np.float64) / 65535.0  # BGR(A) → RGB


def read_image(path: Path, grayscale: bool = False) -> tuple[np.ndarray, int]:
    """``(H, W, C)`` float32 in [0, 1] and the file's bit depth (8 or 16). Alpha is dropped.

    16-bit grayscale PNGs are read by Pillow; 16-bit RGB(A) PNGs by OpenCV where installed, else
    at 8 bits with a warning on stderr (Pillow has no 48-bit mode)."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"image not found: {path}")
    try:
        if png_depth(path) in ((16, 2), (16, 6)):
            arr = read_colour16(path)
            if arr is not None:
                return _finish(path, arr, grayscale), 16
            print(
                f"warning: {path} is a 16-bit colour PNG; without OpenCV it is read at 8 bits "
                "(pip install opencv-python-headless to keep 16)",
                file=sys.stderr,
            )
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(img, dtype=np.float64)
                bits = 16
                arr = arr[..., None] / 65535.0
            else:
                bits = 8
                img = img.convert("L" if grayscale or mode in ("L", "LA", "1") else "RGB")
                arr = np.asarray(img, dtype=np.float64) / 255.0
                arr = arr[..., None] if arr.ndim == 2 else arr
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(f"cannot read image {path}: {err}") from None
    return _finish(path, arr, grayscale), bits


def _finish(path: Path, arr: np.ndarray, grayscale: bool) -> np.ndarray:
    if grayscale and arr.shape[-1] == 3:
        arr = arr.mean(-1, keepdims=True)
    if arr.size == 0:
        raise InputError(f"image {path} is empty")
    return arr.astype(np.float32)


def downscale(image: Tensor, factor: int) -> Tensor:
    """Box-filter ``(H, W, C)`` by an integer factor (area average; edges cropped to a multiple)."""
    if factor < 1:
        raise InputError(f"--downscale must be a positive integer, got {factor}")
    if factor == 1:
        return image
    h, w = image.shape[0] // factor, image.shape[1] // factor
    if h < 1 or w < 1:
        raise InputError(f"--downscale {factor} leaves no pixels of a {tuple(image.shape[:2])} image")
    x = image[: h * factor, : w * factor].permute(2, 0, 1)[None]
    return F.avg_pool2d(x, factor)[0].permute(1, 2, 0)


def pixel_grid(h: int, w: int) -> Tensor:
    """``(H·W, 2)`` coordinates (y, x) in [-1, 1], row-major like the image."""
    ys, xs = torch.linspace(-1, 1, h), torch.linspace(-1, 1, w)
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"), -1).reshape(-1, 2)


def error_panel(pred: np.ndarray, target: np.ndarray, gain: float = 5.0) -> Panel:
    err = np.abs(pred - target)
    err = err.mean(-1) if err.ndim == 3 else err
    return (f"|error| ×{gain:g}", np.clip(err * gain, 0, 1), "inferno")


@dataclass
class ImageConfig:
    """The image to fit."""

    image: Path | None = None
    """PNG/JPEG/… to fit; default: the bundled 96×64 Kodak kodim01."""
    downscale: int = 1
    """Integer box-downscale factor for CPU-sized runs."""
    grayscale: bool = False
    """Fit one gray channel instead of RGB (the image is converted to gray when read)."""


class ImageSignal(Signal):
    task = "image"
    baseline: dict[str, float] = {}
    """Metrics of a non-learned baseline (FBP for CT, bicubic for SISR), reported beside every
    evaluation so each table and ``metrics.json`` shows whether the field beats it."""

    def __init__(self, image: Tensor, source: str = "", bits: int = 8, scale: int = 1) -> None:
        self.image = image
        self.height, self.width, self.channels = image.shape
        self.coords = pixel_grid(self.height, self.width)
        self.values = image.reshape(-1, self.channels)
        self.train = Batch(self.coords, self.values)
        self.out_dim = self.channels
        self.source, self.bits, self.scale = source, bits, scale

    @classmethod
    def from_config(cls, cfg: ImageConfig) -> ImageSignal:
        path = cfg.image or bundled_image()
        arr, bits = read_image(path, cfg.grayscale)
        return cls(downscale(torch.from_numpy(arr), cfg.downscale), str(path), bits, cfg.downscale)

    def as_image(self, prediction: Tensor) -> Tensor:
        return prediction.reshape(self.height, self.width, self.channels).clamp(0, 1)

    def evaluate(self, prediction: Tensor) -> dict[str, float]:
        img = self.as_image(prediction)
        return {"psnr": psnr(img, self.image), "ssim": ssim(img, self.image), **self.baseline}

    def panels(self, prediction: Tensor | None) -> list[Panel]:
        gt = self.image.cpu().numpy()
        if prediction is None:
            return [("ground truth", gt, None)]
        rec = self.as_image(prediction).cpu().numpy()
        return [("reconstruction", rec, None), error_panel(rec, gt)]

    def save(self, prediction: Tensor, run_dir: Path) -> None:
        img = self.as_image(prediction).cpu().numpy()
        if self.bits == 16:  # 16-bit input, 16-bit reconstruction (gray or colour)
            img = (np.clip(img, 0, 1) * 65535 + 0.5).astype(np.uint16)
        atomic_write_bytes(run_dir / "reconstruction.png", png_bytes(img))

    def describe(self) -> dict:
        return {
            "task": self.task,
            "source": self.source,
            "shape": [self.height, self.width, self.channels],
            "bits": self.bits,
            "downscale": self.scale,
            "num_values": self.image.numel(),
        }


@dataclass
class ImageTask(TaskConfig):
    """Fit an image with a coordinate MLP. Defaults: the paper's image script."""

    data: ImageConfig = dataclasses.field(default_factory=ImageConfig)

    def signal(self) -> ImageSignal:
        return ImageSignal.from_config(self.data)
