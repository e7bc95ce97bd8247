"""Image fitting: RGB or grayscale; 8- or 16-bit PNG/TIFF/…, float TIFF; coordinates in [-1, 1]²."""

from __future__ import annotations

import dataclasses
import logging
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from muon_nerf.fit.errors import InputError
from muon_nerf.fit.metrics import psnr, ssim
from muon_nerf.fit.signal import Batch, Panel, Signal
from muon_nerf.runs.io import atomic_write_bytes
from muon_nerf.runs.plotting import png_bytes
from muon_nerf.runs.task import Lrs, TaskConfig

BUNDLED_IMAGE = "kodim01_96x64.png"

MIN_SIDE = 11
"""Fewest pixels per side an image may have: SSIM's 11×11 window (``fit/metrics.ssim``) must fit,
or every evaluation would fail (after the training, not before it)."""


def bundled_image() -> Path:
    """Kodak kodim01 box-downscaled ×8 (96×64), shipped so the main job needs no data."""
    return Path(__file__).resolve().parent.parent / "assets" / BUNDLED_IMAGE


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def read_image(path: Path, grayscale: bool = False) -> tuple[np.ndarray, int]:
    """``(H, W, C)`` float32 in [0, 1] and the file's bits per sample (8, 16, or 32/64 for float).

    Every file is read at its true depth and range or refused in one line: 8-bit samples are
    divided by 255, 16-bit ones (PNG and TIFF: gray, gray+alpha, RGB, RGBA) by 65535, float TIFFs
    are taken as they are when every value is finite and in [0, 1]. Float outside [0, 1], NaN or
    inf, and integer samples with no defined full scale (int32, int16…) are refused. Alpha is
    always dropped: the colour stored under it is what is fitted."""
    from PIL import UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"image not found: {path}")
    try:
        samples = _samples(path)
    except InputError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, zlib.error) as err:
        raise InputError(f"cannot read image {path}: {err}") from None
    if samples.shape[-1] in (2, 4):
        samples = samples[..., :-1]  # alpha, dropped
    arr, bits = _unit_range(path, samples)
    return _finish(path, arr, grayscale), bits


def max_pixels() -> int:
    """The most pixels an image may have: Pillow's decompression-bomb limit (``MAX_IMAGE_PIXELS``)."""
    from PIL import Image

    return int(Image.MAX_IMAGE_PIXELS or 2**63)


def _check_pixels(path: Path, width: int, height: int) -> None:
    """Refuse, from the header and before any pixel is decoded, more pixels than ``max_pixels``
    (a decompression bomb: a small file that decodes to gigabytes)."""
    if width * height > max_pixels():
        raise InputError(
            f"cannot read image {path}: {width}×{height} = {width * height} pixels is over the limit of "
            f"{max_pixels()} (a decompression bomb?); downscale it first"
        )


def check_metric_size(image: Tensor, source: str, scale: int = 1) -> None:
    """Refuse an image too small for the metrics (``MIN_SIDE``), before any work."""
    h, w = image.shape[:2]
    if min(h, w) < MIN_SIDE:
        after = f" after --downscale {scale}" if scale > 1 else ""
        raise InputError(
            f"image {source} is {h}×{w} pixels{after}; the metrics need at least {MIN_SIDE}×{MIN_SIDE} "
            f"(SSIM's window)"
        )


def _samples(path: Path) -> np.ndarray:
    """The file's samples as stored (``(H, W, C)``, C 1–4, alpha last, the file's own dtype)."""
    with open(path, "rb") as f:
        head = f.read(29)
    if head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR" and head[24] == 16 and head[25] != 0:
        return _png16_colour(path)  # Pillow reads 16-bit colour at 8 bits
    if head[:4] in TIFF_SIGNATURES:
        tiff = _tiff(path)
        if tiff is not None:
            return tiff
    return _pillow(path)


def _pillow(path: Path) -> np.ndarray:
    """8-bit files in any mode (as gray or RGB), 16-bit gray, and int32/float single-channel
    images as stored (``_unit_range`` decides about those)."""
    import warnings

    from PIL import Image

    with warnings.catch_warnings():
        # Pillow only warns up to twice MAX_IMAGE_PIXELS, then decodes gigabytes: refuse it from there
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise InputError(f"cannot read image {path}: {err}") from None
    with img:
        img.load()
        mode = img.mode
        if mode.startswith("I;16"):
            arr = np.asarray(img).astype(np.uint16)
        elif mode == "I" and img.format == "PNG":  # older Pillow: 16-bit gray PNG as int32
            arr = np.asarray(img).astype(np.uint16)
        elif mode in ("I", "F"):
            arr = np.asarray(img)
        else:  # 8-bit: palette, CMYK, YCbCr… converted by Pillow; alpha dropped
            arr = np.asarray(img.convert("L" if mode in ("1", "L", "LA", "La") else "RGB"))
    return arr[..., None] if arr.ndim == 2 else arr


@contextmanager
def _quiet_tifffile() -> Iterator[None]:
    """tifffile logs what it finds odd in a file (tag counts, series shapes) to stderr; what is
    wrong with an image is said here, in one line, or the read raises."""
    logger = logging.getLogger("tifffile")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _tiff(path: Path) -> np.ndarray | None:
    """A gray or RGB TIFF's samples at their true type (tifffile; Pillow has no 16-bit colour and
    no multi-channel float); None for the 8-bit-or-less kinds Pillow converts (palette, CMYK…)."""
    import tifffile

    with _quiet_tifffile(), tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        page = series.keyframe
        kind = {tifffile.PHOTOMETRIC.MINISBLACK: (1, 2), tifffile.PHOTOMETRIC.RGB: (3, 4)}
        if page.photometric not in kind:
            if page.bitspersample <= 8:
                return None
            name = getattr(page.photometric, "name", page.photometric)
            raise InputError(
                f"cannot read image {path}: {page.bitspersample}-bit {name} TIFF; save it as gray or RGB"
            )
        _check_pixels(path, page.imagewidth, page.imagelength)
        arr = series.asarray()
        axes = series.axes
    if axes == "SYX":
        arr = np.moveaxis(arr, 0, -1)
    elif axes == "YX":
        arr = arr[..., None]
    elif axes != "YXS":
        raise InputError(
            f"cannot read image {path}: a TIFF of shape {arr.shape} (axes {axes}); give one image"
        )
    if arr.shape[-1] not in kind[page.photometric]:
        raise InputError(f"cannot read image {path}: {arr.shape[-1]} samples per pixel in a TIFF")
    return arr.astype(np.uint8) * 255 if arr.dtype == bool else arr


def _png16_colour(path: Path) -> np.ndarray:
    """A 16-bit RGB, RGBA or gray+alpha PNG's samples as ``uint16``, read by pypng (Pillow has no
    16-bit colour mode and reads them at 8 bits)."""
    import png

    try:
        width, height, rows, info = png.Reader(filename=str(path)).read()
        _check_pixels(path, width, height)
        arr = np.vstack([np.asarray(row, np.uint16) for row in rows])
    except png.Error as err:
        raise InputError(f"cannot read image {path}: {err}") from None
    return arr.reshape(height, width, info["planes"])


def _unit_range(path: Path, samples: np.ndarray) -> tuple[np.ndarray, int]:
    """Samples in [0, 1] by their type's full scale, and the bits per sample; or ``InputError``."""
    if samples.dtype == np.uint8:
        return samples / 255.0, 8
    if samples.dtype == np.uint16:
        return samples / 65535.0, 16
    if samples.size and samples.dtype.kind in "iu":
        lo, hi = samples.min(), samples.max()
        raise InputError(
            f"cannot read image {path}: {samples.dtype} samples (values {lo}..{hi}) have no defined full "
            "scale; save it as 8- or 16-bit, or as float in [0, 1]"
        )
    if samples.dtype.kind != "f":
        raise InputError(f"cannot read image {path}: {samples.dtype} samples are not supported")
    bad = int(np.size(samples) - np.isfinite(samples).sum())
    if bad:
        raise InputError(f"cannot read image {path}: {bad} NaN/inf value(s) in a float image")
    if samples.size and (samples.min() < 0 or samples.max() > 1):
        raise InputError(
            f"cannot read image {path}: float values span [{samples.min():.6g}, {samples.max():.6g}], "
            "outside [0, 1]; rescale the image to [0, 1]"
        )
    return samples.astype(np.float64), 8 * samples.dtype.itemsize


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
    """PNG/JPEG/TIFF/… to fit (8- or 16-bit, or float in [0, 1]; alpha is ignored); default: the
    bundled 96×64 Kodak kodim01."""
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
        image = downscale(torch.from_numpy(arr), cfg.downscale)
        check_metric_size(image, str(path), cfg.downscale)
        return cls(image, str(path), bits, cfg.downscale)

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
        if self.bits > 8:  # 16-bit or float input, 16-bit reconstruction (gray or colour)
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
    default_lrs: ClassVar[Lrs] = Lrs(muon_lr=0.1)  # the paper's image script's Muon lr; --lr Adam's own

    def signal(self) -> ImageSignal:
        return ImageSignal.from_config(self.data)
