"""Nothing lost, nothing silent (issue 12): one test per class of failure: data loss, pre-flight
checks, divergence (also in sweeps), silently wrong results and one-line parse errors. Tiny
inputs only: a 16×16 PNG, 5 steps, width 8."""

from __future__ import annotations

import json
import math
import os
import stat
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from muon_nerf.fields import FieldConfig, MLPField
from muon_nerf.fit.errors import InputError
from muon_nerf.optim import OptimConfig
from muon_nerf.runs.io import staged_dir, write_json
from muon_nerf.runs.presets import PRESET_FORMAT
from muon_nerf.signals.cli import main as fit_main
from muon_nerf.signals.cli import parse as fit_parse
from muon_nerf.signals.image import read_image
from muon_nerf.sweep.report import TrialRecord, best_trials, heatmap, trial_table, write_csv
from muon_nerf.sweep.trial import run_trial
from tests.conftest import make_test_image

TINY = ["--width", "8", "--steps", "5", "--eval-every", "5", "--rank-every", "5", "--no-progress"]


@pytest.fixture
def png(tmp_path):
    path = tmp_path / "tiny.png"
    Image.fromarray((make_test_image(16, 16) * 255 + 0.5).astype(np.uint8)).save(path)
    return path


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


def refused(capsys, main, *args) -> str:
    """Run a command's main; it must exit 2 with exactly one ``error:`` line."""
    with pytest.raises(SystemExit) as stop:
        main(*args)
    assert stop.value.code == 2
    return one_error_line(capsys)


# --- 1. data loss ------------------------------------------------------------------------------


def test_an_existing_run_is_never_replaced_without_overwrite_and_folders_follow_the_umask(
    png, tmp_path, capsys
):
    out = tmp_path / "out"
    args = ["--image", str(png), *TINY, "--output-dir", str(out), "--run-name", "r"]
    previous = os.umask(0o027)
    try:
        fit_main("image", args)
    finally:
        os.umask(previous)
    run = out / "image" / "r"
    assert stat.S_IMODE(run.stat().st_mode) == 0o750  # not mkdtemp's 0700
    assert stat.S_IMODE((run / "metrics.json").stat().st_mode) == 0o640  # not mkstemp's 0600
    (run / "notes.txt").write_text("mine")
    capsys.readouterr()

    err = refused(capsys, fit_main, "image", args)
    assert "already exists" in err and "--overwrite" in err
    assert (run / "notes.txt").read_text() == "mine"
    fit_main("image", [*args, "--overwrite"])  # asked for: replaced once the new run is complete
    assert (run / "metrics.json").is_file() and not (run / "notes.txt").exists()
    assert not [p for p in (out / "image").iterdir() if p.name.startswith(".")]

    for name in ("../x", "a/b", "..", "."):
        bad = ["--image", str(png), *TINY, "--output-dir", str(out), "--run-name", name]
        assert "--run-name must be a plain folder name" in refused(capsys, fit_main, "image", bad)
    assert not (tmp_path / "x").exists()

    # the writer itself refuses too, and leaves no staging folder behind
    with pytest.raises(InputError, match="already exists"), staged_dir(run) as stage:
        (stage / "f").write_text("new")
    assert (run / "metrics.json").is_file() and sorted(p.name for p in (out / "image").iterdir()) == ["r"]


def test_a_preset_never_names_or_replaces_a_run_and_is_checked_like_flags(png, tmp_path, capsys):
    """A preset is a configuration, never where a run goes or whether it may replace one (issue
    27): such keys are refused, so a preset cannot replace a user's run; every value is checked
    as the same flag is (type, choices, range), and flags given with it still win."""
    base = ["--image", str(png), *TINY, "--output-dir", str(tmp_path)]
    fit_main("image", [*base, "--run-name", "victim"])
    note = tmp_path / "image/victim/notes.txt"
    note.write_text("mine")

    def preset(config: object, **top: object) -> list[str]:
        path = tmp_path / f"preset{len(list(tmp_path.glob('preset*')))}.json"
        path.write_text(json.dumps({"format": PRESET_FORMAT, "task": "image", "config": config, **top}))
        return ["--preset", str(path)]

    for args, message in (
        (preset({"overwrite": True, "run_name": "victim"}), "sets 'overwrite'"),
        (preset({"output_dir": str(tmp_path / "elsewhere")}), "sets 'output_dir'"),
        (preset({}, run_name="victim"), "sets 'run_name'"),
        (preset({}, resume=str(tmp_path)), "sets 'resume'"),
        (preset({}, settings={}), "unknown preset key(s) settings"),
        (preset({"fit": {"scheduler": "banana"}}), "fit.scheduler must be one of cosine, none"),
        (preset({"fit": {"steps": "abc"}}), "fit.steps must be int, got 'abc'"),
        (preset({"fit": {"steps": [1, 2]}}), "fit.steps must be int"),
        (preset({"fit": {"progress": 1}}), "fit.progress must be bool"),
        (preset({"optim": {"lr": "1e-3"}}), "optim.lr must be float"),
        (preset({"data": {"image": {"path": "x.png"}}}), "data.image must be Path or null"),
        (preset({"optim": {"muon": {"ns_coefficients": [1, 2]}}}), "(3 values)"),
        (preset({"fit": {"steps": 0}}), "--steps must be >= 1"),
    ):
        assert message in refused(capsys, fit_main, "image", [*base, *args])
    assert note.read_text() == "mine" and sorted(p.name for p in (tmp_path / "image").iterdir()) == ["victim"]

    flags = preset({"fit": {"steps": 3, "scheduler": "none"}, "optim": {"lr": 1}, "data": {"image": "a.png"}})
    cfg = fit_parse("image", [*flags, "--steps", "4"])
    assert (cfg.fit.steps, cfg.fit.scheduler, cfg.data.image, cfg.optim.lr) == (4, "none", Path("a.png"), 1.0)
    assert type(cfg.optim.lr) is float and cfg.run_name is None and not cfg.overwrite


# --- 2. pre-flight -----------------------------------------------------------------------------


def test_device_output_folder_and_chunk_are_checked_before_any_work(png, tmp_path, capsys):
    base = ["--image", str(png), *TINY, "--output-dir"]
    if not torch.cuda.is_available():
        err = refused(capsys, fit_main, "image", [*base, str(tmp_path), "--device", "cuda"])
        assert "CUDA is not available" in err
    assert "--device must be" in refused(capsys, fit_main, "image", [*base, str(tmp_path), "--device", "gpu"])
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    err = refused(capsys, fit_main, "image", [*base, str(blocker / "out")])
    assert "cannot write to output folder" in err and str(blocker) in err
    assert blocker.is_file()
    # a fit that failed leaves no folder the check created
    fresh = tmp_path / "fresh" / "deep"
    err = refused(capsys, fit_main, "image", [*base, str(fresh), "--num-layers", "2"])
    assert not (tmp_path / "fresh").exists()

    pytest.importorskip("trimesh", reason="muon-sdf needs the [sdf] extra")
    pytest.importorskip("mcubes", reason="muon-sdf needs the [sdf] extra")
    pytest.importorskip("open3d", reason="muon-sdf needs the [sdf] extra")
    from muon_nerf.sdf.cli import main as sdf_main

    err = refused(capsys, sdf_main, "extract", ["--run", str(tmp_path), "--chunk", "0"])
    assert "--chunk must be >= 1" in err


# --- 3. divergence -----------------------------------------------------------------------------


def test_a_fit_that_blows_up_without_nan_is_an_error_and_a_diverged_trial(png, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["--image", str(png), *TINY, "--muon-lr", "1e6", "--output-dir", str(out), "--run-name", "d"]
    err = refused(capsys, fit_main, "image", args)
    assert "diverged" in err and "step 5" in err and "--muon-lr" in err
    assert not out.exists() or not any(out.rglob("*.json"))  # nothing written

    base = fit_parse("image", ["--image", str(png), *TINY])
    signal = base.signal()
    huge = run_trial({"optimizer": "muon", "lr": 1e-3, "muon_lr": 1e6}, base, signal)  # ~1e28, finite
    nan = run_trial({"optimizer": "adam", "lr": 1e30, "muon_lr": None}, base, signal)
    ok = run_trial({"optimizer": "muon", "lr": 1e-3, "muon_lr": 0.05}, base, signal)
    assert huge["status"] == "diverged" and "100x" in huge["error"] and huge["psnr"] == -math.inf
    assert nan["status"] == "diverged" and "loss became" in nan["error"]
    assert ok["status"] == "ok"

    records = [
        TrialRecord(0, "muon", 1e-3, 1e6, huge["status"], huge["psnr"], 5, error=huge["error"]),
        TrialRecord(1, "muon", 1e-3, 0.05, ok["status"], ok["psnr"], 5),
        TrialRecord(2, "adam", 1e30, None, nan["status"], nan["psnr"], 5, error=nan["error"]),
    ]
    assert best_trials(records, "max") == {"muon": records[1]}  # never the best
    assert best_trials(records, "min") == {"muon": records[1]}
    write_csv(tmp_path / "trials.csv", records, "psnr")
    assert (tmp_path / "trials.csv").read_text().count(",diverged,") == 2
    heatmap(records, "psnr", "max", tmp_path / "heat.png", "t")
    assert trial_table(records, "psnr", "max", "t").row_count == 3


# --- 4. silently wrong results -----------------------------------------------------------------


def png48(path, rgb16: np.ndarray) -> None:
    """A 16-bit-per-channel RGB PNG written by hand (Pillow cannot write one)."""
    h, w, _ = rgb16.shape
    rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in rgb16)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)


def test_muon_without_hidden_matrix_16bit_rgb_and_non_finite_numbers_are_never_silent(
    png, tmp_path, capsys, monkeypatch
):
    field_ = MLPField(FieldConfig(num_layers=2, width=8), 2, 3)
    with pytest.raises(ValueError, match="no hidden weight matrix"):
        OptimConfig(optimizer="muon").build(field_)
    OptimConfig(optimizer="adam").build(field_)
    OptimConfig(optimizer="muon", muon_first_layer=True).build(field_)
    flags = ["--image", str(png), *TINY, "--num-layers", "2", "--output-dir", str(tmp_path)]
    assert "no hidden weight matrix" in refused(capsys, fit_main, "image", [*flags, "--compare"])

    rgb16 = (np.random.default_rng(0).random((12, 12, 3)) * 65535).astype(np.uint16)
    rgb16[0, 0] = (1, 257, 65535)  # 1/65535 apart from 0 and 257 = 1/255: lost at 8 bits
    png48(tmp_path / "deep.png", rgb16)
    monkeypatch.setitem(sys.modules, "cv2", None)  # full depth needs no OpenCV (test_image: all kinds)
    arr, bits = read_image(tmp_path / "deep.png")
    assert bits == 16 and not capsys.readouterr().err
    np.testing.assert_allclose(arr, rgb16 / 65535.0, atol=1e-7)

    data = {"a": math.nan, "b": [math.inf, np.float32("nan"), np.array([1.0, -np.inf])], "c": (1, 2)}
    write_json(tmp_path / "m.json", {**data, "d": {"e": np.float64(2.5), "f": -math.inf}})

    def no_constants(name: str) -> None:
        raise AssertionError(f"{name} is not JSON")

    back = json.loads((tmp_path / "m.json").read_text(), parse_constant=no_constants)
    assert back == {"a": None, "b": [None, None, [1.0, None]], "c": [1, 2], "d": {"e": 2.5, "f": None}}


def test_an_empty_extracted_mesh_is_a_warning_with_null_metrics(tmp_path, capsys):
    pytest.importorskip("trimesh", reason="muon-sdf needs the [sdf] extra")
    pytest.importorskip("mcubes", reason="muon-sdf needs the [sdf] extra")
    pytest.importorskip("open3d", reason="muon-sdf needs the [sdf] extra")
    from rich.console import Console

    from muon_nerf.runs.checkpoint import save_field
    from muon_nerf.sdf.cli import ExtractConfig, run_extract

    field_ = MLPField(FieldConfig(num_layers=3, width=8), 3, 1)
    with torch.no_grad():
        field_.last.weight.zero_()
        field_.last.bias.fill_(1.0)  # positive everywhere: no surface
    run = tmp_path / "run"
    save_field(run / "field.pt", field_, 3, 1)
    (run / "normalization.json").write_text(json.dumps({"center": [0, 0, 0], "scale": 1.0, "source": ""}))
    run_extract(ExtractConfig(run=run, resolution=8, chunk=512), Console(file=open(os.devnull, "w")))
    assert "warning:" in capsys.readouterr().err
    summary = json.loads((run / "extract_8.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert summary["faces"] == 0 and summary["metrics"]["chamfer_l1_x1e3"] is None


# --- 7. one-line parse errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--bogus", "3"], ["--bogus"]),
        (["--steps", "abc"], ["--steps", "abc"]),
        (["--arch", "nope"], ["--arch", "siren"]),
    ],
)
def test_parse_errors_are_one_line_naming_the_flag(flags, words, capsys):
    err = refused(capsys, fit_main, "image", flags)
    assert all(w in err for w in words) and "muon-fit image --help" in err and "│" not in err
    assert "helptext" not in err  # the first section of tyro's box only: the message, not the help
    from muon_nerf.sweep.cli import parse as sweep_parse

    with pytest.raises(SystemExit) as stop:
        sweep_parse("image", flags)
    assert stop.value.code == 2 and "muon-sweep image --help" in one_error_line(capsys)


def test_help_still_works(capsys):
    with pytest.raises(SystemExit) as stop:
        fit_parse("image", ["--help"])
    assert stop.value.code == 0 and "--image" in capsys.readouterr().out


# --- 6. refused before any work (issue 27) ----------------------------------------------------


def test_non_finite_signal_flags_are_refused_naming_the_flag(png, tmp_path, capsys):
    import soundfile as sf

    wav, out = tmp_path / "tone.wav", tmp_path / "out"
    sf.write(wav, np.sin(np.arange(800) / 3).astype(np.float32), 8000)
    cases = [
        ("audio", ["--audio", str(wav), "--duration", "inf"], "--duration"),
        ("audio", ["--audio", str(wav), "--offset", "inf"], "--offset"),
        ("audio", ["--audio", str(wav), "--coordinate-scale", "inf"], "--coordinate-scale"),
        ("ct", ["--image", str(png), "--noise", "--tau", "inf"], "--tau"),
        ("ct", ["--image", str(png), "--noise", "--readout-sigma", "nan"], "--readout-sigma"),
    ]
    for task, args, flag in cases:
        err = refused(capsys, fit_main, task, [*args, *TINY, "--output-dir", str(out)])
        assert f"{flag} must be a finite number" in err
    assert not out.exists()


def test_run_names_are_printable_and_fit_the_file_system_with_every_affix(png, tmp_path, capsys):
    from muon_nerf.runs.io import RUN_NAME_AFFIX, check_run_name
    from muon_nerf.runs.state import incomplete_dir

    out = tmp_path / "out"
    for name, message in (("a" * 240, "--run-name is 240 bytes long"), ("a\nb", "printable")):
        args = ["--image", str(png), *TINY, "--output-dir", str(out), "--run-name", name]
        assert message in refused(capsys, fit_main, "image", args)
    assert not out.exists()
    longest = "a" * (os.pathconf(tmp_path, "PC_NAME_MAX") - RUN_NAME_AFFIX)
    check_run_name(longest, tmp_path)  # the longest accepted name works for every folder made of it
    incomplete_dir(tmp_path / longest).mkdir()
    with staged_dir(tmp_path / longest) as stage:
        (stage / "x").write_text("x")
    assert (tmp_path / longest / "x").is_file()
    with pytest.raises(InputError, match="bytes long"):
        check_run_name(longest + "a", tmp_path)


def test_a_diverging_long_fit_stops_at_its_first_evaluation(png, tmp_path, capsys):
    """100000 steps, evaluated every 5: the divergence rule holds at step 5, where it stops."""
    args = ["--image", str(png), "--width", "8", "--steps", "100000", "--eval-every", "5", "--no-progress"]
    err = refused(capsys, fit_main, "image", [*args, "--muon-lr", "1e6", "--output-dir", str(tmp_path)])
    assert "at step 5 is over 100x its step-1 value" in err
