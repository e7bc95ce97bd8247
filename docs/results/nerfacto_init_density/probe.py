#!/usr/bin/env python3
"""Why nerfacto rendered grey on lego at the cpu profile: its colour head over the first
iterations. Trains nerfstudio's nerfacto with ``scripts/bench_nerf.py``'s Blender settings at a
given initial density and records, per iteration, the rgb loss, the training PSNR, the share of
colour-head outputs at sigmoid's floor or ceiling (below 1e-3 or above 1 − 1e-3) and quantiles of
the head's last pre-activation. nerfstudio's training is not bit-reproducible from run to run
(same seed, different losses by iteration 2), so the exact iterations differ between runs.

    python3 scripts/bench_nerf.py --profile cpu --archs nerfacto --output OUT   # writes OUT/work/scene
    python3 docs/results/nerfacto_init_density/probe.py OUT/work/scene 0.01 40 density0.01.json
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

import bench_nerf  # noqa: E402

from muon_nerf.runs.io import write_json  # noqa: E402


def main(scene: str, density: str, iterations: str, out: str) -> None:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="nerfacto-probe-") as work:  # run folder, checkpoint
        rows = probe(Path(scene), float(density), int(iterations), Path(work))
    record = {"average_init_density": float(density), "iterations": int(iterations), "rows": rows}
    write_json(Path(out), record)


def probe(scene: Path, density: float, iterations: int, work: Path) -> list[dict]:
    profile = dataclasses.replace(bench_nerf.PROFILES["cpu"], iterations=iterations)
    config, _ = bench_nerf.peer_config(scene, "nerfacto", 0, profile, "cpu", work)
    config.pipeline.model.average_init_density = density
    trainer = bench_nerf.build_trainer(config, "nerfacto", 0)
    head = trainer.pipeline.model.field.mlp_head
    seen: dict[str, torch.Tensor] = {}
    head.register_forward_hook(lambda m, i, o: seen.update(rgb=o.detach()) if m.training else None)
    head.layers[-1].register_forward_hook(lambda m, i, o: seen.update(pre=o.detach()) if m.training else None)
    rows = []
    train_iteration = trainer.train_iteration

    def probed(step: int):
        loss, losses, metrics = train_iteration(step)
        rgb, pre = seen["rgb"], seen["pre"].flatten()[:65536]
        rows.append(
            {
                "step": step,
                "rgb_loss": float(losses["rgb_loss"]),
                "train_psnr": float(metrics["psnr"]),
                "saturated": float(((rgb < 1e-3) | (rgb > 1 - 1e-3)).float().mean()),
                "pre_activation_q01_q50_q99": torch.quantile(pre, torch.tensor([0.01, 0.5, 0.99])).tolist(),
            }
        )
        print(rows[-1], flush=True)
        return loss, losses, metrics

    trainer.train_iteration = probed
    trainer.train()
    trainer.shutdown()
    return rows


if __name__ == "__main__":  # nerfstudio's data manager starts worker processes
    main(*sys.argv[1:])
