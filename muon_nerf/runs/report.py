"""The console table every fit and comparison ends with."""

from __future__ import annotations

from rich.table import Table

from muon_nerf.fit.loop import FitResult
from muon_nerf.fit.signal import Signal


def comparison_table(signal: Signal, results: dict[str, FitResult]) -> Table:
    """Metrics, final stable rank per hidden layer and train time per optimizer (and the
    difference Muon − Adam when both ran). The title names the optimizers that ran."""
    table = Table(title=f"{signal.task}: {' vs '.join(n.capitalize() for n in results)}")
    table.add_column("metric")
    for name in results:
        table.add_column(name, justify="right")
    if len(results) == 2:
        table.add_column("muon − adam", justify="right")
    names = list(results)
    for metric in results[names[0]].metrics:
        values = [results[n].metrics[metric] for n in names]
        delta = [f"{values[1] - values[0]:+.3f}"] if len(values) == 2 else []
        table.add_row(metric, *(f"{v:.3f}" for v in values), *delta)
    for layer in results[names[0]].ranks.stable:
        values = [results[n].ranks.final_stable()[layer] for n in names]
        delta = [f"{values[1] - values[0]:+.2f}"] if len(values) == 2 else []
        table.add_row(f"stable rank {layer}", *(f"{v:.2f}" for v in values), *delta)
    times = [results[n].train_seconds for n in names]
    table.add_row(
        "train time (s)",
        *(f"{t:.1f}" for t in times),
        *([f"×{times[1] / times[0]:.2f}"] if len(times) == 2 else []),
    )
    return table
