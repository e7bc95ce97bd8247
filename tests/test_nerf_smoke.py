"""End-to-end: a synthetic Blender scene trains in-process (the default field, and WIRE set by its
command-line flag), then ns-eval / ns-render / ns-export work on the run from subprocesses with
networking unavailable (``unshare -n`` where allowed), ``ns-train --vis viewer`` serves the
viewer on 127.0.0.1, and ``ns-viewer`` opens the trained run."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("nerfstudio", reason="the nerfstudio plugin needs the [nerf] extra")

import torch  # noqa: E402
import tyro  # noqa: E402
from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig  # noqa: E402
from nerfstudio.engine.trainer import TrainerConfig  # noqa: E402
from PIL import Image  # noqa: E402

from muon_nerf.fields.fold import OmegaFoldedLinear  # noqa: E402
from muon_nerf.fields.mlp import MLPField  # noqa: E402
from muon_nerf.fit.metrics import psnr  # noqa: E402
from muon_nerf.method_configs import muon_nerf_method  # noqa: E402
from muon_nerf.nerf.bench import local_config  # noqa: E402
from muon_nerf.nerf.data import write_sphere_scene  # noqa: E402
from muon_nerf.nerf.optimizers import FloatLambdaLR  # noqa: E402
from muon_nerf.optim import MuonWithAuxAdam  # noqa: E402

BIN = Path(sys.executable).parent
BACKGROUND_MARGIN = 0.75
"""dB the trained toy model must beat the all-white prediction of the test view by: the sphere
covers a small part of each view, so white alone scores well, and a few dozen iterations stay
within a fraction of a dB of it (indistinguishable from an empty scene); the fixture trains 150."""
MODEL = dict(geo_feat_dim=8, head_width=16, num_coarse_samples=16, num_importance_samples=16)
FIELD = dict(num_layers=4, width=32)
MODEL_FLAGS = [f"--pipeline.model.{k.replace('_', '-')}={v}" for k, v in MODEL.items()]
MODEL_FLAGS += [f"--pipeline.model.field.{k.replace('_', '-')}={v}" for k, v in FIELD.items()]


def _offline() -> list[str]:
    """``unshare -n`` (a network namespace with no interfaces up) when this user may create one."""
    exe = shutil.which("unshare")
    if exe and subprocess.run([exe, "-n", "true"], capture_output=True).returncode == 0:
        return [exe, "-n"]
    return []


def _ns(tool: str, *args: str, offline: bool = True, timeout: int = 300) -> subprocess.CompletedProcess:
    cmd = (_offline() if offline else []) + [str(BIN / tool), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(cmd)}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    return write_sphere_scene(
        tmp_path_factory.mktemp("data") / "sphere", size=32, views={"train": 4, "val": 1, "test": 1}
    )


def shrunk(base: TrainerConfig, scene: Path, output_dir: Path, iterations: int) -> TrainerConfig:
    """A registered method's config at toy size, for an in-process CPU run."""
    config = local_config(base, scene, output_dir, iterations)
    config.experiment_name, config.timestamp = "sphere", "test"
    datamanager = config.pipeline.datamanager
    datamanager.train_num_rays_per_batch = datamanager.eval_num_rays_per_batch = 128
    for key, value in MODEL.items():
        setattr(config.pipeline.model, key, value)
    for key, value in FIELD.items():
        setattr(config.pipeline.model.field, key, value)
    return config


@pytest.fixture(scope="module")
def trained(scene, tmp_path_factory):
    """Train the real ``muon-nerf`` config, shrunk, in this process; return (config, before, after)."""
    config = shrunk(muon_nerf_method.config, scene, tmp_path_factory.mktemp("outputs"), 150)
    # the toy's own lrs (the method's tuned ones are for a 6×128 field): a few dozen steps must
    # show progress
    config.optimizers["fields"]["optimizer"].lr = 5e-3
    config.optimizers["fields_muon"]["optimizer"].lr = 0.02
    config.save_config()

    torch.manual_seed(0)
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    before = _test_view_psnr(trainer.pipeline.model, scene)
    trainer.train()
    after = _test_view_psnr(trainer.pipeline.model, scene)
    assert isinstance(trainer.optimizers.optimizers["fields_muon"], MuonWithAuxAdam)
    assert all(isinstance(s, FloatLambdaLR) for s in trainer.optimizers.schedulers.values())
    return config, before, after


def _test_view(scene: Path):
    """The test view's camera and its PNG composited on white."""
    outputs = BlenderDataParserConfig(data=scene).setup().get_dataparser_outputs("test")
    rgba = torch.from_numpy(np.asarray(Image.open(outputs.image_filenames[0]), dtype=np.float32) / 255)
    return outputs.cameras, rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])


def _background_psnr(scene: Path) -> float:
    """The trivial baseline: the all-background (white) prediction of the test view."""
    _, target = _test_view(scene)
    return psnr(torch.ones_like(target), target)


def _test_view_psnr(model, scene: Path) -> float:
    """PSNR of the in-memory model on the test view, against the PNG composited on white."""
    cameras, target = _test_view(scene)
    model.eval()
    rendered = model.get_outputs_for_camera(cameras[0:1])["rgb"]
    model.train()
    return psnr(rendered.clamp(0, 1), target)


def test_training_improves_and_checkpoint_loads_weights_only(trained, scene):
    config, before, after = trained
    background = _background_psnr(scene)
    print(f"test-view PSNR: before {before:.2f}, after {after:.2f}, all-white {background:.2f} dB")
    assert after > before + 1.0, (before, after)
    assert after > background + BACKGROUND_MARGIN, (background, after)  # a model, not an empty scene
    (ckpt,) = sorted(config.get_checkpoint_dir().glob("step-*.ckpt"))
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert state["step"] == config.max_num_iterations - 1
    assert set(state["optimizers"]) == {"fields", "fields_muon"}
    assert state["optimizers"]["fields_muon"]["param_groups"][0]["use_muon"] is True
    assert all(type(g["lr"]) is float for opt in state["optimizers"].values() for g in opt["param_groups"])
    assert any(k.endswith("mlp_base.hidden.0.weight") for k in state["pipeline"])


def test_cpu_smoke_run_trains_a_wire_field_set_by_its_flag(scene, tmp_path):
    """``--pipeline.model.field.arch wire`` on the registered method: a WIRE position MLP, ω-folded
    under Muon, trains on the CPU and checkpoints."""
    base = tyro.cli(
        TrainerConfig,
        default=copy.deepcopy(muon_nerf_method.config),
        args=["--pipeline.model.field.arch", "wire"],
    )
    config = shrunk(base, scene, tmp_path, 40)
    config.optimizers["fields"]["optimizer"].lr = 5e-3  # as for the default field: progress in 40 steps
    torch.manual_seed(0)
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    mlp: MLPField = trainer.pipeline.model.field.mlp_base
    assert mlp.config.arch == "wire" and mlp.config.spec().activation == "wire"
    assert all(isinstance(layer, OmegaFoldedLinear) for layer in mlp.hidden)  # folded by WIRE's ω
    start = {n: p.detach().clone() for n, p in mlp.named_parameters()}
    before = _test_view_psnr(trainer.pipeline.model, scene)
    trainer.train()
    after = _test_view_psnr(trainer.pipeline.model, scene)
    assert isinstance(trainer.optimizers.optimizers["fields_muon"], MuonWithAuxAdam)
    for name, p in mlp.named_parameters():
        assert torch.isfinite(p).all() and not torch.equal(p.detach(), start[name]), name
    assert after > before, (before, after)
    (ckpt,) = sorted(config.get_checkpoint_dir().glob("step-*.ckpt"))
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert any(k.endswith("mlp_base.hidden.0.weight") for k in state["pipeline"])


def test_ns_eval_render_export_offline(trained, tmp_path):
    config, _, after = trained
    config_yml = str(config.get_base_dir() / "config.yml")

    _ns("ns-eval", "--load-config", config_yml, "--output-path", str(tmp_path / "eval.json"))
    results = json.loads((tmp_path / "eval.json").read_text())["results"]
    # the subprocess reloaded the checkpoint: same test-view PSNR as the trained model in memory
    assert results["psnr"] == pytest.approx(after, abs=1e-3)
    assert 0 < results["ssim"] <= 1

    _ns("ns-render", "dataset", "--load-config", config_yml, "--output-path", str(tmp_path / "renders"))
    # <split>/<output name>/<image path>, or <split>/<output name>.jpg when there is one image
    renders = tmp_path / "renders" / "test"
    images = [p for p in renders.rglob("*") if p.suffix in (".png", ".jpg")]
    rendered = {Path(p.relative_to(renders).parts[0]).stem for p in images}
    assert {"gt-rgb", "rgb", "depth", "accumulation", "rgb_coarse", "normals"} <= rendered, rendered

    _ns(
        "ns-export",
        "pointcloud",
        "--load-config",
        config_yml,
        "--output-dir",
        str(tmp_path / "export"),
        "--num-points",
        "500",
    )
    ply = tmp_path / "export" / "point_cloud.ply"
    assert ply.is_file()
    header = ply.read_bytes()[:400].decode("latin-1")
    assert int(header.split("element vertex ")[1].split()[0]) > 100
    assert "nx" in header  # normals came from the model's "normals" output (the default method)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _follow(stream, lines: list[str], markers: dict[str, threading.Event]) -> None:
    """Collect a process's output; set each marker's event when its text appears (all at EOF)."""
    for line in stream:
        lines.append(line)
        for text, seen in markers.items():
            if text in line:
                seen.set()
    for seen in markers.values():
        seen.set()


def _http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except (urllib.error.URLError, OSError):
        return None


@contextlib.contextmanager
def _viewer(cmd: list[str], port: int, *markers: str) -> Iterator[tuple[subprocess.Popen, list[str], dict]]:
    """Start ``cmd`` (which serves the viewer on ``port``) and yield once the viewer answers HTTP
    200: readiness is the banner naming the port, then the endpoint polled until it answers
    (bounded by timeouts, never a fixed sleep). Yields the process, its output lines so far and an
    event per marker text; the process is killed at exit if still running."""
    env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}  # the banner on one line, unbuffered
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # pytest may run in the background
    )
    lines: list[str] = []
    events = {text: threading.Event() for text in (f"127.0.0.1:{port}", *markers)}
    reader = threading.Thread(target=_follow, args=(proc.stdout, lines, events), daemon=True)
    reader.start()
    url, status = f"http://127.0.0.1:{port}/", None
    try:
        assert events[f"127.0.0.1:{port}"].wait(timeout=300) and proc.poll() is None, "".join(lines)[-3000:]
        for _ in range(600):  # the server thread starts beside the banner: poll until it answers
            status = _http_status(url)
            if status is not None or proc.poll() is not None:
                break
            try:
                proc.wait(timeout=0.1)  # returns early if the process exits
            except subprocess.TimeoutExpired:
                pass
        assert status == 200, (status, "".join(lines)[-3000:])
        yield proc, lines, events
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=30)


def test_viewer_serves_on_localhost_during_a_cpu_run(scene, tmp_path):
    """The viewer answers on a free port during training, and stays up after it (no race with a
    quick run) until the run is interrupted."""
    port = _free_port()
    cmd = [
        str(BIN / "ns-train"),
        "muon-nerf",
        "--machine.device-type=cpu",
        "--vis=viewer",
        "--viewer.websocket-host=127.0.0.1",
        f"--viewer.websocket-port={port}",
        "--viewer.quit-on-train-completion=False",
        "--max-num-iterations=60",
        "--steps-per-save=1000",
        "--steps-per-eval-batch=0",
        "--steps-per-eval-image=0",
        "--steps-per-eval-all-images=0",
        "--pipeline.datamanager.train-num-rays-per-batch=64",
        *MODEL_FLAGS,
        f"--output-dir={tmp_path}",
        "--data",
        str(scene),
        "blender-data",
    ]
    with _viewer(cmd, port, "Use ctrl+c to quit") as (proc, lines, events):
        # training ends, the checkpoint is written, and the viewer keeps serving
        assert events["Use ctrl+c to quit"].wait(timeout=300) and proc.poll() is None, "".join(lines)[-3000:]
        assert _http_status(f"http://127.0.0.1:{port}/") == 200
        assert list(tmp_path.rglob("step-*.ckpt")), "".join(lines)[-3000:]
        proc.send_signal(signal.SIGINT)  # ns-train's own way out of the viewer (ctrl+c)
        proc.wait(timeout=120)
    assert proc.returncode == 0, "".join(lines)[-3000:]


def test_ns_viewer_opens_a_trained_run(trained):
    """``ns-viewer --load-config`` loads the trained checkpoint (weights_only: Python floats in
    the scheduler state) and serves it on a free port."""
    config, _, _ = trained
    port = _free_port()
    cmd = [
        str(BIN / "ns-viewer"),
        "--load-config",
        str(config.get_base_dir() / "config.yml"),
        "--viewer.websocket-host=127.0.0.1",
        f"--viewer.websocket-port={port}",
    ]
    with _viewer(cmd, port) as (proc, lines, _):
        assert proc.poll() is None, "".join(lines)[-3000:]
        output = "".join(lines)
        assert "Done loading checkpoint" in output, output[-3000:]  # nerfstudio's eval_setup line


@pytest.mark.parametrize("family", ["nerf", "ngp"])
def test_speed_bench_interleaves_both_methods_with_their_callbacks(scene, tmp_path, family):
    """``python -m muon_nerf.nerf.bench``: both registered methods of a family train in one
    process, their iterations interleaved and run as ``Trainer.train`` runs them (callbacks
    included: the proposal sampler's schedule for ngp); the optimizer steps are timed by hooks."""
    from muon_nerf.nerf.bench import BenchArgs, run

    result = run(BenchArgs(data=scene, iterations=2, rays=32, family=family, output=tmp_path))
    assert set(result["methods"]) == {f"muon-{family}", f"muon-{family}-adam"}
    for method in result["methods"].values():
        assert len(method["iteration_s"]) == 2 and method["iterations_per_s"] > 0
        assert 0 < method["median_optimizer_step_s"] < method["median_iteration_s"]
        assert 0 < method["optimizer_step_share"] < 1
    assert result["scale"]["samples_per_ray"] == ("proposal 256, 96 → 48" if family == "ngp" else "64 + 64")
