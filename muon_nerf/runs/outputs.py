"""A run's files: ``metrics.json``, the reconstruction, figures and ``field.pt`` per optimizer, and
``compare.png`` + ``comparison.json`` for a comparison (layout in the README)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from muon_nerf.fit.hardware import hardware
from muon_nerf.fit.loop import FitResult
from muon_nerf.fit.signal import Signal
from muon_nerf.runs.checkpoint import save_field
from muon_nerf.runs.figures import compare_figure, curves_figure, ranks_figure
from muon_nerf.runs.io import write_json


def config_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def write_run(run_dir: Path, signal: Signal, cfg: Any, optimizer: str, result: FitResult) -> None:
    """``metrics.json``, the reconstruction, ``curves.png``, ``ranks.png`` and ``field.pt``."""
    write_json(
        run_dir / "metrics.json",
        {
            "optimizer": optimizer,
            "config": config_dict(cfg),
            "signal": signal.describe(),
            "hardware": hardware(),
            **result.summary(),
        },
    )
    signal.save(result.prediction, run_dir)
    curves_figure({optimizer: result}, signal.primary_metric, run_dir / "curves.png")
    ranks_figure(result.ranks, run_dir / "ranks.png", title=f"{signal.task} / {optimizer}")
    save_field(run_dir / "field.pt", result.field, signal.in_dim, signal.out_dim)


def write_comparison(run_dir: Path, signal: Signal, cfg: Any, results: dict[str, FitResult]) -> None:
    """One folder per optimizer, ``compare.png`` and ``comparison.json``."""
    for name, result in results.items():
        write_run(run_dir / name, signal, cfg, name, result)
    compare_figure(signal, results, run_dir / "compare.png")
    write_json(
        run_dir / "comparison.json",
        {
            "signal": signal.describe(),
            "config": config_dict(cfg),
            "hardware": hardware(),
            "results": {
                n: {
                    "metrics": r.metrics,
                    "final_stable_rank": r.ranks.final_stable(),
                    "train_seconds": r.train_seconds,
                }
                for n, r in results.items()
            },
        },
    )
