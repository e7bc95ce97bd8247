"""Training speed of ``muon-nerf`` vs ``muon-nerf-adam`` (or ``muon-ngp`` vs ``muon-ngp-adam``)
on one machine, interleaved.

Both trainers are built in one process from the registered configs (default batch and model
unless overridden) and their iterations alternate, so load from other processes hits both alike.
Prints a table (iterations/s, the optimizer steps' median time and share of an iteration, timed
with torch's step hooks) and writes JSON with the hardware, scale and wall time.

    python -m muon_nerf.nerf.bench --data /tmp/lego4 --iterations 6
"""

from __future__ import annotations

import copy
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import tyro
from nerfstudio.data.dataparsers.base_dataparser import DataParserConfig
from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.engine.callbacks import TrainingCallbackLocation
from nerfstudio.engine.trainer import Trainer, TrainerConfig
from rich.console import Console
from rich.table import Table

from muon_nerf.fit.errors import InputError, run_cli
from muon_nerf.nerf.config import ngp_trainer_config, trainer_config
from muon_nerf.runs.io import write_json


def scene_dataparser(data: Path) -> DataParserConfig:
    """nerfstudio's dataparser for a scene folder: ``blender-data`` for a Blender scene (it has
    ``transforms_train.json``), else ``nerfstudio-data`` for a capture (``transforms.json``) at
    its images' own resolution. ``downscale_factor`` 1 is explicit: left unset, nerfstudio-data
    picks a factor from the image size and reads ``images_N`` folders beside the data (which
    other nerfstudio versions write there), so the images scored would depend on what else the
    data folder holds."""
    if (data / "transforms_train.json").is_file():
        return BlenderDataParserConfig(data=data)
    return NerfstudioDataParserConfig(data=data, downscale_factor=1)


def local_config(
    base: TrainerConfig, data: Path, output_dir: Path, iterations: int, device: str = "cpu"
) -> TrainerConfig:
    """A registered method's config, set up for a short in-process run on a scene (Blender or a
    capture: ``scene_dataparser``): tensorboard instead of the viewer, no periodic evaluation, no
    console writer."""
    config = copy.deepcopy(base)
    config.output_dir = output_dir
    config.vis = "tensorboard"
    config.machine.device_type = device
    config.max_num_iterations = iterations
    config.steps_per_save = max(iterations, 1)
    config.steps_per_eval_batch = config.steps_per_eval_image = config.steps_per_eval_all_images = 0
    config.logging.local_writer.enable = False
    config.pipeline.datamanager.data = data
    config.pipeline.datamanager.dataparser = scene_dataparser(data)
    for group in config.optimizers.values():
        if group["scheduler"] is not None:
            group["scheduler"].max_steps = iterations
    config.set_timestamp()
    return config


FIELD_KEYS = ("arch", "num_layers", "width")
"""Model settings that live in the nested position-MLP config (``model.field``)."""
SAMPLER_KEYS = {
    "coarse_fine": ("num_coarse_samples", "num_importance_samples"),
    "proposal": ("proposal.num_proposal_samples_per_ray", "proposal.num_nerf_samples_per_ray"),
}
"""Per sampler, the sample counts that say what one ray costs."""


def _owner(model: Any, key: str) -> tuple[Any, str]:
    """The config object that holds ``key`` (``FIELD_KEYS`` on the position MLP, ``a.b`` on the
    model's nested ``a``) and the attribute name there."""
    if key in FIELD_KEYS:
        return model.field, key
    *path, name = key.split(".")
    for part in path:
        model = getattr(model, part)
    return model, name


def set_model(config: TrainerConfig, **values: Any) -> dict[str, Any]:
    """Set model settings in place (``FIELD_KEYS`` on the position-MLP config, ``proposal.X`` on
    the proposal config, the rest on the model config) and return the model as run: arch, depth,
    width, sampler and its samples per ray, and every value set. The one place benchmarks read or
    write the model config; with no values it reads."""
    model = config.pipeline.model
    if "sampler" in values:  # first: it decides which sample counts are recorded
        model.sampler = values["sampler"]
    for key, value in values.items():
        setattr(*_owner(model, key), tuple(value) if isinstance(value, list) else value)
    record = {key: getattr(model.field, key) for key in FIELD_KEYS}
    for key in ("sampler", *SAMPLER_KEYS[model.sampler], "hidden_optimizer", *values):
        if key not in FIELD_KEYS:
            value = getattr(*_owner(model, key))
            record[key] = list(value) if isinstance(value, tuple) else value
    return record


def samples_per_ray(record: dict[str, Any]) -> str:
    """What ``set_model`` recorded about the sampling, in words: "32 + 32" (coarse + importance)
    or "proposal 256, 96 → 48"."""
    if record["sampler"] == "proposal":
        passes = ", ".join(map(str, record["proposal.num_proposal_samples_per_ray"]))
        return f"proposal {passes} → {record['proposal.num_nerf_samples_per_ray']}"
    return f"{record['num_coarse_samples']} + {record['num_importance_samples']}"


class StepTimer:
    """Seconds spent in each param group's ``optimizer.step`` (torch's public step hooks), so a
    benchmark can state the optimizer's share of an iteration without a second, extra step.
    ``sync`` (CUDA) waits for queued kernels at both ends, at the cost of two syncs per step."""

    def __init__(self, optimizers: dict[str, torch.optim.Optimizer], sync: bool = False) -> None:
        self.seconds = dict.fromkeys(optimizers, 0.0)
        self._start = 0.0
        self._sync = sync
        self._handles = []
        for name, optimizer in optimizers.items():
            self._handles.append(optimizer.register_step_pre_hook(self._begin))
            self._handles.append(optimizer.register_step_post_hook(self._finisher(name)))

    def _now(self) -> float:
        if self._sync:
            torch.cuda.synchronize()
        return time.perf_counter()

    def _begin(self, *_: Any) -> None:
        self._start = self._now()

    def _finisher(self, name: str) -> Callable[..., None]:
        def finish(*_: Any) -> None:
            self.seconds[name] += self._now() - self._start

        return finish

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def cpu_name() -> str:
    """The CPU model as /proc/cpuinfo names it (platform.processor() is often empty on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass
class BenchArgs:
    """Iterations/s of muon-nerf vs muon-nerf-adam at the registered default batch."""

    data: Path
    """A Blender-format scene (e.g. from ``python -m muon_nerf.nerf.data subset``)."""
    iterations: int = 6
    """Timed iterations per method (after one warm-up each)."""
    rays: int | None = None
    """Rays per batch; None keeps the registered default."""
    sampler: Literal["coarse_fine", "proposal"] | None = None
    """None keeps the registered default."""
    family: Literal["nerf", "ngp"] = "nerf"
    """nerf: muon-nerf vs muon-nerf-adam; ngp: muon-ngp vs muon-ngp-adam."""
    output: Path = Path("outputs/nerf_bench")


def _iterate(trainer: Trainer, step: int) -> None:
    """One training iteration as ``Trainer.train`` runs it: the pipeline's callbacks (proposal
    annealing and update schedule among them) around ``train_iteration``."""
    for callback in trainer.callbacks:
        callback.run_callback_at_location(step, location=TrainingCallbackLocation.BEFORE_TRAIN_ITERATION)
    trainer.train_iteration(step)
    for callback in trainer.callbacks:
        callback.run_callback_at_location(step, location=TrainingCallbackLocation.AFTER_TRAIN_ITERATION)


def run(args: BenchArgs) -> dict:
    if not (args.data / "transforms_train.json").is_file():
        raise InputError(f"{args.data}/transforms_train.json not found: expected a Blender-format scene")
    if args.iterations < 1:
        raise InputError(f"--iterations must be >= 1, got {args.iterations}")
    trainers: dict[str, Trainer] = {}
    build = ngp_trainer_config if args.family == "ngp" else trainer_config  # the registered methods' configs
    for hidden_optimizer in ("muon", "adam"):
        name = f"muon-{args.family}" + ("-adam" if hidden_optimizer == "adam" else "")
        base = build(name, hidden_optimizer=hidden_optimizer)
        config = local_config(base, args.data, args.output / "runs", args.iterations + 1)
        if args.rays is not None:
            config.pipeline.datamanager.train_num_rays_per_batch = args.rays
        if args.sampler is not None:
            set_model(config, sampler=args.sampler)
        torch.manual_seed(0)
        trainer = config.setup(local_rank=0, world_size=1)
        trainer.setup()
        trainers[config.method_name] = trainer
    times: dict[str, list[float]] = {name: [] for name in trainers}
    step_times: dict[str, list[float]] = {name: [] for name in trainers}
    timers = {name: StepTimer(trainer.optimizers.optimizers) for name, trainer in trainers.items()}
    load = os.getloadavg()[0]
    start = time.perf_counter()
    for step in range(args.iterations + 1):
        for name, trainer in trainers.items():
            before = sum(timers[name].seconds.values())
            t0 = time.perf_counter()
            _iterate(trainer, step)
            if step > 0:  # step 0 is warm-up
                times[name].append(time.perf_counter() - t0)
                step_times[name].append(sum(timers[name].seconds.values()) - before)
    config = next(iter(trainers.values())).config
    model = set_model(config)
    result = {
        "hardware": {
            "cpu": cpu_name(),
            "torch_threads": torch.get_num_threads(),
            "load_average_1min_at_start": load,
            "torch": torch.__version__,
        },
        "scale": {
            "data": str(args.data),
            "rays_per_batch": config.pipeline.datamanager.train_num_rays_per_batch,
            "samples_per_ray": samples_per_ray(model),
            "num_layers": model["num_layers"],
            "width": model["width"],
            "timed_iterations": args.iterations,
        },
        "wall_s": time.perf_counter() - start,
        "methods": {
            name: {
                "iterations_per_s": 1 / statistics.median(times[name]),
                "median_iteration_s": statistics.median(times[name]),
                "median_optimizer_step_s": statistics.median(step_times[name]),
                "optimizer_step_share": sum(step_times[name]) / sum(times[name]),
                "iteration_s": times[name],
            }
            for name in trainers
        },
        "args": asdict(args),
    }
    return result


def main() -> None:
    args = tyro.cli(BenchArgs)
    result = run(args)
    hardware = result["hardware"]
    load = hardware["load_average_1min_at_start"]
    table = Table(title=f"CPU training speed ({hardware['cpu']}, load {load:.1f})")
    columns = ("method", "iterations/s", "s/iteration (median)", "optimizer step s (median)", "step share")
    for col in columns:
        table.add_column(col)
    for name, m in result["methods"].items():
        table.add_row(
            name,
            f"{m['iterations_per_s']:.3f}",
            f"{m['median_iteration_s']:.2f}",
            f"{m['median_optimizer_step_s']:.4f}",
            f"{100 * m['optimizer_step_share']:.1f}%",
        )
    Console().print(table)
    print(f"scale: {result['scale']}; wall {result['wall_s']:.0f} s")
    write_json(args.output / "bench.json", result)
    print(f"wrote {args.output / 'bench.json'}")


if __name__ == "__main__":
    run_cli(main)
