#!/usr/bin/env python3
"""Part 3 of ``gpu_check.sh``: ``muon-nerf`` vs ``muon-nerf-adam`` on lego after a fixed budget.

Both methods train in this process from their registered configs for the same number of
iterations, then report PSNR/SSIM on held-out views and iterations/s. ``--dry-run`` does the
same on a tiny synthetic scene on the CPU with a shrunk model (tests run it).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import tyro

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from muon_nerf.io import write_json  # noqa: E402
from muon_nerf.method_configs import muon_nerf_adam_method, muon_nerf_method  # noqa: E402
from muon_nerf.nerf.bench import local_config  # noqa: E402
from muon_nerf.nerf.data import write_blender_subset, write_sphere_scene  # noqa: E402

TOY_MODEL = dict(
    num_layers=3, width=16, geo_feat_dim=8, head_width=8, num_coarse_samples=8, num_importance_samples=8
)


@dataclass
class NerfCheckArgs:
    data: Path
    """Blender-format scene (lego)."""
    work: Path
    output: Path
    iterations: int = 1500
    eval_views: int = 10
    dry_run: bool = False


def main(args: NerfCheckArgs) -> dict:
    device = "cpu" if args.dry_run else "cuda"
    if args.dry_run:
        scene = write_sphere_scene(args.work / "scene", size=16, views={"train": 2, "val": 1, "test": 1})
        iterations = 2
    else:
        scene = write_blender_subset(
            args.data, args.work / "lego", views=100, size=400, eval_views=args.eval_views
        )
        iterations = args.iterations
    results = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "iterations": iterations,
        "scene": str(args.data if not args.dry_run else scene),
        "methods": {},
    }
    for spec in (muon_nerf_method, muon_nerf_adam_method):
        config = local_config(spec.config, scene, args.work / "outputs", iterations)
        config.machine.device_type = device
        if args.dry_run:
            config.pipeline.datamanager.train_num_rays_per_batch = 32
            config.pipeline.datamanager.eval_num_rays_per_batch = 64
            for key, value in TOY_MODEL.items():
                setattr(config.pipeline.model, key, value)
        torch.manual_seed(0)
        trainer = config.setup(local_rank=0, world_size=1)
        trainer.setup()
        start = time.perf_counter()
        for step in range(iterations):
            trainer.train_iteration(step)
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        metrics = trainer.pipeline.get_average_eval_image_metrics()
        results["methods"][config.method_name] = {
            "psnr": float(metrics["psnr"]),
            "ssim": float(metrics["ssim"]),
            "train_seconds": seconds,
            "iterations_per_s": iterations / seconds,
        }
        print(config.method_name, results["methods"][config.method_name], flush=True)
    write_json(args.output, results)
    return results


if __name__ == "__main__":
    main(tyro.cli(NerfCheckArgs))
