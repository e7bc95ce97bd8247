"""Training speed of ``muon-nerf`` vs ``muon-nerf-adam`` on one machine, interleaved.

Both trainers are built in one process from the registered configs (default batch and model
unless overridden) and their iterations alternate, so load from other processes hits both alike.
Prints a table and writes JSON with the hardware, scale and wall time.

    python -m muon_nerf.nerf.bench --data /tmp/lego4 --iterations 6
"""

from __future__ import annotations

import copy
import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import tyro
from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
from nerfstudio.engine.trainer import Trainer, TrainerConfig
from rich.console import Console
from rich.table import Table

from muon_nerf.fit.errors import InputError, run_cli
from muon_nerf.fit.io import write_json
from muon_nerf.nerf.config import trainer_config


def local_config(
    base: TrainerConfig, data: Path, output_dir: Path, iterations: int, device: str = "cpu"
) -> TrainerConfig:
    """A registered method's config, set up for a short in-process run on a Blender scene:
    tensorboard instead of the viewer, no periodic evaluation, no console writer."""
    config = copy.deepcopy(base)
    config.output_dir = output_dir
    config.vis = "tensorboard"
    config.machine.device_type = device
    config.max_num_iterations = iterations
    config.steps_per_save = max(iterations, 1)
    config.steps_per_eval_batch = config.steps_per_eval_image = config.steps_per_eval_all_images = 0
    config.logging.local_writer.enable = False
    config.pipeline.datamanager.data = data
    config.pipeline.datamanager.dataparser = BlenderDataParserConfig(data=data)
    for group in config.optimizers.values():
        if group["scheduler"] is not None:
            group["scheduler"].max_steps = iterations
    config.set_timestamp()
    return config


FIELD_KEYS = ("arch", "num_layers", "width")
"""Model settings that live in the nested position-MLP config (``model.field``)."""


def set_model(config: TrainerConfig, **values: Any) -> dict[str, Any]:
    """Set model settings in place (``FIELD_KEYS`` on the position-MLP config, the rest on the
    model config) and return the model as run: arch, depth, width, samples per ray and every
    value set. The one place benchmarks read or write the model config; with no values it reads."""
    model = config.pipeline.model
    for key, value in values.items():
        setattr(model.field if key in FIELD_KEYS else model, key, value)
    record = {key: getattr(model.field, key) for key in FIELD_KEYS}
    for key in ("num_coarse_samples", "num_importance_samples", "hidden_optimizer", *values):
        if key not in FIELD_KEYS:
            record[key] = getattr(model, key)
    return record


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
    output: Path = Path("outputs/nerf_bench")


def run(args: BenchArgs) -> dict:
    if not (args.data / "transforms_train.json").is_file():
        raise InputError(f"{args.data}/transforms_train.json not found: expected a Blender-format scene")
    trainers: dict[str, Trainer] = {}
    for name, hidden_optimizer in (("muon-nerf", "muon"), ("muon-nerf-adam", "adam")):
        base = trainer_config(name, hidden_optimizer=hidden_optimizer)  # the registered methods' configs
        config = local_config(base, args.data, args.output / "runs", args.iterations + 1)
        if args.rays is not None:
            config.pipeline.datamanager.train_num_rays_per_batch = args.rays
        torch.manual_seed(0)
        trainer = config.setup(local_rank=0, world_size=1)
        trainer.setup()
        trainers[config.method_name] = trainer
    times: dict[str, list[float]] = {name: [] for name in trainers}
    step_times: dict[str, list[float]] = {name: [] for name in trainers}
    load = os.getloadavg()[0]
    start = time.perf_counter()
    for step in range(args.iterations + 1):
        for name, trainer in trainers.items():
            t0 = time.perf_counter()
            trainer.train_iteration(step)
            t1 = time.perf_counter()
            trainer.optimizers.optimizer_step_all()  # grads are still there: the optimizers alone
            t2 = time.perf_counter()
            if step > 0:  # step 0 is warm-up
                times[name].append(t1 - t0)
                step_times[name].append(t2 - t1)
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
            "samples_per_ray": model["num_coarse_samples"] + model["num_importance_samples"],
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
    for col in ("method", "iterations/s", "s/iteration (median)", "optimizer step s (median)"):
        table.add_column(col)
    for name, m in result["methods"].items():
        table.add_row(
            name,
            f"{m['iterations_per_s']:.3f}",
            f"{m['median_iteration_s']:.2f}",
            f"{m['median_optimizer_step_s']:.4f}",
        )
    Console().print(table)
    print(f"scale: {result['scale']}; wall {result['wall_s']:.0f} s")
    write_json(args.output / "bench.json", result)
    print(f"wrote {args.output / 'bench.json'}")


if __name__ == "__main__":
    run_cli(main)
