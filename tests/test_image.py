"""Image task end to end: reading PNGs, the compare run, outputs, and bad input."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from muon_nerf.fit.errors import InputError
from muon_nerf.runs import tuned
from muon_nerf.runs.plotting import png_bytes
from muon_nerf.runs.run import execute
from muon_nerf.signals.cli import parse
from muon_nerf.signals.image import ImageSignal, downscale, read_image
from tests.conftest import make_test_image


@pytest.fixture
def png(tmp_path):
    path = tmp_path / "pattern.png"
    Image.fromarray((make_test_image() * 255 + 0.5).astype(np.uint8)).save(path)
    return path


def test_reads_8_and_16_bit_and_grayscale(tmp_path):
    gray16 = (np.arange(12 * 10).reshape(12, 10) * 500).astype(np.uint16)
    Image.fromarray(gray16).save(tmp_path / "g16.png")
    arr, bits = read_image(tmp_path / "g16.png")
    assert bits == 16 and arr.shape == (12, 10, 1)
    np.testing.assert_allclose(arr[..., 0], gray16 / 65535.0, atol=1e-7)
    rgb = (make_test_image(8, 6) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    arr, bits = read_image(tmp_path / "rgb.png")
    assert bits == 8 and arr.shape == (8, 6, 3)
    np.testing.assert_allclose(arr, rgb / 255.0, atol=1e-7)
    arr, _ = read_image(tmp_path / "rgb.png", grayscale=True)
    assert arr.shape == (8, 6, 1)


def png16(image: np.ndarray) -> bytes:
    """A 16-bit PNG of 1–4 channels (gray, gray+alpha, RGB, RGBA) written from the PNG spec, its
    rows cycling through the five filters (None, Sub, Up, Average, Paeth) so each is decoded."""
    height, width, channels = image.shape
    raw = np.ascontiguousarray(image.astype(">u2")).view(np.uint8).reshape(height, -1).astype(np.int32)
    bpp, rows = 2 * channels, []
    for y, x in enumerate(raw):
        up = raw[y - 1] if y else np.zeros_like(x)
        left = np.concatenate([np.zeros(bpp, np.int32), x[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int32), up[:-bpp]])
        p = left + up - upleft
        pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upleft)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
        kind = y % 5
        predicted = (0, left, up, (left + up) // 2, paeth)[kind]
        rows.append(bytes([kind]) + ((x - predicted) % 256).astype(np.uint8).tobytes())

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, {1: 0, 2: 4, 3: 2, 4: 6}[channels], 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def test_every_depth_is_read_at_its_true_range_or_refused(tmp_path, monkeypatch):
    """Issue 27: 8-bit samples are /255, 16-bit ones (PNG and TIFF; gray, gray+alpha, RGB, RGBA)
    /65535 (no OpenCV needed), float TIFFs in [0, 1] as they are; alpha is always dropped; float
    outside [0, 1], NaN and integer samples without a full scale (int32) are refused in one line."""
    tifffile = pytest.importorskip("tifffile")
    monkeypatch.setitem(sys.modules, "cv2", None)
    rng = np.random.default_rng(0)
    deep = rng.integers(0, 65536, size=(6, 5, 4), dtype=np.uint16)
    deep[0, 0] = (1, 257, 65535, 0)  # 1/65535 apart from black; 257/65535 = 1/255: lost at 8 bits
    floats = rng.random((6, 5, 3)).astype(np.float32)
    floats[0, 0] = (0.0, 1.0, 0.5)
    cases = {  # file name → (bytes or writer, expected samples, bits)
        "g16.png": (png16(deep[..., :1]), deep[..., :1] / 65535, 16),
        "ga16.png": (png16(deep[..., :2]), deep[..., :1] / 65535, 16),
        "rgb16.png": (png16(deep[..., :3]), deep[..., :3] / 65535, 16),
        "rgba16.png": (png16(deep), deep[..., :3] / 65535, 16),
        "g16.tif": (lambda p: tifffile.imwrite(p, deep[..., 0]), deep[..., :1] / 65535, 16),
        "rgb16.tif": (lambda p: tifffile.imwrite(p, deep[..., :3]), deep[..., :3] / 65535, 16),
        "rgba16.tif": (
            lambda p: tifffile.imwrite(p, deep, extrasamples=["unassalpha"]),
            deep[..., :3] / 65535,
            16,
        ),
        "planar16.tif": (
            lambda p: tifffile.imwrite(
                p, np.moveaxis(deep[..., :3], -1, 0), photometric="rgb", planarconfig="separate"
            ),
            deep[..., :3] / 65535,
            16,
        ),
        "f32.tif": (lambda p: Image.fromarray(floats[..., 0], "F").save(p), floats[..., :1], 32),
        "rgbf32.tif": (lambda p: tifffile.imwrite(p, floats), floats, 32),
        "f64.tif": (lambda p: tifffile.imwrite(p, floats.astype(np.float64)), floats, 64),
        "rgba8.png": (
            lambda p: Image.fromarray((deep >> 8).astype(np.uint8), "RGBA").save(p),
            (deep[..., :3] >> 8) / 255,
            8,
        ),
        "la8.png": (
            lambda p: Image.fromarray((deep[..., :2] >> 8).astype(np.uint8), "LA").save(p),
            (deep[..., :1] >> 8) / 255,
            8,
        ),
    }
    for name, (content, want, want_bits) in cases.items():
        path = tmp_path / name
        path.write_bytes(content) if isinstance(content, bytes) else content(path)
        arr, bits = read_image(path)
        assert bits == want_bits and arr.shape == want.shape, name
        np.testing.assert_allclose(arr, want, rtol=0, atol=1e-7, err_msg=name)

    refused = {
        "over.tif": (lambda p: Image.fromarray(floats[..., 0] * 3, "F").save(p), "float values span [0, 2."),
        "negative.tif": (lambda p: tifffile.imwrite(p, floats - 0.5), "outside [0, 1]"),
        "nan.tif": (lambda p: tifffile.imwrite(p, np.where(floats > 0.9, np.nan, floats)), "NaN/inf"),
        "i32.tif": (lambda p: Image.fromarray((floats[..., 0] * 1e6).astype(np.int32), "I").save(p), "int32"),
        "i16.tif": (lambda p: tifffile.imwrite(p, (floats[..., 0] * 100).astype(np.int16)), "int16"),
        "stack.tif": (lambda p: tifffile.imwrite(p, deep[None, ..., 0].repeat(2, 0)), "give one image"),
    }
    for name, (write, message) in refused.items():
        write(tmp_path / name)
        with pytest.raises(InputError, match=re.escape(message)) as err:
            read_image(tmp_path / name)
        assert name in str(err.value) and "\n" not in str(err.value)

    saved = ImageSignal(torch.from_numpy(floats))  # float input: written back at 16 bits, not 8
    saved.bits = 32
    saved.save(saved.values, tmp_path)
    assert read_image(tmp_path / "reconstruction.png")[1] == 16


def test_downscale_is_area_average_and_grid_spans_unit_square():
    img = torch.arange(16.0).reshape(4, 4, 1)
    torch.testing.assert_close(downscale(img, 2)[..., 0], torch.tensor([[2.5, 4.5], [10.5, 12.5]]))
    sig = ImageSignal(torch.rand(3, 5, 3))
    assert sig.coords.shape == (15, 2) and sig.coords.min() == -1 and sig.coords.max() == 1
    with pytest.raises(InputError, match="leaves no pixels"):
        downscale(img, 8)


def test_compare_on_tiny_image_muon_beats_adam_and_writes_outputs(png, tmp_path):
    cfg = parse(
        "image",
        [
            "--image",
            str(png),
            "--compare",
            "--steps",
            "150",
            "--width",
            "64",
            "--num-layers",
            "4",
            "--eval-every",
            "50",
            "--rank-every",
            "50",
            "--no-progress",
            "--output-dir",
            str(tmp_path / "out"),
            "--run-name",
            "cmp",
        ],
    )
    results = execute(cfg)
    assert results["muon"].metrics["psnr"] > results["adam"].metrics["psnr"] + 1.0
    run = tmp_path / "out" / "image" / "cmp"
    assert sorted(p.name for p in run.iterdir()) == ["adam", "compare.png", "comparison.json", "muon"]
    metrics = json.loads((run / "muon" / "metrics.json").read_text())
    assert metrics["config"]["optim"]["muon_lr"] == 0.1 and metrics["signal"]["shape"] == [32, 32, 3]
    assert [h["step"] for h in metrics["history"]] == [50, 100, 150]
    assert set(metrics["final_stable_rank"]) == {"hidden.0.weight", "hidden.1.weight"}
    for name in ("reconstruction.png", "curves.png", "ranks.png", "field.pt"):
        assert (run / "muon" / name).stat().st_size > 0
    rec = np.asarray(Image.open(run / "muon" / "reconstruction.png"))
    assert rec.shape == (32, 32, 3)
    assert not [p for p in (tmp_path / "out" / "image").iterdir() if p.name.startswith(".")]


def test_seeded_runs_are_deterministic(png, tmp_path):
    args = [
        "--image",
        str(png),
        "--steps",
        "20",
        "--width",
        "16",
        "--eval-every",
        "10",
        "--no-progress",
        "--output-dir",
        str(tmp_path),
    ]
    a = execute(parse("image", args + ["--run-name", "a"]))["muon"]
    b = execute(parse("image", args + ["--run-name", "b"]))["muon"]
    assert a.metrics == b.metrics


def test_nan_loss_is_a_clear_error_and_leaves_nothing(png, tmp_path):
    cfg = parse(
        "image",
        [
            "--image",
            str(png),
            "--optimizer",
            "adam",
            "--lr",
            "1e30",
            "--steps",
            "20",
            "--eval-every",
            "10",
            "--no-progress",
            "--output-dir",
            str(tmp_path),
        ],
    )
    with pytest.raises(InputError, match="loss became"):
        execute(cfg)
    assert not (tmp_path / "image").exists() or not list((tmp_path / "image").iterdir())


def _run_cli(*args: str, cwd) -> subprocess.CompletedProcess:
    code = "from muon_nerf.signals.cli import entrypoint; entrypoint()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["image", "--image", "missing.png"], "error: image not found: missing.png"),
        (["image", "--image", "bad.png"], "error: cannot read image bad.png"),
        (["image", "--image", "ok.png", "--muon-lr", "-1"], "error: --muon-lr must be > 0"),
        (["image", "--image", "ok.png", "--downscale", "0"], "error: --downscale must be a positive integer"),
        (["image", "--image", "ok.png", "--steps", "0"], "error: --steps must be >= 1"),
        (["video"], "error: first argument must be a task"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(tmp_path, args, message):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "ok.png")
    proc = _run_cli(*args, "--output-dir", "out", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith(message), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.json"))


def test_siren_under_muon_is_omega_folded_and_its_checkpoint_reloads(png, tmp_path):
    """With ω0 folded, the image script's Muon lr suits SIREN too (unfolded it is ω0× too large)."""
    from muon_nerf.fields.fold import OmegaFoldedLinear
    from muon_nerf.runs.checkpoint import load_field

    flags = "--arch siren --width 64 --num-layers 4 --steps 150 --eval-every 50 --no-progress --compare"
    args = ["--image", str(png), "--output-dir", str(tmp_path), "--run-name", "s", *flags.split()]
    results = execute(parse("image", args))
    assert results["muon"].extra["omega_folded"] and not results["adam"].extra["omega_folded"]
    assert results["muon"].metrics["psnr"] > results["adam"].metrics["psnr"]
    signal = parse("image", args).signal()
    reloaded = load_field(tmp_path / "image" / "s" / "muon" / "field.pt")
    torch.testing.assert_close(signal.predict(reloaded), results["muon"].prediction)
    # folding is part of the field's config, so the checkpoint says how the weights are stored
    assert isinstance(reloaded.hidden[0], OmegaFoldedLinear) and reloaded.config.fold_frequency() == 40.0
    adam = load_field(tmp_path / "image" / "s" / "adam" / "field.pt")
    assert adam.config.fold_omega is False and not isinstance(adam.hidden[0], OmegaFoldedLinear)
    torch.testing.assert_close(signal.predict(adam), results["adam"].prediction)
    with pytest.raises(InputError, match="not a muon-nerf-field/2 checkpoint"):
        torch.save({"format": "something else"}, tmp_path / "other.pt")
        load_field(tmp_path / "other.pt")


def test_flat_flags_reach_the_nested_field_and_optimizer_configs(monkeypatch):
    """The paper's flat flags (and their underscore spellings) set the nested configs."""
    flags = "--arch relu_ff --pe-frequencies 6 --ff-features 64 --ff_sigma 5 --omega 25 --gauss-a 0.03"
    flags += (
        " --wire-omega 15 --first-bias-scale 2 --no-fold-omega --muon_lr 0.05 --momentum 0.9 --ns-steps 4"
    )
    flags += " --encoding-lr 0.01 --num_layers 3"
    cfg = parse("image", flags.split())
    field = cfg.field
    assert (field.arch, field.num_layers, field.fold_omega) == ("relu_ff", 3, False)
    assert field.encoding.positional.pe_frequencies == 6
    assert (field.encoding.fourier.ff_features, field.encoding.fourier.ff_sigma) == (64, 5.0)
    assert (field.activation.omega, field.activation.gauss_a, field.activation.wire_omega) == (
        25.0,
        0.03,
        15.0,
    )
    assert field.init.first_bias_scale == 2.0
    assert (cfg.optim.muon_lr, cfg.optim.encoding_lr) == (0.05, 0.01)
    assert (cfg.optim.muon.momentum, cfg.optim.muon.ns_steps) == (0.9, 4)
    # without a tuned row (the table is patched out), the task's own default: the image script's
    monkeypatch.setattr(tuned, "tuned_table", lambda *_: {})
    assert parse("image", []).optim.muon_lr == 0.1
    assert parse("image", []).optim.lr_sources["muon_lr"] == "task default"


def test_16_bit_colour_is_written_and_read_back_as_16_bit(tmp_path):
    """Pillow cannot write 16-bit RGB: ``png_bytes`` encodes it itself; ``read_image`` (which
    reads such files) must get every 16-bit value back. Reading 16-bit colour needs OpenCV (the
    full install has it); without it the image is read at 8 bits with a warning (test_reliability)."""
    pytest.importorskip("cv2", reason="16-bit colour PNGs are read through OpenCV")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 65536, size=(7, 5, 3), dtype=np.uint16)
    (tmp_path / "c16.png").write_bytes(png_bytes(image))
    arr, bits = read_image(tmp_path / "c16.png")
    assert bits == 16 and arr.shape == (7, 5, 3)
    np.testing.assert_array_equal(np.round(arr * 65535).astype(np.uint16), image)


def test_images_too_small_for_the_metrics_are_refused_when_read(tmp_path):
    """SSIM's 11×11 window must fit, or every evaluation fails after the training (issue 27)."""
    from muon_nerf.signals.ct import CTConfig, CTSignal
    from muon_nerf.signals.image import MIN_SIDE, ImageConfig
    from muon_nerf.signals.sisr import SISRConfig, SISRSignal

    thin = tmp_path / "thin.png"
    Image.fromarray(np.zeros((1, 4000), np.uint8)).save(thin)
    for signal, config in ((ImageSignal, ImageConfig), (CTSignal, CTConfig), (SISRSignal, SISRConfig)):
        with pytest.raises(InputError, match=re.escape("1×4000 pixels")) as err:
            signal.from_config(config(image=thin))
        assert str(thin) in str(err.value) and f"{MIN_SIDE}×{MIN_SIDE}" in str(err.value)
    square = tmp_path / "square.png"
    Image.fromarray(np.zeros((MIN_SIDE * 2, MIN_SIDE * 2), np.uint8)).save(square)
    with pytest.raises(InputError, match="after --downscale 3"):
        ImageSignal.from_config(ImageConfig(image=square, downscale=3))
    assert ImageSignal.from_config(ImageConfig(image=square, downscale=2)).height == MIN_SIDE


def test_decompression_bombs_are_refused_from_the_header(tmp_path):
    """A small PNG claiming more pixels than Pillow's limit (which only warns below twice the
    limit, then decodes gigabytes) is refused in one line naming the file and the pixel count."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    for side in (30000, 10000):  # over twice Pillow's limit, and over it once
        path = tmp_path / f"bomb{side}.png"
        head = chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
        body = chunk(b"IDAT", zlib.compress(b"\x00" * (side + 1) * 10))
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + head + body + chunk(b"IEND", b""))
        with pytest.raises(InputError, match=f"{side * side} pixels") as err:
            read_image(path)
        assert str(path) in str(err.value) and "\n" not in str(err.value)

    # a TIFF (read by tifffile at its true depth, not by Pillow): the same limit, from its tags
    tiff = tmp_path / "bomb.tif"
    tifffile.imwrite(tiff, np.zeros((16, 16), np.uint16))
    with tifffile.TiffFile(tiff) as tif:
        tags = [tif.pages[0].tags[name] for name in ("ImageWidth", "ImageLength")]
        places = [(tag.valueoffset, "<H" if tag.dtype == 3 else "<I") for tag in tags]
    data = bytearray(tiff.read_bytes())
    for offset, fmt in places:
        struct.pack_into(fmt, data, offset, 30000)
    tiff.write_bytes(bytes(data))
    with pytest.raises(InputError, match="30000×30000 = 900000000 pixels is over the limit"):
        read_image(tiff)
