"""Running a task: build the field and optimizer, fit, write outputs; or compare Adam with Muon.

Every front end (``muon-fit``, ``muon-sdf fit``, ``scripts/fit_*.py``, sweeps, benchmarks) goes
through ``fit_one``/``execute``, so outputs and tables look the same everywhere.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from rich.console import Console

from muon_nerf.fit.errors import DivergedError
from muon_nerf.fit.loop import FitResult, fit
from muon_nerf.fit.memory import check_fit_memory
from muon_nerf.fit.signal import Signal
from muon_nerf.optim import OptimizerName, format_split
from muon_nerf.runs.checkpoint import make_field
from muon_nerf.runs.io import check_run_dir, default_run_name, staged_dir
from muon_nerf.runs.outputs import write_comparison, write_run
from muon_nerf.runs.report import comparison_table
from muon_nerf.runs.state import Progress
from muon_nerf.runs.task import TaskConfig

OPTIMIZERS: tuple[OptimizerName, ...] = ("adam", "muon")


def fit_one(
    signal: Signal,
    cfg: TaskConfig,
    optimizer: OptimizerName,
    on_eval: Callable[[dict[str, float]], None] | None = None,
    progress: Progress | None = None,
) -> FitResult:
    """One fit of ``signal`` with ``optimizer``; the field is folded as its config says for it.
    With ``progress``, the fit is checkpointed there and continues from its last checkpoint, and
    a fit it already finished is returned as kept."""
    field_cfg = cfg.field.under(optimizer)
    field_ = make_field(field_cfg, signal.in_dim, signal.out_dim, cfg.fit.seed, cfg.fit.device)
    if progress is not None and (kept := progress.finished(optimizer, field_)) is not None:
        return kept
    opt = cfg.optim.build(field_, optimizer)
    if cfg.print_split:
        Console().print(
            f"[bold]{optimizer}[/] parameter split\n"
            f"{format_split(field_, optimizer, cfg.optim.muon_first_layer)}"
        )
    save, start = None, None
    if progress is not None:
        start = progress.checkpoint(optimizer, field_)
        save = functools.partial(progress.save_checkpoint, optimizer)
    label = f"{signal.task}/{optimizer}"
    result = fit(signal, field_, opt, cfg.fit, label=label, on_eval=on_eval, checkpoint=save, start=start)
    result.extra["num_params"] = sum(p.numel() for p in field_.parameters())
    result.extra["omega_folded"] = field_cfg.fold_frequency() is not None
    if progress is not None:
        progress.save_finished(optimizer, result)
    return result


def check_optimizers(signal: Signal, cfg: TaskConfig, names: tuple[OptimizerName, ...]) -> None:
    """Build each optimizer's param groups on a CPU copy of the field before any fit, so a refusal
    (Muon with no hidden matrix) comes first, not after the Adam half of ``--compare``."""
    for name in names:
        field_ = make_field(cfg.field.under(name), signal.in_dim, signal.out_dim, cfg.fit.seed, "cpu")
        cfg.optim.param_groups(field_, name)


def _kept_message(progress: Progress, command: str) -> str:
    """Where an unfinished run was kept, and how to finish it."""
    parts = []
    for name in progress.optimizers:
        if progress.finished_path(name).is_file():
            parts.append(f"{name} finished")
        elif (step := progress.checkpoint_step(name)) is not None:
            parts.append(f"{name} checkpointed at step {step}")
    folder = progress.folder
    return f"kept {folder} ({', '.join(parts)}); finish it with: {command} --resume {folder}"


def _leave(progress: Progress, command: str) -> str:
    """Keep the unfinished run when it holds progress (released, for ``--resume``), else remove
    it; say which."""
    if progress.has_progress():
        progress.release()
        return _kept_message(progress, command)
    progress.discard()
    return "nothing was kept"


def execute(
    cfg: TaskConfig,
    signal: Signal | None = None,
    console: Console | None = None,
    progress: Progress | None = None,
    command: str = "muon-fit",
) -> dict[str, FitResult]:
    """Fit (or compare) and write ``outputs/<task>/<run>/`` atomically. Returns the results.

    While it fits, the run lives in ``<run>.incomplete/`` (checkpoints, finished halves); an
    interrupt or failure keeps that folder when it holds progress and says how to finish it
    (``command --resume FOLDER``, which passes ``progress``); a divergence with nothing finished
    leaves nothing behind.
    """
    console = console or Console()
    cfg.check()
    try:
        if progress is not None:
            progress.claim()  # its lock, for the run's life: a second --resume of it stops here
        return _execute(cfg, signal, console, progress, command)
    finally:
        if progress is not None:
            progress.release()  # a no-op when the run released or discarded it


def _execute(
    cfg: TaskConfig, signal: Signal | None, console: Console, progress: Progress | None, command: str
) -> dict[str, FitResult]:
    signal = (signal or cfg.signal()).to(cfg.fit.device)
    names = OPTIMIZERS if cfg.compare else (cfg.optim.optimizer,)
    if progress is None:
        run_dir = cfg.output_dir / signal.task / (cfg.run_name or default_run_name("-".join(names)))
    else:
        run_dir = progress.final
    check_run_dir(run_dir, cfg.overwrite)  # before any work: never lose a fit to an unwritable folder
    # the estimate first: check_optimizers builds a real (CPU) copy of the field
    check_fit_memory(cfg.field, signal, cfg.fit.batch_size, cfg.fit.device)
    check_optimizers(signal, cfg, names)
    resumed = progress is not None
    if progress is None:
        progress = Progress.create(run_dir, signal.task, cfg, names, cfg.overwrite)
    try:
        if resumed:
            console.print(f"resuming {progress.folder}")
        console.print(f"[bold]{signal.task}[/]: {signal.describe()}")
        console.print("learning rates: " + "; ".join(cfg.optim.describe_lrs(name) for name in names))
        results = {name: fit_one(signal, cfg, name, progress=progress) for name in names}
        with staged_dir(run_dir, cfg.overwrite) as stage:
            if cfg.compare:
                write_comparison(stage, signal, cfg, results)
            else:
                write_run(stage, signal, cfg, names[0], results[names[0]])
            progress.mark_written()
    except DivergedError as err:
        for name in names:  # a diverged fit's checkpoints are not worth resuming
            progress.checkpoint_path(name).unlink(missing_ok=True)
        if not progress.started():
            progress.discard()
            raise
        progress.release()
        raise DivergedError(f"{err}; {_kept_message(progress, command)}") from None
    except KeyboardInterrupt as err:
        if not progress.has_progress():
            progress.discard()
            raise type(err)("no checkpoint was reached: nothing was kept") from None
        progress.release()
        raise type(err)(_kept_message(progress, command)) from None
    except OSError as err:  # disk full, a closed stdout…: say what was kept
        what = "stdout was closed by its reader (broken pipe)" if isinstance(err, BrokenPipeError) else err
        raise type(err)(f"{what}; {_leave(progress, command)}") from None
    except BaseException:
        _leave(progress, command)
        raise
    progress.discard()
    try:
        console.print(comparison_table(signal, results))
        console.print(f"outputs: {run_dir}")
    except BrokenPipeError:
        raise BrokenPipeError(
            f"stdout was closed by its reader (broken pipe); the run is complete: {run_dir}"
        ) from None
    return results
