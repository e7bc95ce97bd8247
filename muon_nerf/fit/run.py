"""Running a task: build the field and optimizer, fit, write outputs; or compare Adam with Muon.

Every front end (``muon-fit``, ``muon-sdf fit``, ``scripts/fit_*.py``, sweeps, benchmarks) goes
through ``fit_one``/``execute``, so outputs and tables look the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console

from muon_nerf.fit.checkpoint import make_field
from muon_nerf.fit.io import check_run_dir, default_run_name, staged_dir
from muon_nerf.fit.loop import FitResult, fit
from muon_nerf.fit.outputs import write_comparison, write_run
from muon_nerf.fit.report import comparison_table
from muon_nerf.fit.signal import Signal
from muon_nerf.fit.task import TaskConfig
from muon_nerf.optim import OptimizerName, format_split

OPTIMIZERS: tuple[OptimizerName, ...] = ("adam", "muon")


def fit_one(
    signal: Signal,
    cfg: TaskConfig,
    optimizer: OptimizerName,
    on_eval: Callable[[dict[str, float]], None] | None = None,
) -> FitResult:
    """One fit of ``signal`` with ``optimizer``; the field is folded as its config says for it."""
    field_cfg = cfg.field.under(optimizer)
    field_ = make_field(field_cfg, signal.in_dim, signal.out_dim, cfg.fit.seed, cfg.fit.device)
    opt = cfg.optim.build(field_, optimizer)
    if cfg.print_split:
        Console().print(
            f"[bold]{optimizer}[/] parameter split\n"
            f"{format_split(field_, optimizer, cfg.optim.muon_first_layer)}"
        )
    result = fit(signal, field_, opt, cfg.fit, label=f"{signal.task}/{optimizer}", on_eval=on_eval)
    result.extra["num_params"] = sum(p.numel() for p in field_.parameters())
    result.extra["omega_folded"] = field_cfg.fold_frequency() is not None
    return result


def check_optimizers(signal: Signal, cfg: TaskConfig, names: tuple[OptimizerName, ...]) -> None:
    """Build each optimizer's param groups on a CPU copy of the field before any fit, so a refusal
    (Muon with no hidden matrix) comes first, not after the Adam half of ``--compare``."""
    for name in names:
        field_ = make_field(cfg.field.under(name), signal.in_dim, signal.out_dim, cfg.fit.seed, "cpu")
        cfg.optim.param_groups(field_, name)


def execute(
    cfg: TaskConfig, signal: Signal | None = None, console: Console | None = None
) -> dict[str, FitResult]:
    """Fit (or compare) and write ``outputs/<task>/<run>/`` atomically. Returns the results."""
    console = console or Console()
    cfg.check()
    signal = (signal or cfg.signal()).to(cfg.fit.device)
    names = OPTIMIZERS if cfg.compare else (cfg.optim.optimizer,)
    run_dir = cfg.output_dir / signal.task / (cfg.run_name or default_run_name("-".join(names)))
    check_run_dir(run_dir, cfg.overwrite)  # before any work: never lose a fit to an unwritable folder
    check_optimizers(signal, cfg, names)
    console.print(f"[bold]{signal.task}[/]: {signal.describe()}")
    results = {name: fit_one(signal, cfg, name) for name in names}
    with staged_dir(run_dir, cfg.overwrite) as stage:
        if cfg.compare:
            write_comparison(stage, signal, cfg, results)
        else:
            write_run(stage, signal, cfg, names[0], results[names[0]])
    console.print(comparison_table(signal, results))
    console.print(f"outputs: {run_dir}")
    return results
