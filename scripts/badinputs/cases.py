"""The bad-input cases of ``scripts/bad_inputs.py``, as one table (``cases()``), and the tiny
data they run on (``make_data``, ``make_captures``). Each entry is a ``Case`` literal: the
command, the exit status(es), a substring of its last stderr line, the files it may or must
leave; ``badinputs/model.py`` holds the builders its setups and checks use. Add a case here;
the runner needs no change."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import struct
import subprocess
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from badinputs.model import (
    Case,
    Context,
    D,
    Interrupt,
    background,
    background_finished,
    chmod,
    copy,
    copy_over,
    dead_temporary,
    edit_json,
    env_for,
    fake_stage,
    file_has,
    flip_bytes,
    hold_lock,
    kept_checkpoint,
    mesh_of_its_field,
    mkdir,
    plant_parents,
    png_bits,
    prerun,
    remove,
    same_metrics,
    steps,
    symlink,
    warns_if_written,
    write,
)

PIPE_HEAD = (
    "import subprocess, sys; p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE); "
    "p.stdout.readline(); p.stdout.close(); sys.exit(p.wait())"
)
"""``python -c PIPE_HEAD CMD…``: ``CMD | head -1`` (exits with CMD's status)."""
IMG = f"{D}/img16.png"
MESH = f"{D}/ico.ply"
SCENE = f"{D}/sphere"
NOTE = "user notes: must survive\n"


def fit(*args: str) -> list[str]:
    image = [] if "--image" in args else ["--image", IMG]
    return ["muon-fit", "image", *image, "@tiny", *args]


def sdf(*args: str) -> list[str]:
    mesh = [] if "--mesh" in args else ["--mesh", MESH]
    return ["muon-sdf", "fit", *mesh, "@tinysdf", *args]


def sweep(*args: str) -> list[str]:
    image = [] if "--image" in args else ["--image", IMG]
    return ["muon-sweep", "image", *image, "@tinysweep", *args]


def speed(*args: str) -> list[str]:
    sizes = [] if "--sizes" in args else ["--sizes", "16"]
    return [
        *("python", "$R/scripts/bench_speed.py", *sizes, "--widths", "8", "--reps", "1", "--warmup", "0"),
        *("--stream-steps", "0", "--loop-steps", "0", "--ttq-image", "None", *args),
    ]


def cases() -> list[Case]:
    c: list[Case] = []
    add = c.append

    # --- muon-fit image: files ---------------------------------------------------------------
    add(Case("image-missing", fit("--image", f"{D}/missing.png"), msg="image not found"))
    add(Case("image-is-folder", fit("--image", f"{D}/empty_dir"), msg="image not found"))
    add(Case("image-corrupt", fit("--image", f"{D}/corrupt.png"), msg="cannot read image"))
    add(Case("image-truncated", fit("--image", f"{D}/truncated.png"), msg="cannot read image"))
    add(Case("image-empty-file", fit("--image", f"{D}/empty.png"), msg="cannot read image"))
    add(Case("image-is-wav", fit("--image", f"{D}/tone.wav"), msg="cannot read image"))
    add(Case("image-fifo", fit("--image", f"{D}/fifo.png"), msg="image not found", note="a named pipe"))
    add(
        Case(
            "image-unreadable-root",
            ["muon-fit", "image", "--image", "noread.png", "@tiny", "--run-name", "r"],
            exit=(0,),
            setup=steps(copy(IMG, "noread.png"), chmod("noread.png", 0)),
            expect=("outputs/image/r/metrics.json",),
            note="as root: chmod 000 does not stop root reading, so the fit runs (correctly)",
        )
    )
    add(
        Case(
            "image-unreadable",
            ["unshare", "-U", "muon-fit", "image", "--image", "noread.png", "@tiny"],
            msg="Permission denied",
            setup=steps(copy(IMG, "noread.png"), chmod("noread.png", 0)),
            note="unshare -U: root without capabilities, so chmod 000 applies",
        )
    )
    add(
        Case(
            "image-16bit-gray",
            fit("--image", f"{D}/gray16.png", "--run-name", "g"),
            exit=(0,),
            expect=("outputs/image/g/reconstruction.png",),
            check=png_bits("outputs/image/g", 16, "I"),
        )
    )
    add(
        Case(
            "image-16bit-rgb",
            fit("--image", f"{D}/rgb16.png", "--run-name", "g"),
            exit=(0,),
            expect=("outputs/image/g/reconstruction.png",),
            check=png_bits("outputs/image/g", 16, "RGB"),
        )
    )
    add(
        Case(
            "image-1x1",
            fit("--image", f"{D}/img1x1.png", "--run-name", "one"),
            msg="need at least 11×11",
            note="a single pixel: under SSIM's window, refused before any work",
        )
    )
    # every depth at its true range, or refused (issue 27)
    for name, file, bits, mode in (
        ("image-float-tiff", "float01.tif", 32, "I"),
        ("image-16bit-gray-alpha", "gray_alpha16.png", 16, "I"),
        ("image-16bit-rgba-tiff", "rgba16.tif", 16, "RGB"),
    ):
        add(
            Case(
                name,
                fit("--image", f"{D}/{file}", "--run-name", "g"),
                exit=(0,),
                expect=("outputs/image/g/reconstruction.png",),
                check=png_bits("outputs/image/g", bits, mode),
            )
        )
    add(Case("image-float-tiff-over-1", fit("--image", f"{D}/float_over1.tif"), msg="outside [0, 1]"))
    add(Case("image-float-tiff-nan", fit("--image", f"{D}/float_nan.tif"), msg="NaN/inf"))
    add(Case("image-int32-tiff", fit("--image", f"{D}/int32.tif"), msg="int32 samples"))
    # --- muon-fit: flag values -----------------------------------------------------------------
    add(Case("downscale-0", fit("--downscale", "0"), msg="--downscale must be a positive integer"))
    add(Case("downscale-too-big", fit("--downscale", "100"), msg="leaves no pixels"))
    add(Case("steps-0", fit("--steps", "0"), msg="--steps must be >= 1"))
    add(Case("steps-negative", fit("--steps", "-5"), msg="--steps must be >= 1"))
    add(Case("steps-not-int", fit("--steps", "abc"), msg="--steps"))
    add(Case("steps-missing-value", ["muon-fit", "image", "--image", IMG, "--steps"], msg="--steps"))
    add(Case("width-0", fit("--width", "0"), msg="width must be >= 1"))
    add(Case("width-negative", fit("--width", "-3"), msg="width must be >= 1"))
    # memory (issue 27): estimated against what this process can get, refused before any work
    add(Case("width-20000", fit("--width", "20000"), msg="--width 20000 with --num-layers 5"))
    add(Case("batch-size-0", fit("--batch-size", "0"), msg="--batch-size must be >= 1"))
    add(
        Case(
            "batch-size-huge",
            fit("--batch-size", "100000", "--run-name", "b"),
            exit=(0, 2),
            allow=("outputs/image/b",),
            note="edge: a batch larger than the 256 pixels",
        )
    )
    add(Case("num-layers-1", fit("--num-layers", "1"), msg="num_layers counts first and last layer"))
    add(
        Case(
            "num-layers-2-muon",
            fit("--num-layers", "2", "--optimizer", "muon"),
            msg="no hidden weight matrix",
        )
    )
    add(Case("lr-0", fit("--lr", "0"), msg="--lr must be > 0"))
    add(Case("lr-negative", fit("--lr", "-1e-3"), msg="--lr must be > 0"))
    add(Case("lr-nan", fit("--lr", "nan"), msg="--lr must be > 0"))
    add(Case("muon-lr-0", fit("--muon-lr", "0"), msg="--muon-lr must be > 0"))
    add(Case("eval-every-0", fit("--eval-every", "0"), msg="--eval-every and --rank-every must be >= 1"))
    add(Case("checkpoint-every-negative", fit("--checkpoint-every", "-1"), msg="--checkpoint-every"))
    add(Case("eta-min-negative", fit("--eta-min", "-1e-4"), msg="--eta-min"))
    add(Case("momentum-1.5", fit("--momentum", "1.5"), msg="momentum"))
    add(Case("ns-steps-0", fit("--ns-steps", "0"), msg="--ns-steps must be in 1..99"))
    add(Case("omega-0-siren", fit("--arch", "siren", "--omega", "0"), msg="omega"))
    add(Case("gauss-a-0", fit("--arch", "gauss", "--gauss-a", "0"), msg="gauss"))
    add(Case("pe-frequencies-0", fit("--arch", "relu_pe", "--pe-frequencies", "0"), msg="--pe-frequencies"))
    add(Case("ff-features-0", fit("--arch", "relu_ff", "--ff-features", "0"), msg="--ff-features"))
    add(Case("hash-table-40", fit("--arch", "hash", "--hash-log2-table-size", "40"), msg="1 to 30"))
    add(Case("arch-unknown", fit("--arch", "nope"), msg="--arch"))
    add(Case("optimizer-unknown", fit("--optimizer", "sgd"), msg="--optimizer"))
    add(Case("activation-unknown", fit("--activation", "tanh"), msg="--activation"))
    add(Case("unknown-flag", fit("--no-such-flag"), msg="--no-such-flag"))
    add(Case("no-task", ["muon-fit"], msg="first argument must be a task"))
    add(Case("task-unknown", ["muon-fit", "video"], msg="first argument must be a task"))
    add(Case("profile-unknown", fit("--profile", "nope"), msg="--profile must be one of"))
    add(
        Case(
            "preset-and-profile",
            fit("--preset", f"{D}/preset_ok.json", "--profile", "cpu"),
            msg="give --profile or --preset, not both",
        )
    )
    add(Case("preset-missing-value", ["muon-fit", "image", "--preset"], msg="Missing value for argument"))
    # --- presets ------------------------------------------------------------------------------
    add(Case("preset-missing", fit("--preset", f"{D}/missing.json"), msg="preset not found"))
    add(Case("preset-not-json", fit("--preset", f"{D}/preset_corrupt.json"), msg="cannot read preset"))
    add(Case("preset-binary", fit("--preset", f"{D}/img16.png"), msg="cannot read preset"))
    add(Case("preset-list", fit("--preset", f"{D}/preset_list.json"), msg="is not a muon-nerf preset"))
    add(Case("preset-other-task", fit("--preset", f"{D}/preset_sdf.json"), msg="is for task 'sdf'"))
    add(Case("preset-unknown-key", fit("--preset", f"{D}/preset_unknown.json"), msg="unknown setting"))
    add(Case("preset-wrong-type", fit("--preset", f"{D}/preset_type.json"), msg="must be int"))
    add(Case("preset-bad-arch", fit("--preset", f"{D}/preset_arch.json"), msg="field.arch must be one of"))
    add(
        Case(
            "preset-null-steps",
            [
                "muon-fit",
                "image",
                "--image",
                IMG,
                "--width",
                "8",
                "--no-progress",
                "--preset",
                f"{D}/preset_null.json",
            ],
            msg="steps",
            note="no --steps flag, so the preset's null is what the fit gets",
        )
    )
    add(
        Case(
            "preset-null-lr",
            fit("--preset", f"{D}/preset_null_lr.json", "--run-name", "n"),
            exit=(0,),
            expect=("outputs/image/n/metrics.json",),
            note="null is an unset lr: resolved from the tuned table, and the learning-rates line says so",
        )
    )
    add(
        Case(
            "preset-unreadable",
            ["unshare", "-U", *fit("--preset", "p.json")],
            msg="Permission denied",
            setup=steps(copy(f"{D}/preset_ok.json", "p.json"), chmod("p.json", 0)),
        )
    )
    # a preset never names, moves or replaces a run, and is checked like flags (issue 27)
    add(
        Case(
            "preset-sets-overwrite",
            fit("--preset", f"{D}/preset_overwrite.json"),
            msg="sets 'overwrite'",
            setup=steps(
                copy(f"{D}/imagerun", "outputs/image/victim"), write("outputs/image/victim/notes.txt", NOTE)
            ),
            check=file_has("outputs/image/victim/notes.txt", NOTE),
        )
    )
    add(
        Case(
            "preset-sets-output-dir", fit("--preset", f"{D}/preset_output_dir.json"), msg="sets 'output_dir'"
        )
    )
    add(
        Case(
            "preset-bad-scheduler",
            fit("--preset", f"{D}/preset_scheduler.json"),
            msg="fit.scheduler must be one of",
        )
    )
    add(
        Case("preset-steps-list", fit("--preset", f"{D}/preset_steps_list.json"), msg="fit.steps must be int")
    )
    add(Case("preset-image-object", fit("--preset", f"{D}/preset_image_dict.json"), msg="data.image must be"))
    add(
        Case(
            "preset-audio-duration-string",
            [
                "muon-fit",
                "audio",
                "--audio",
                f"{D}/tone.wav",
                "@tiny",
                "--preset",
                f"{D}/preset_duration.json",
            ],
            msg="data.duration must be float or null",
        )
    )
    # --- outputs -------------------------------------------------------------------------------
    add(Case("run-name-slash", fit("--run-name", "a/b"), msg="--run-name must be a plain folder name"))
    add(Case("run-name-dotdot", fit("--run-name", ".."), msg="--run-name must be a plain folder name"))
    add(Case("run-name-empty", fit("--run-name", ""), msg="--run-name must be a plain folder name"))
    add(
        Case(
            "output-dir-under-file",
            fit("--output-dir", "afile/out"),
            msg="cannot write to output folder",
            setup=write("afile", "x"),
        )
    )
    add(
        Case(
            "output-dir-readonly-root",
            fit("--output-dir", "ro", "--run-name", "r"),
            exit=(0,),
            setup=mkdir("ro", 0o555),
            expect=("ro/image/r/metrics.json",),
            note="as root: a 555 folder does not stop root writing, so the run is written (correctly)",
        )
    )
    add(
        Case(
            "output-dir-readonly",
            ["unshare", "-U", *fit("--output-dir", "ro")],
            msg="cannot write to output folder",
            setup=mkdir("ro", 0o555),
            note="unshare -U: root without capabilities, so the 555 folder applies",
        )
    )
    first = prerun(*fit("--run-name", "r"))
    add(
        Case(
            "run-name-twice",
            fit("--run-name", "r"),
            msg="already exists",
            setup=steps(first, write("outputs/image/r/notes.txt", NOTE)),
            check=file_has("outputs/image/r/notes.txt", NOTE),
        )
    )
    add(
        Case(
            "run-name-overwrite",
            fit("--run-name", "r", "--overwrite"),
            exit=(0,),
            after="run-name-twice",
            may_change=("outputs/image/r", "outputs/image/r/*"),
            expect=("outputs/image/r/metrics.json",),
            note="--overwrite replaces the run folder whole, the user's notes.txt in it too (documented)",
        )
    )
    add(
        Case(
            "run-name-is-file-overwrite",
            fit("--run-name", "r", "--overwrite"),
            msg="exists and is not a folder",
            setup=write("outputs/image/r", NOTE),
            check=file_has("outputs/image/r", NOTE),
        )
    )
    # --- devices -------------------------------------------------------------------------------
    add(Case("device-cuda", fit("--device", "cuda"), msg="CUDA is not available"))
    add(Case("pe-frequencies-1000", fit("--arch", "relu_pe", "--pe-frequencies", "1000"), msg="in 1..24"))
    add(Case("ff-sigma-inf", fit("--arch", "relu_ff", "--ff-sigma", "inf"), msg="--ff-sigma finite"))
    add(Case("device-cuda7", fit("--device", "cuda:7"), msg="CUDA is not available"))
    add(Case("device-foo", fit("--device", "foo"), msg="--device must be cpu, cuda or cuda:N"))
    add(Case("device-mps", fit("--device", "mps"), msg="MPS is not available"))
    # --- divergence ---------------------------------------------------------------------------
    add(Case("diverge-lr", fit("--optimizer", "adam", "--lr", "1e6"), msg="at step"))
    add(Case("diverge-lr-inf", fit("--optimizer", "adam", "--lr", "inf"), msg="Invalid learning rate: inf"))
    add(Case("diverge-muon-lr", fit("--muon-lr", "1e6"), msg="at step"))
    add(
        Case(
            "diverge-compare-muon-half",
            fit("--compare", "--muon-lr", "1e6", "--run-name", "c"),
            msg="finish it with",
            allow=("outputs/image/c.incomplete",),
            check=kept_checkpoint("outputs/image/c.incomplete"),
            note="the finished Adam half is kept in c.incomplete (documented)",
        )
    )
    add(
        Case(
            "resume-diverged-lower-muon-lr",
            ["muon-fit", "image", "--resume", "outputs/image/c.incomplete", "--muon-lr", "0.05"],
            exit=(0,),
            after="diverge-compare-muon-half",
            gone=("outputs/image/c.incomplete",),
            expect=("outputs/image/c/comparison.json",),
        )
    )
    # early, one-line refusals (issue 27): a diverging long fit stops at its first evaluation
    add(
        Case(
            "diverge-long-stops-early",
            ["muon-fit", "image", "--image", IMG, "--width", "8", "--steps", "100000", "--eval-every", "5"]
            + ["--no-progress", "--muon-lr", "1e6"],
            msg=("at step 5 ", "at step 5;"),
            timeout=60,
            note="100000 steps: the check at the first evaluation, not the last",
        )
    )
    add(Case("image-too-small-for-ssim", fit("--image", f"{D}/thin.png"), msg="need at least 11×11"))
    add(Case("image-bomb", fit("--image", f"{D}/bomb.png"), msg="900000000 pixels"))
    add(Case("image-bomb-warning", fit("--image", f"{D}/bomb_warn.png"), msg="100000000 pixels"))
    add(Case("image-bomb-tiff", fit("--image", f"{D}/bomb.tif"), msg="900000000 pixels"))
    add(Case("run-name-too-long", fit("--run-name", "a" * 240), msg="--run-name is 240 bytes long"))
    add(Case("run-name-newline", fit("--run-name", "a\nb"), msg="--run-name must be printable"))
    # --- other tasks ---------------------------------------------------------------------------
    audio = ["muon-fit", "audio", "@tiny"]
    add(Case("audio-missing", [*audio, "--audio", f"{D}/missing.wav"], msg="audio file not found"))
    add(Case("audio-not-given", audio, msg="--audio PATH is required"))
    add(Case("audio-is-png", [*audio, "--audio", IMG], msg="cannot read audio"))
    add(Case("audio-empty-file", [*audio, "--audio", f"{D}/empty.wav"], msg="cannot read audio"))
    add(Case("audio-silent", [*audio, "--audio", f"{D}/silent.wav"], msg="is silent"))
    add(Case("audio-nan", [*audio, "--audio", f"{D}/nan.wav"], msg="NaN or infinite"))
    add(
        Case(
            "audio-duration-0", [*audio, "--audio", f"{D}/tone.wav", "--duration", "0"], msg="--duration > 0"
        )
    )
    for flag in ("--duration", "--offset", "--coordinate-scale"):
        add(
            Case(
                f"audio{flag[1:]}-inf",
                [*audio, "--audio", f"{D}/tone.wav", flag, "inf"],
                msg=f"{flag} must be a finite number",
            )
        )
    add(Case("audio-offset-past-end", [*audio, "--audio", f"{D}/tone.wav", "--offset", "100"], msg="samples"))
    add(
        Case(
            "audio-coordinate-scale-0",
            [*audio, "--audio", f"{D}/tone.wav", "--coordinate-scale", "0"],
            msg="--coordinate-scale",
        )
    )  # noqa: E501
    add(
        Case(
            "audio-stereo",
            [*audio, "--audio", f"{D}/stereo.wav", "--run-name", "s"],
            exit=(0,),
            msg=None,
            expect=("outputs/audio/s/reconstruction.wav",),
            check=warns_if_written("audio-stereo", "fitting their average"),
        )
    )
    add(
        Case(
            "audio-unreadable",
            ["unshare", "-U", *audio, "--audio", "a.wav"],
            msg="cannot read audio",
            setup=steps(copy(f"{D}/tone.wav", "a.wav"), chmod("a.wav", 0)),
        )
    )
    ct = ["muon-fit", "ct", "@tiny"]
    add(Case("ct-missing", [*ct, "--image", f"{D}/missing.png"], msg="image not found"))
    add(Case("ct-is-wav", [*ct, "--image", f"{D}/tone.wav"], msg="cannot read image"))
    add(Case("ct-corrupt", [*ct, "--image", f"{D}/corrupt.png"], msg="cannot read image"))
    add(
        Case(
            "ct-projections-0", [*ct, "--image", IMG, "--projections", "0"], msg="--projections must be >= 1"
        )
    )
    add(Case("ct-projections-100000", [*ct, "--projections", "100000"], msg="--projections 100000 on a"))
    add(Case("ct-tau-0", [*ct, "--image", IMG, "--noise", "--tau", "0"], msg="--tau must be > 0"))
    add(Case("ct-tau-inf", [*ct, "--image", IMG, "--noise", "--tau", "inf"], msg="--tau must be a finite"))
    add(
        Case(
            "ct-readout-sigma-nan",
            [*ct, "--image", IMG, "--noise", "--readout-sigma", "nan"],
            msg="--readout-sigma must be a finite",
        )
    )
    add(Case("ct-too-small-for-ssim", [*ct, "--image", f"{D}/thin.png"], msg="need at least 11×11"))
    sisr = ["muon-fit", "sisr", "@tiny"]
    add(Case("sisr-missing", [*sisr, "--image", f"{D}/missing.png"], msg="image not found"))
    add(Case("sisr-corrupt", [*sisr, "--image", f"{D}/truncated.png"], msg="cannot read image"))
    add(Case("sisr-scale-1", [*sisr, "--image", IMG, "--scale", "1"], msg="--scale must be an integer >= 2"))
    add(Case("sisr-scale-not-dividing", [*sisr, "--image", IMG, "--scale", "3"], msg="does not divide"))
    add(
        Case(
            "sisr-scale-to-1px",
            [*sisr, "--image", IMG, "--scale", "16", "--run-name", "s"],
            exit=(0, 2),
            allow=("outputs/sisr/s",),
            note="edge: the field sees a 1×1 image",
        )
    )
    add(
        Case(
            "script-fit-image-missing",
            ["python", "$R/scripts/fit_image.py", "--image", f"{D}/missing.png"],
            msg="image not found",
        )
    )  # noqa: E501

    # --- resume --------------------------------------------------------------------------------
    add(Case("resume-missing", ["muon-fit", "image", "--resume", "$T/nowhere"], msg="no unfinished run"))
    add(Case("resume-no-value", ["muon-fit", "image", "--resume"], msg="Missing value for argument"))
    add(
        Case(
            "resume-finished-run",
            ["muon-fit", "image", "--resume", "outputs/image/r.incomplete"],
            msg="is already complete",
            setup=prerun(*fit("--run-name", "r")),
        )
    )
    add(
        Case(
            "resume-run-folder",
            ["muon-fit", "image", "--resume", "outputs/image/r"],
            msg="not an unfinished muon-nerf run",
            setup=prerun(*fit("--run-name", "r")),
        )
    )
    # --- interrupts (and the resumes they allow) -----------------------------------------------
    ckpt = ["muon-fit", "image", "--image", IMG, "@ckpt", "--run-name", "r"]
    add(
        Case(
            "reference-uninterrupted",
            ckpt,
            exit=(0,),
            expect=("outputs/image/r/metrics.json",),
            note="the run the interrupted ones must reproduce",
        )
    )
    first_ckpt = "outputs/image/r.incomplete/checkpoints/*.pt"
    add(
        Case(
            "sigint-after-checkpoint",
            ckpt,
            exit=(130,),
            msg="interrupted: kept outputs/image/r.incomplete",
            interrupt=Interrupt(signal.SIGINT, glob=first_ckpt),
            allow=("outputs/image/r.incomplete",),
            check=kept_checkpoint("outputs/image/r.incomplete"),
        )
    )
    resume = ["muon-fit", "image", "--resume", "outputs/image/r.incomplete", "--no-progress"]
    add(
        Case(
            "resume-after-sigint",
            resume,
            exit=(0,),
            after="sigint-after-checkpoint",
            gone=("outputs/image/r.incomplete",),
            expect=("outputs/image/r/metrics.json",),
            check=same_metrics("outputs/image/r", "reference-uninterrupted"),
        )
    )
    add(
        Case(
            "sigterm-after-checkpoint",
            ckpt,
            exit=(143,),
            msg="terminated: kept outputs/image/r.incomplete",
            interrupt=Interrupt(signal.SIGTERM, glob=first_ckpt),
            allow=("outputs/image/r.incomplete",),
            check=kept_checkpoint("outputs/image/r.incomplete"),
        )
    )
    add(
        Case(
            "resume-changed-steps",
            [*resume, "--steps", "999"],
            msg="cannot change fit.steps",
            after="sigterm-after-checkpoint",
        )
    )
    add(
        Case(
            "resume-with-preset",
            [*resume, "--preset", f"{D}/preset_ok.json"],
            msg="drop --preset/--profile",
            after="sigterm-after-checkpoint",
        )
    )
    add(
        Case(
            "resume-planted-parents",
            resume,
            exit=(0,),
            after="sigterm-after-checkpoint",
            setup=steps(
                mkdir("mine/empty"), plant_parents("outputs/image/r.incomplete", ["mine/empty", "mine"])
            ),
            gone=("outputs/image/r.incomplete",),
            expect=("outputs/image/r/metrics.json", "mine/empty"),
            note="progress.json lists the user's empty folders as created_parents: never removed",
        )
    )
    add(
        Case(
            "resume-sdf-of-image-run",
            ["muon-sdf", "fit", "--resume", "outputs/image/r.incomplete"],
            msg="is a image run, not sdf",
            after="sigterm-after-checkpoint",
        )
    )
    add(
        Case(
            "resume-owner-running",
            resume,
            msg="belongs to a run still in progress",
            after="sigterm-after-checkpoint",
            setup=hold_lock("outputs/image/r.incomplete"),
            may_change=(),
        )
    )
    add(
        Case(
            "resume-owner-on-another-host",
            resume,
            exit=(0,),
            after="sigterm-after-checkpoint",
            setup=edit_json(
                "outputs/image/r.incomplete/progress.json", ("owner",), {"pid": 1, "host": "elsewhere"}
            ),
            gone=("outputs/image/r.incomplete",),
            expect=("outputs/image/r/metrics.json",),
            note="written on another host, which no longer runs it: resumable here (ownership is the lock)",
        )
    )
    add(
        Case(
            "resume-corrupt-checkpoint",
            resume,
            msg="corrupted or truncated",
            after="sigterm-after-checkpoint",
            setup=lambda cwd, ctx: (
                [
                    p.write_bytes(b"garbage")
                    for p in (cwd / "outputs/image/r.incomplete").glob("checkpoints/*.pt")
                ]
                and None
            ),
        )
    )
    add(
        Case(
            "resume-corrupt-progress",
            resume,
            msg="not an unfinished muon-nerf run",
            after="sigterm-after-checkpoint",
            setup=write("outputs/image/r.incomplete/progress.json", "{"),
        )
    )
    # a checkpoint is what was written, or refused (issue 27)
    ckpts = "outputs/image/r.incomplete/checkpoints/*.pt"
    add(
        Case(
            "resume-flipped-checkpoint-byte",
            resume,
            msg="SHA-256 differs",
            after="sigterm-after-checkpoint",
            setup=flip_bytes(ckpts),
            note="one byte flipped inside a weight resumed and ended 1 dB lower",
        )
    )
    add(
        Case(
            "resume-field-pt-as-checkpoint",
            resume,
            msg="not a muon-nerf saved fit state",
            after="sigterm-after-checkpoint",
            setup=copy_over(f"{D}/imagerun/field.pt", ckpts),
        )
    )
    add(
        Case(
            "resume-progress-other-width",
            resume,
            msg="does not fit the run's field",
            after="sigterm-after-checkpoint",
            setup=edit_json("outputs/image/r.incomplete/progress.json", ("config", "field", "width"), 16),
        )
    )
    add(
        Case(
            "resume-twice-at-once",
            resume,
            msg="belongs to a run still in progress",
            after="sigterm-after-checkpoint",
            setup=background(*resume, ready="resuming"),
            allow=("outputs/image/r", "outputs/image/r.incomplete"),
            may_change=("outputs/image/r.incomplete",),
            check=background_finished(same_metrics("outputs/image/r", "reference-uninterrupted")),
            note="the second --resume stops at once (the run's lock); the first finishes the run",
        )
    )
    add(
        Case(
            "resume-removes-dead-temporaries",
            resume,
            exit=(0,),
            after="sigterm-after-checkpoint",
            setup=steps(
                dead_temporary("outputs/image/r.incomplete/checkpoints", "muon.pt"),
                dead_temporary("outputs/image/r.incomplete", "progress.json"),
            ),
            gone=("outputs/image/r.incomplete",),
            expect=("outputs/image/r/metrics.json",),
            note="temporaries of a process SIGKILLed while it wrote a checkpoint",
        )
    )
    add(
        Case(
            "resume-after-sigterm",
            resume,
            exit=(0,),
            after="sigterm-after-checkpoint",
            gone=("outputs/image/r.incomplete",),
            expect=("outputs/image/r/metrics.json",),
            check=same_metrics("outputs/image/r", "reference-uninterrupted"),
        )
    )
    for gap in (0.001, 0.02):
        add(
            Case(
                f"sigterm-twice-{gap * 1000:g}ms",
                ckpt,
                exit=(143,),
                msg="terminated: kept outputs/image/r.incomplete",
                interrupt=Interrupt(signal.SIGTERM, glob=first_ckpt, repeat=2, gap=gap),
                allow=("outputs/image/r.incomplete",),
                check=kept_checkpoint("outputs/image/r.incomplete"),
                note="a second SIGTERM during the cleanup: the line still says what was kept",
            )
        )
    add(
        Case(
            "stdout-closed-by-head",
            ["python", "-c", PIPE_HEAD, *fit("--run-name", "p")],
            exit=(141,),
            msg="broken pipe",
            allow=("outputs/image/p",),
            note="muon-fit … | head -1: stopped where the pipe broke, or the run complete (said so)",
        )
    )
    add(
        Case(
            "disk-full-at-start",
            ["prlimit", "--fsize=1000", *fit("--run-name", "r")],
            msg=("File too large", "No space left"),
            note="writes over 1000 bytes fail (RLIMIT_FSIZE), as on a full disk: progress.json first",
        )
    )
    add(
        Case(
            "overwrite-incomplete-without-progress",
            fit("--run-name", "r", "--overwrite"),
            exit=(0,),
            setup=steps(
                mkdir("outputs/image/r.incomplete/checkpoints"), write("outputs/image/r.incomplete/lock", "")
            ),
            may_change=("outputs/image/r.incomplete",),
            gone=("outputs/image/r.incomplete",),
            expect=("outputs/image/r/metrics.json",),
            note="what a full disk at start left before: an .incomplete without progress.json",
        )
    )
    add(
        Case(
            "overwrite-symlinked-run",
            fit("--run-name", "linked", "--overwrite"),
            exit=(0,),
            setup=steps(copy(f"{D}/imagerun", "mine/run"), symlink("../../mine/run", "outputs/image/linked")),
            may_change=("outputs/image/linked",),
            gone=("outputs/image/.linked.old",),
            expect=("outputs/image/linked/metrics.json", "mine/run/metrics.json"),
            note="the link is replaced by the new run; the folder it pointed to is the user's, untouched",
        )
    )
    add(
        Case(
            "sigint-before-checkpoint",
            ["muon-fit", "image", "--image", IMG, "@ckpt", "--checkpoint-every", "0", "--steps", "1000000"],
            exit=(130,),
            msg="nothing was kept",
            interrupt=Interrupt(signal.SIGINT, stdout="image:", delay=0.5),
        )
    )
    add(
        Case(
            "sigint-during-startup",
            fit("--run-name", "r"),
            exit=(130,),
            msg="interrupted",
            interrupt=Interrupt(signal.SIGINT, delay=0.5),
            note="Ctrl-C while the command is still importing torch",
        )
    )
    add(
        Case(
            "sigkill-after-checkpoint",
            ckpt,
            exit=(-9,),
            interrupt=Interrupt(signal.SIGKILL, glob=first_ckpt),
            allow=("outputs/image/r.incomplete",),
            check=kept_checkpoint("outputs/image/r.incomplete"),
            note="SIGKILL cannot be handled: the checkpointed folder stays, resumable",
        )
    )
    add(
        Case(
            "new-run-beside-killed-run",
            fit("--run-name", "other"),
            exit=(0,),
            after="sigkill-after-checkpoint",
            expect=("outputs/image/other/metrics.json", "outputs/image/r.incomplete/progress.json"),
            note="the killed run's checkpoint is kept (resumable)",
        )
    )
    add(
        Case(
            "resume-after-sigkill",
            resume,
            exit=(0,),
            after="sigkill-after-checkpoint",
            gone=("outputs/image/r.incomplete",),
            expect=("outputs/image/r/metrics.json",),
            check=same_metrics("outputs/image/r", "reference-uninterrupted"),
        )
    )
    add(
        Case(
            "sigkill-before-checkpoint",
            ["muon-fit", "image", "--image", IMG, "@ckpt", "--checkpoint-every", "0", "--steps", "1000000"]
            + ["--run-name", "k"],
            exit=(-9,),
            interrupt=Interrupt(signal.SIGKILL, stdout="image:", delay=0.5),
            allow=("outputs/image/k.incomplete",),
            note="leaves an empty k.incomplete (nothing can clean up after SIGKILL)",
        )
    )
    add(
        Case(
            "new-run-cleans-empty-incomplete",
            fit("--run-name", "k2"),
            exit=(0,),
            after="sigkill-before-checkpoint",
            gone=("outputs/image/k.incomplete",),
            expect=("outputs/image/k2/metrics.json",),
        )
    )
    add(
        Case(
            "sigkill-while-staging",
            ["muon-fit", "image", "--image", f"{D}/img64.png", "@tiny", "--compare", "--run-name", "s"],
            exit=(-9,),
            interrupt=Interrupt(signal.SIGKILL, glob="outputs/image/.s.*.partial"),
            allow=("outputs/image/.s.*.partial", "outputs/image/s.incomplete"),
            expect=("outputs/image/.s.*.partial",),
            note="killed while the run's files are written: the staging folder stays",
        )
    )
    add(
        Case(
            "new-run-cleans-stage",
            fit("--run-name", "t"),
            exit=(0,),
            after="sigkill-while-staging",
            gone=("outputs/image/.s.*.partial",),
            expect=("outputs/image/t/metrics.json",),
        )
    )
    add(
        Case(
            "resume-after-staging-kill",
            ["muon-fit", "image", "--resume", "outputs/image/s.incomplete"],
            exit=(0,),
            after="sigkill-while-staging",
            gone=("outputs/image/s.incomplete", "outputs/image/.s.*.partial"),
            expect=("outputs/image/s/comparison.json",),
        )
    )
    add(
        Case(
            "dead-stage-and-leftover-cleaned",
            fit("--run-name", "new"),
            exit=(0,),
            setup=steps(fake_stage("outputs/image", "old"), mkdir("outputs/image/mine.partial")),
            gone=("outputs/image/.old.*.partial",),
            allow=("outputs/image/mine.partial",),
            expect=("outputs/image/new/metrics.json", "outputs/image/mine.partial"),
            note="a user's folder named *.partial (not a staging name) is never touched",
        )
    )

    # --- muon-sdf --------------------------------------------------------------------------------
    add(Case("sdf-no-mesh", ["muon-sdf", "fit", "@tinysdf"], msg="--mesh is required"))
    add(Case("sdf-mesh-missing", sdf("--mesh", f"{D}/missing.ply"), msg="mesh not found"))
    add(Case("sdf-mesh-corrupt", sdf("--mesh", f"{D}/corrupt.ply"), msg="cannot read mesh"))
    add(Case("sdf-mesh-is-png", sdf("--mesh", IMG), msg="cannot read mesh"))
    add(Case("sdf-mesh-point-cloud", sdf("--mesh", f"{D}/points.ply"), msg="has no triangles"))
    add(
        Case(
            "sdf-mesh-flat",
            sdf("--mesh", f"{D}/flat.ply", "--run-name", "f"),
            exit=(0, 2),
            allow=("outputs/sdf/f",),
            check=warns_if_written("sdf-mesh-flat", "not watertight"),
            note="one open triangle: fitting it with a warning, or refusing it, are both fine",
        )
    )
    add(Case("sdf-mesh-folder", sdf("--mesh", f"{D}/empty_dir"), msg=("mesh not found", "cannot read mesh")))
    add(
        Case(
            "sdf-mesh-unreadable",
            ["unshare", "-U", *sdf("--mesh", "m.ply")],
            msg=("Permission denied", "cannot read mesh"),
            setup=steps(copy(MESH, "m.ply"), chmod("m.ply", 0)),
        )
    )
    add(Case("sdf-mesh-nan-vertex", sdf("--mesh", f"{D}/nan_vertex.ply"), msg="non-finite"))
    add(Case("sdf-mesh-header-lies", sdf("--mesh", f"{D}/lying_header.ply"), msg="is truncated"))
    add(Case("sdf-margin-1.5", sdf("--margin", "1.5"), msg="--margin must be in [0, 1)"))
    add(Case("sdf-ray-votes-even", sdf("--ray-votes", "2"), msg="--ray-votes must be a positive odd number"))
    add(Case("sdf-eval-resolution-1", sdf("--eval-resolution", "1"), msg="--eval-resolution must be >= 8"))
    add(
        Case(
            "sdf-num-surface-0",
            sdf("--num-surface", "0", "--run-name", "n"),
            exit=(0, 2),
            allow=("outputs/sdf/n",),
            note="edge: no on-surface samples (near and uniform ones remain)",
        )
    )
    add(Case("sdf-profile-unknown", sdf("--profile", "nope"), msg="--profile must be one of: cpu, paper"))
    add(
        Case(
            "sdf-preset-and-profile",
            sdf("--profile", "paper", "--preset", f"{D}/preset_sdf.json"),
            msg="not both",
        )
    )
    add(Case("sdf-device-cuda", sdf("--device", "cuda"), msg="CUDA is not available"))
    add(Case("sdf-no-command", ["muon-sdf"], msg="first argument must be a command"))
    add(Case("sdf-command-unknown", ["muon-sdf", "frobnicate"], msg="first argument must be a command"))
    ex = ["muon-sdf", "extract", "--no-score", "--resolution", "8"]
    run = copy(f"{D}/sdfrun", "run")
    add(Case("extract-missing-run", [*ex, "--run", "$T/nowhere"], msg="run folder not found"))
    add(Case("extract-not-a-run", [*ex, "--run", "d"], msg="not a muon-sdf run", setup=mkdir("d")))
    add(Case("extract-chunk-0", [*ex, "--run", "run", "--chunk", "0"], msg="--chunk must be >= 1", setup=run))
    add(
        Case(
            "extract-resolution-1",
            ["muon-sdf", "extract", "--run", "run", "--resolution", "1"],
            msg="--resolution must be >= 2",
            setup=run,
        )
    )
    add(
        Case(
            "extract-resolution-huge",
            ["muon-sdf", "extract", "--run", "run", "--resolution", "5000", "--no-score"],
            msg="GiB",
            setup=run,
        )
    )
    add(Case("extract-device-cuda", [*ex, "--run", "run", "--device", "cuda"], msg="CUDA", setup=run))
    add(
        Case(
            "extract-iou-resolution-1",
            ["muon-sdf", "extract", "--run", "run", "--iou-resolutions", "1"],
            msg="--iou-resolutions",
            setup=run,
        )
    )
    add(
        Case(
            "extract-corrupt-field",
            [*ex, "--run", "run"],
            msg="cannot read field checkpoint",
            setup=steps(run, write("run/field.pt", b"not a checkpoint")),
        )
    )
    add(
        Case(
            "extract-truncated-field",
            [*ex, "--run", "run"],
            msg="cannot read field checkpoint",
            setup=steps(
                run,
                lambda cwd, ctx: (cwd / "run/field.pt").write_bytes(
                    (cwd / "run/field.pt").read_bytes()[:300]
                ),
            ),
        )
    )
    add(
        Case(
            "extract-no-normalization",
            [*ex, "--run", "run"],
            msg="normalization.json",
            setup=steps(run, remove("run/normalization.json")),
        )
    )
    add(
        Case(
            "extract-image-run",
            [*ex, "--run", "run"],
            msg=("not a muon-sdf run", "normalization.json"),
            setup=copy(f"{D}/imagerun", "run"),
            note="a 2D image run's field.pt",
        )
    )
    add(
        Case(
            "extract-readonly-run",
            ["unshare", "-U", *ex, "--run", "run"],
            msg=("cannot write", "Permission denied"),
            setup=steps(run, chmod("run", 0o555)),
        )
    )
    add(
        Case(
            "extract-output-exists",
            [*ex, "--run", "run"],
            msg="mesh_8.ply already exists",
            setup=steps(run, write("run/mesh_8.ply", NOTE)),
            check=file_has("run/mesh_8.ply", NOTE),
        )
    )
    # the field, its frame and the memory are what they say (issue 27)
    for name, keys, value, msg in (
        ("extract-normalization-scale-0", ("scale",), 0, "scale must be a finite number > 0"),
        ("extract-normalization-no-center", ("center",), None, "center must be a list of 3 numbers"),
        (
            "extract-normalization-center-nan",
            ("center",),
            [0, float("nan"), 0],
            "center must be finite",
        ),
    ):
        add(
            Case(
                name,
                [*ex, "--run", "run"],
                msg=msg,
                setup=steps(run, edit_json("run/normalization.json", keys, value)),
            )
        )
    add(
        Case(
            "extract-normalization-list",
            [*ex, "--run", "run"],
            msg="must be a JSON object",
            setup=steps(run, write("run/normalization.json", "[1, 2, 3]")),
        )
    )
    add(
        Case(
            "extract-compare-missing-muon",
            [*ex, "--run", "cmp"],
            msg="cmp/muon/field.pt",
            setup=steps(
                copy(f"{D}/sdfrun", "cmp/adam"), copy(f"{D}/sdfrun", "cmp/muon"), remove("cmp/muon/field.pt")
            ),
        )
    )
    add(
        Case(
            "extract-max-memory-more-than-there-is",
            ["muon-sdf", "extract", "--run", "run", "--resolution", "4096", "--max-memory-gb", "100000"],
            msg="--max-memory-gb 100000 is more than",
            setup=run,
        )
    )
    add(
        Case(
            "extract-max-memory-inf",
            [*ex, "--run", "run", "--max-memory-gb", "inf"],
            msg="--max-memory-gb must be a finite number",
            setup=run,
        )
    )
    add(
        Case(
            "extract-removes-dead-temporaries",
            [*ex, "--run", "run"],
            exit=(0,),
            setup=steps(run, dead_temporary("run", "mesh_8.ply")),
            gone=("run/.mesh_8.ply.*.tmp",),
            expect=("run/mesh_8.ply",),
            note="a temporary of an extraction SIGKILLed while it wrote",
        )
    )
    add(
        Case(
            "extract-racing-fit-overwrite",
            ["muon-sdf", "extract", "--no-score", "--resolution", "128", "--run", "outputs/sdf/s"],
            exit=(0, 2),
            msg="changed",
            setup=steps(
                copy(f"{D}/sdfrun", "outputs/sdf/s"), background(*sdf("--run-name", "s", "--overwrite"))
            ),
            allow=("outputs/sdf/s*", "outputs/sdf/.s.*.partial"),
            may_change=("outputs/sdf/s",),
            check=background_finished(mesh_of_its_field("outputs/sdf/s", 128)),
            note="a race: refused, or a mesh of the field beside it (never of the replaced one)",
        )
    )
    add(
        Case(
            "extract-ok",
            [*ex, "--run", "run"],
            exit=(0,),
            setup=run,
            expect=("run/mesh_8.ply", "run/extract_8.json"),
            note="control: a good extraction writes its files into the run",
        )
    )
    ev = ["muon-sdf", "eval", "@tinyeval"]
    add(
        Case(
            "eval-missing-mesh", [*ev, "--mesh-a", f"{D}/missing.ply", "--mesh-b", MESH], msg="mesh not found"
        )
    )
    add(
        Case(
            "eval-corrupt-mesh",
            [*ev, "--mesh-a", MESH, "--mesh-b", f"{D}/corrupt.ply"],
            msg="cannot read mesh",
        )
    )
    add(Case("eval-no-args", ["muon-sdf", "eval"], msg="--mesh-a"))
    add(
        Case(
            "eval-output-under-file",
            [*ev, "--mesh-a", MESH, "--mesh-b", f"{D}/ico.obj", "--output", "afile/m.json"],
            msg=("afile", "cannot write"),
            setup=write("afile", "x"),
        )
    )
    add(
        Case(
            "eval-ok",
            [*ev, "--mesh-a", MESH, "--mesh-b", f"{D}/ico.obj", "--output", "m.json"],
            exit=(0,),
            expect=("m.json",),
            note="control",
        )
    )
    evm = [*ev, "--mesh-a", MESH, "--mesh-b", f"{D}/ico.obj", "--output", "m.json"]
    add(
        Case(
            "eval-output-exists",
            evm,
            msg="m.json already exists",
            setup=write("m.json", NOTE),
            check=file_has("m.json", NOTE),
        )
    )
    add(
        Case(
            "eval-output-overwrite",
            [*evm, "--overwrite"],
            exit=(0,),
            setup=write("m.json", NOTE),
            may_change=("m.json",),
            note="control: --overwrite replaces it",
        )
    )
    add(
        Case(
            "script-fit-sdf-missing",
            ["python", "$R/scripts/fit_sdf.py", "--mesh", f"{D}/missing.ply"],
            msg="mesh not found",
        )
    )  # noqa: E501

    # --- muon-sweep -------------------------------------------------------------------------------
    add(Case("sweep-address-closed-port", sweep("--address", "127.0.0.1:1"), msg="nothing answers there"))
    add(Case("sweep-address-garbage", sweep("--address", "nonsense"), msg="--address must be HOST:PORT"))
    add(Case("sweep-grid-0x3", sweep("--grid", "0x3"), msg="--grid must look like 3x3"))
    add(Case("sweep-grid-abc", sweep("--grid", "abc"), msg="--grid must look like 3x3"))
    add(Case("sweep-grid-100000x100000", sweep("--grid", "100000x100000"), msg="(10000100000 trials) needs"))
    add(Case("sweep-lr-range-0", sweep("--lr-range", "0", "1"), msg="--lr-range must be two finite values"))
    add(Case("sweep-max-concurrent-0", sweep("--max-concurrent", "0"), msg="--max-concurrent must be >= 1"))
    add(Case("sweep-optimizer-unknown", sweep("--optimizers", "sgd"), msg="--optimizers"))
    add(Case("sweep-task-unknown", ["muon-sweep", "video"], msg="first argument must be a task"))
    add(Case("sweep-image-missing", sweep("--image", f"{D}/missing.png"), msg="image not found"))
    add(Case("sweep-device-cuda", sweep("--device", "cuda"), msg="CUDA is not available"))
    add(Case("sweep-sdf-no-mesh", ["muon-sweep", "sdf", "@tinysweep"], msg="--mesh is required"))
    add(Case("sweep-preset-corrupt", sweep("--preset", f"{D}/preset_corrupt.json"), msg="cannot read preset"))
    add(
        Case(
            "sweep-run-name-exists",
            sweep("--run-name", "r"),
            msg="already exists",
            setup=write("outputs/image/r/notes.txt", NOTE),
            check=file_has("outputs/image/r/notes.txt", NOTE),
        )
    )
    long_sweep = [
        *("muon-sweep", "image", "--image", IMG, "--width", "8", "--steps", "1000000", "--eval-every"),
        *("1000", "--rank-every", "1000", "--no-progress", "--grid", "1x1", "--run-name", "s"),
    ]
    add(
        Case(
            "sweep-sigterm-during-trials",
            long_sweep,
            exit=(143,),
            msg="nothing was written",
            interrupt=Interrupt(signal.SIGTERM, new_tmp="muon-sweep-ray-*", delay=10),
            timeout=300,
        )
    )
    add(
        Case(
            "sweep-sighup-during-trials",
            long_sweep,
            exit=(129,),
            msg="nothing was written",
            interrupt=Interrupt(signal.SIGHUP, new_tmp="muon-sweep-ray-*", delay=10),
            timeout=300,
            note="its terminal went away: stopped as by SIGTERM, Ray shut down",
        )
    )
    add(
        Case(
            "sweep-sigint-during-trials",
            long_sweep,
            exit=(130,),
            msg="nothing was written",
            interrupt=Interrupt(signal.SIGINT, new_tmp="muon-sweep-ray-*", delay=10),
            timeout=300,
        )
    )

    # --- ns-train muon-nerf ---------------------------------------------------------------------
    ns = ["ns-train", "muon-nerf", "--vis", "tensorboard", "--machine.device-type", "cpu"]
    add(Case("nerf-data-missing", [*ns, "--data", "/missing"], msg="data path /missing does not exist"))
    add(Case("nerf-data-file", [*ns, "--data", IMG], msg="is neither a folder nor a .json file"))
    add(Case("nerf-data-empty-folder", [*ns, "--data", f"{D}/empty_dir"], msg="transforms.json not found"))
    add(
        Case(
            "nerf-blender-without-subcommand",
            [*ns, "--data", SCENE],
            msg="put the blender-data subcommand after the flags",
        )
    )
    add(
        Case(
            "nerf-blender-missing-val",
            [*ns, "--data", f"{D}/scene_noval", "blender-data"],
            msg="transforms_val.json not found",
        )
    )
    add(Case("nerf-blender-data-file", [*ns, "--data", IMG, "blender-data"], msg="is not a folder"))
    add(
        Case(
            "nerf-corrupt-transforms-json",
            [*ns, "--data", f"{D}/corrupt.json", "--max-num-iterations", "2"],
            msg="corrupt.json",
            timeout=180,
        )
    )
    add(
        Case(
            "nerf-blender-corrupt-json",
            [*ns, "--data", f"{D}/scene_badjson", "--max-num-iterations", "2", "blender-data"],
            msg="transforms_train.json",
            timeout=180,
        )
    )
    # captures (nerfstudio-data): refused by muon_nerf.nerf.captures.check_capture before outputs/
    add(
        Case(
            "nerf-capture-missing-images",
            [*ns, "--data", f"{D}/capture_missing"],
            msg="17 of 67 images listed in",
            note="17 of the 67 listed images deleted",
        )
    )
    add(Case("nerf-capture-no-frames", [*ns, "--data", f"{D}/capture_empty"], msg="lists no frames"))
    add(
        Case(
            "nerf-capture-image-sizes-differ",
            [*ns, "--data", f"{D}/capture_sizes"],
            msg="frame_00002.png is 8×6 but",
        )
    )
    add(Case("nerf-capture-nan-pose", [*ns, "--data", f"{D}/capture_nan"], msg="has a non-finite pose"))
    add(
        Case(
            "nerf-capture-truncated-image",
            [*ns, "--data", f"{D}/capture_truncated/transforms.json"],
            msg="frame_00003.png cannot be decoded",
        )
    )
    add(
        Case(
            "nerf-device-cuda",
            [*ns[:-1], "cuda", "--data", SCENE, "--max-num-iterations", "2", "blender-data"],
            msg="CUDA",
            timeout=180,
        )
    )
    add(
        Case(
            "nerf-arch-unknown",
            [*ns, "--pipeline.model.field.arch", "nope", "--data", SCENE, "blender-data"],
            msg="arch",
            multiline_ok=True,
            note="nerfstudio's own parser (tyro) reports flag errors in a box",
        )
    )

    # --- scripts ---------------------------------------------------------------------------------
    bn = ["python", "$R/scripts/bench_nerf.py"]
    add(Case("bench-nerf-arch-unknown", [*bn, "--archs", "nope"], msg="unknown arch nope"))
    add(
        Case(
            "bench-nerf-full-cpu",
            [*bn, "--profile", "cpu", "--full"],
            msg="--full is a Blender gpu-profile option",
        )
    )
    add(
        Case(
            "bench-nerf-data-missing", [*bn, "--data", f"{D}/missing"], msg="transforms_train.json not found"
        )
    )
    add(Case("bench-nerf-device-cuda", [*bn, "--device", "cuda"], msg="no CUDA device"))
    add(Case("bench-nerf-no-seeds", [*bn, "--seeds"], msg="need at least one arch, optimizer and seed"))
    add(Case("bench-nerf-profile-unknown", [*bn, "--profile", "tpu"], msg="--profile"))
    add(
        Case(
            "bench-nerf-resume-mismatch",
            [*bn, "--dry-run", "--resume", "--output", "out"],
            msg="was measured with other settings",
            setup=write(
                "out/results.json",
                json.dumps({"config": {"profile": "gpu", "iterations": 2000, "scene": {}}, "runs": []}),
            ),
            check=lambda cwd, ctx: (
                []
                if (cwd / "out/results.json").read_text().startswith('{"config"')
                else ["data loss: results.json was rewritten"]
            ),
        )
    )
    add(
        Case(
            "bench-nerf-iterations-0",
            [*bn, "--dry-run", "--iterations", "0", "--output", "out"],
            msg="--iterations",
            timeout=300,
        )
    )
    tn = ["python", "$R/scripts/tune_nerf.py", "--dry-run", "--output", "out"]
    add(Case("tune-nerf-offset-0", [*tn, "--offsets", "0"], msg="--offsets must be distinct views"))
    add(Case("tune-nerf-shard-2-of-2", [*tn, "--shard", "2", "2"], msg="--shard I N needs"))
    add(Case("tune-nerf-muon-lr-nan", [*tn, "--muon-lrs", "nan"], msg="--muon-lrs must be finite"))

    # --- muon-data -------------------------------------------------------------------------------
    add(Case("data-unknown-name", ["muon-data", "fetch", "lego2", "--to", "d"], msg="unknown dataset"))
    add(
        Case(
            "data-to-a-file",
            ["muon-data", "fetch", "audio", "--to", "afile"],
            msg="cannot write",
            setup=write("afile", "x"),
        )
    )
    add(
        Case(
            "data-wrong-file-kept",
            ["muon-data", "fetch", "audio", "--to", "d"],
            msg="d/audio/gt_bach.wav",
            setup=write("d/audio/gt_bach.wav", "not the clip"),
            note="a file in the way with another SHA-256 is refused before any download, and kept",
        )
    )
    add(
        Case(
            "data-manifest-corrupt",
            ["muon-data", "fetch", "--manifest", "m.json", "--to", "d"],
            msg="m.json",
            setup=write("m.json", "{not json"),
        )
    )
    bq = ["python", "$R/scripts/bench_quality.py", "--tasks", "--extra=--steps 2 --width 8"]
    add(
        Case(
            "bench-quality-image-missing",
            [*bq, "--images", f"{D}/missing.png", "--archs", "relu"],
            msg="image not found",
        )
    )  # noqa: E501
    add(Case("bench-quality-arch-unknown", [*bq, "--images", IMG, "--archs", "nope"], msg="arch"))
    add(Case("bench-speed-device-cuda", speed("--device", "cuda"), msg="CUDA"))
    add(Case("bench-speed-sizes-0", speed("--device", "cpu", "--sizes", "0"), msg="--sizes"))
    add(
        Case(
            "bench-speed-output-under-file",
            speed("--device", "cpu", "--output", "afile/speed.json"),
            msg=("afile", "cannot write"),
            setup=write("afile", "x"),
        )
    )
    data = ["python", "-m", "muon_nerf.nerf.data"]
    add(
        Case(
            "data-subset-missing-src",
            [*data, "subset", "--src", f"{D}/missing", "--out", "out"],
            msg="transforms_train.json not found",
        )
    )
    add(
        Case(
            "data-subset-src-is-file",
            [*data, "subset", "--src", IMG, "--out", "out"],
            msg="not found: expected a Blender-format scene",
        )
    )
    add(
        Case(
            "data-subset-stride-0",
            [*data, "subset", "--src", SCENE, "--out", "out", "--stride", "0"],
            msg="stride must be >= 1",
        )
    )  # noqa: E501
    add(
        Case(
            "data-subset-offset-past-stride",
            [*data, "subset", "--src", SCENE, "--out", "out", "--stride", "2", "--offset", "2"],
            msg="offset 2 needs a stride above it",
        )
    )
    add(Case("data-no-kind", data, msg="kind"))
    add(
        Case(
            "data-sphere-size-0",
            [*data, "sphere", "--out", "out", "--size", "0"],
            msg=("--size", "empty image"),
        )
    )
    add(
        Case(
            "data-subset-out-exists",
            [*data, "subset", "--src", SCENE, "--out", "out", "--views", "1", "--size", "8"],
            msg="is not a scene written by this command",
            setup=write("out/notes.txt", NOTE),
            check=file_has("out/notes.txt", NOTE),
            note="--out names a folder that holds the user's files",
        )
    )
    return c


# ---------------------------------------------------------------------------------------------
# data


def make_data(root: Path) -> None:
    """Every input the cases read, tiny, under ``root``."""
    import soundfile as sf
    import trimesh
    from PIL import Image

    root.mkdir(parents=True)
    y, x = np.mgrid[0:64, 0:64] / 64
    rgb = np.stack([np.sin(6 * x), np.cos(5 * y), x * y], -1) * 0.5 + 0.5
    Image.fromarray((rgb * 255).astype(np.uint8)).save(root / "img64.png")
    Image.fromarray((rgb[:16, :16] * 255).astype(np.uint8)).save(root / "img16.png")
    Image.fromarray((rgb[:1, :1] * 255).astype(np.uint8)).save(root / "img1x1.png")
    gray = (rgb[:16, :16, 0] * 65535).astype(np.uint16)
    Image.fromarray(gray).save(root / "gray16.png")
    import cv2

    cv2.imwrite(str(root / "rgb16.png"), (rgb[:16, :16, ::-1] * 65535).astype(np.uint16))
    rng = np.random.default_rng(0)
    import tifffile

    tile = rgb[:16, :16].astype(np.float32)
    tifffile.imwrite(root / "float01.tif", tile)
    tifffile.imwrite(root / "float_over1.tif", tile * 3)
    tifffile.imwrite(root / "float_nan.tif", np.where(tile > 0.9, np.nan, tile))
    Image.fromarray((tile[..., 0] * 1e6).astype(np.int32), "I").save(root / "int32.tif")
    deep = (np.concatenate([tile, tile[..., :1]], -1) * 65535).astype(np.uint16)
    tifffile.imwrite(root / "rgba16.tif", deep, extrasamples=["unassalpha"])
    rows = deep[..., ::3].astype(">u2").reshape(16, -1).view(np.uint8)  # gray+alpha, 16-bit
    idat = zlib.compress(b"".join(b"\x00" + row.tobytes() for row in rows))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", 16, 16, 16, 4, 0, 0, 0)
    png16 = chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    (root / "gray_alpha16.png").write_bytes(b"\x89PNG\r\n\x1a\n" + png16)
    (root / "corrupt.png").write_bytes(rng.bytes(400))
    Image.fromarray((rng.random((1, 4000)) * 255).astype(np.uint8)).save(root / "thin.png")
    for name, side in (("bomb.png", 30000), ("bomb_warn.png", 10000)):  # over 2× / 1× Pillow's limit
        head = chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
        body = zlib.compress(b"\x00" * (side + 1) * 50)  # 50 rows of a claimed 10⁸–9·10⁸ pixels
        (root / name).write_bytes(b"\x89PNG\r\n\x1a\n" + head + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    # a 16×16 TIFF whose tags claim 30000×30000 (tifffile reads TIFFs, not Pillow)
    tifffile.imwrite(root / "bomb.tif", np.zeros((16, 16), np.uint16))
    with tifffile.TiffFile(root / "bomb.tif") as tif:
        tags = [tif.pages[0].tags[name] for name in ("ImageWidth", "ImageLength")]
        places = [(tag.valueoffset, "<H" if tag.dtype == 3 else "<I") for tag in tags]
    data = bytearray((root / "bomb.tif").read_bytes())
    for offset, fmt in places:
        struct.pack_into(fmt, data, offset, 30000)
    (root / "bomb.tif").write_bytes(bytes(data))
    png = (root / "img16.png").read_bytes()
    (root / "truncated.png").write_bytes(png[: len(png) // 2])
    (root / "empty.png").write_bytes(b"")
    (root / "empty.wav").write_bytes(b"")
    os.mkfifo(root / "fifo.png")
    (root / "empty_dir").mkdir()

    t = np.arange(400) / 8000
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    sf.write(root / "tone.wav", tone, 8000)
    sf.write(root / "silent.wav", np.zeros(400, np.float32), 8000)
    sf.write(root / "stereo.wav", np.stack([tone, -tone * 0.5], 1), 8000)
    bad = tone.copy()
    bad[10] = np.nan
    sf.write(root / "nan.wav", bad, 8000, subtype="FLOAT")

    mesh = trimesh.creation.icosphere(subdivisions=1)
    mesh.export(root / "ico.ply")
    mesh.export(root / "ico.obj")
    trimesh.PointCloud(mesh.vertices).export(root / "points.ply")
    trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 2]]).export(root / "flat.ply")
    # a NaN vertex (trimesh's merge would drop it), and a header declaring 10⁹ faces for one
    (root / "nan_vertex.ply").write_bytes(
        ply_bytes(np.where(np.arange(len(mesh.vertices))[:, None] == 3, np.nan, mesh.vertices), mesh.faces)
    )
    (root / "lying_header.ply").write_bytes(ply_bytes(mesh.vertices, mesh.faces[:1], declared_faces=10**9))
    (root / "corrupt.ply").write_text("ply\nformat nonsense 9.9\nelement vertex banana\nend_header\n\x00\x01")
    (root / "corrupt.json").write_text("{this is not json")

    def preset(name: str, data: object) -> None:
        (root / name).write_text(json.dumps(data))

    fmt = "muon-nerf-preset/2"
    preset(
        "preset_ok.json",
        {"format": fmt, "task": "image", "optimizer": "muon", "config": {"fit": {"steps": 10}}},
    )
    preset("preset_sdf.json", {"format": fmt, "task": "sdf", "optimizer": "muon", "config": {}})
    preset("preset_unknown.json", {"format": fmt, "task": "image", "config": {"fit": {"stepz": 3}}})
    preset("preset_type.json", {"format": fmt, "task": "image", "config": {"fit": {"steps": "abc"}}})
    preset("preset_arch.json", {"format": fmt, "task": "image", "config": {"field": {"arch": "nope"}}})
    preset("preset_null.json", {"format": fmt, "task": "image", "config": {"fit": {"steps": None}}})
    preset("preset_null_lr.json", {"format": fmt, "task": "image", "config": {"optim": {"lr": None}}})
    preset("preset_list.json", [1, 2])
    preset(
        "preset_overwrite.json",
        {"format": fmt, "task": "image", "config": {"overwrite": True, "run_name": "victim"}},
    )
    preset("preset_output_dir.json", {"format": fmt, "task": "image", "config": {"output_dir": "elsewhere"}})
    preset(
        "preset_scheduler.json", {"format": fmt, "task": "image", "config": {"fit": {"scheduler": "banana"}}}
    )
    preset("preset_steps_list.json", {"format": fmt, "task": "image", "config": {"fit": {"steps": [1, 2]}}})
    preset(
        "preset_image_dict.json", {"format": fmt, "task": "image", "config": {"data": {"image": {"a": 1}}}}
    )
    preset("preset_duration.json", {"format": fmt, "task": "audio", "config": {"data": {"duration": "abc"}}})
    (root / "preset_corrupt.json").write_text("{not json")

    from muon_nerf.nerf.data import write_sphere_scene

    write_sphere_scene(root / "sphere", size=8, views={"train": 2, "val": 1, "test": 1})
    shutil.copytree(root / "sphere", root / "scene_noval")
    (root / "scene_noval/transforms_val.json").unlink()
    shutil.copytree(root / "sphere", root / "scene_badjson")
    (root / "scene_badjson/transforms_train.json").write_text("{")

    make_captures(root)

    env = env_for("data", root.parent)
    for argv in (
        [*Context(root.parent).argv(sdf("--run-name", "s")), "--output-dir", str(root / "runs")],
        [*Context(root.parent).argv(fit("--run-name", "i")), "--output-dir", str(root / "runs")],
    ):
        proc = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise SystemExit(f"making the test data failed: {shlex.join(argv)}\n{proc.stderr}")
    (root / "runs/sdf/s").rename(root / "sdfrun")
    (root / "runs/image/i").rename(root / "imagerun")
    shutil.rmtree(root / "runs")


def ply_bytes(vertices: np.ndarray, faces: np.ndarray, declared_faces: int | None = None) -> bytes:
    """A binary little-endian PLY; ``declared_faces`` puts another face count in its header."""
    count = len(faces) if declared_faces is None else declared_faces
    header = (
        f"ply\nformat binary_little_endian 1.0\nelement vertex {len(vertices)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        f"element face {count}\nproperty list uchar int vertex_indices\nend_header\n"
    )
    body = np.asarray(vertices, "<f4").tobytes()
    body += b"".join(struct.pack("<B3i", 3, *map(int, f)) for f in faces)
    return header.encode() + body


def make_captures(root: Path) -> None:
    """Synthetic nerfstudio-data captures (8×8 PNGs), each broken in one way."""
    from PIL import Image

    from muon_nerf.nerf.captures import write_capture_scene

    def capture(name: str, views: int = 4) -> Path:
        return write_capture_scene(root / name, size=8, views=views, test_views=1)

    def edit(folder: Path, change: Callable[[dict], object]) -> None:
        meta = json.loads((folder / "transforms.json").read_text())
        change(meta)
        (folder / "transforms.json").write_text(json.dumps(meta))

    missing = capture("capture_missing", views=67)
    for i in range(12, 29):
        (missing / f"images/frame_{i:05d}.png").unlink()
    edit(capture("capture_empty"), lambda meta: meta.update(frames=[]))
    sizes = capture("capture_sizes")
    Image.open(sizes / "images/frame_00002.png").resize((8, 6)).save(sizes / "images/frame_00002.png")
    nan = capture("capture_nan")
    edit(nan, lambda meta: meta["frames"][1]["transform_matrix"][0].__setitem__(3, float("nan")))
    truncated = capture("capture_truncated") / "images/frame_00003.png"
    truncated.write_bytes(truncated.read_bytes()[:-30])


# ---------------------------------------------------------------------------------------------
# running
