"""Running a sweep on Ray Tune and writing its outputs.

The same code runs on one machine (a local Ray runtime, one trial per core) and on a cluster
(``--address``): each trial is a Tune trial calling ``trial.run_trial``, which calls the CLI's
``fit_one``. Outputs appear atomically under ``outputs/<task>/<run>/`` like every other run.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import math
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import ray
from ray import tune
from ray.tune.logger import JsonLoggerCallback
from ray.tune.result import AUTO_RESULT_KEYS
from ray.tune.schedulers import ASHAScheduler
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from muon_nerf.fit.errors import STOP_SIGNALS, InputError, Terminated
from muon_nerf.fit.hardware import hardware
from muon_nerf.fit.memory import check_fit_memory
from muon_nerf.fit.signal import Signal
from muon_nerf.runs.io import check_run_dir, default_run_name, staged_dir, write_json
from muon_nerf.runs.outputs import config_dict
from muon_nerf.runs.presets import save_preset
from muon_nerf.runs.run import check_optimizers
from muon_nerf.runs.task import TaskConfig
from muon_nerf.sweep.config import SweepConfig, trial_points
from muon_nerf.sweep.report import TrialRecord, best_trials, heatmap, is_better, trial_table, write_csv
from muon_nerf.sweep.trial import Mode, metric_mode, run_trial, with_point_lrs
from muon_nerf.tasks import TASKS


@dataclass
class SweepResult:
    records: list[TrialRecord]
    best: dict[str, TrialRecord]
    run_dir: Path
    primary: str
    mode: Mode
    tune_seconds: float
    """Wall time of the trials (Ray startup excluded)."""
    concurrency: int
    """The most trials that could run at once."""


def _trainable(config: dict, base: TaskConfig, signal: Signal, threads: int) -> None:
    """A Tune function trainable: every evaluation is reported, then the final result."""
    final = run_trial(config["point"], base, signal, threads, report=tune.report)
    tune.report(final)


class _ProgressCallback(tune.Callback):
    """A rich progress bar in the driver: trials finished, running, diverged, errored and the best
    so far."""

    def __init__(self, progress: Progress, task_id: int, primary: str, mode: Mode) -> None:
        self.progress, self.task_id, self.primary, self.mode = progress, task_id, primary, mode
        self.running: set[str] = set()
        self.diverged = self.errors = 0
        self.best: dict[str, float] = {}

    def __getstate__(self) -> dict:
        # Tune pickles its callbacks with the experiment state; a live progress bar cannot be.
        return {**self.__dict__, "progress": None}

    def _update(self, advance: int = 0) -> None:
        if self.progress is None:
            return
        best = "  ".join(f"{k} {v:.2f}" for k, v in sorted(self.best.items()))
        status = (
            f"{len(self.running)} running, {self.diverged} diverged, {self.errors} errors  "
            f"best {self.primary}: {best or '—'}"
        )
        self.progress.update(self.task_id, advance=advance, status=status)

    def on_trial_start(self, iteration, trials, trial, **info) -> None:  # noqa: ANN001 - Tune hook
        self.running.add(trial.trial_id)
        self._update()

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:  # noqa: ANN001
        value, opt = result.get(self.primary), trial.config["point"]["optimizer"]
        if result.get("status") == "diverged":
            self.diverged += 1
        elif value is not None and math.isfinite(value):
            if opt not in self.best or is_better(value, self.best[opt], self.mode):
                self.best[opt] = value
        self._update()

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:  # noqa: ANN001
        self.running.discard(trial.trial_id)
        self._update(advance=1)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:  # noqa: ANN001
        self.running.discard(trial.trial_id)
        self.errors += 1
        self._update(advance=1)


def _record(point: dict, metrics: dict, error: Exception | None, primary: str) -> TrialRecord:
    """What one Tune result means: an exception is ``error``; a last report still ``running``
    means the scheduler stopped the trial early."""
    status = "error" if error is not None else metrics.get("status", "error")
    if status == "running":
        status = "stopped"
    numbers = {
        k: float(v)
        for k, v in metrics.items()
        if k not in AUTO_RESULT_KEYS
        and k not in ("step", "seconds", "wall_seconds", "done")
        and isinstance(v, (int, float))
        and not isinstance(v, bool)
    }
    value = numbers.pop(primary, math.nan)
    message = metrics.get("error", "")
    if error is not None:
        text = str(error).strip()
        message = text.splitlines()[-1] if text else type(error).__name__
    return TrialRecord(
        index=point["index"],
        optimizer=point["optimizer"],
        lr=point["lr"],
        muon_lr=point["muon_lr"],
        status=status,
        value=value,
        step=int(metrics.get("step", 0)),
        metrics=numbers,
        error=message,
    )


QUIET_TUNE = {
    "RAY_AIR_NEW_OUTPUT": "0",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "TUNE_DISABLE_SIGINT_HANDLER": "1",
}
"""Tune's new console output prints a banner even at ``verbose=0`` (the legacy one is silent), and
its TensorBoard logger warns about the -inf of diverged trials: only its JSON logger is kept.
Tune's own Ctrl-C handler ends the run "successfully" with unstarted trials; without it Ctrl-C
is a ``KeyboardInterrupt`` like everywhere else (one line, nothing written)."""


@contextmanager
def _quiet_tune() -> Iterator[None]:
    previous = {k: os.environ.get(k) for k in QUIET_TUNE}
    os.environ.update(QUIET_TUNE)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def check_address(address: str, timeout: float = 5.0) -> None:
    """Refuse (one line, in seconds) a ``host:port`` nobody listens on: Ray itself retries such
    an address for minutes before it fails with a traceback. ``auto`` and ``ray://`` addresses
    are left to Ray."""
    if address == "auto" or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"--address must be HOST:PORT (or ray://HOST:PORT, or auto), got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as err:
        raise InputError(
            f"--address {address}: nothing answers there ({err.strerror or err}); "
            "start the cluster's head first (ray start --head)"
        ) from None


def _start_ray(cfg: SweepConfig) -> bool:
    """Attach to ``--address`` or start a local runtime; True when this call started it."""
    if ray.is_initialized():
        return False
    stops = [getattr(signal, name) for name in STOP_SIGNALS if hasattr(signal, name)]
    ours = {signum: signal.getsignal(signum) for signum in stops}
    try:
        try:
            _init_ray(cfg)
        except SystemExit as stop:  # the SIGTERM handler ray.init installs for its own start-up
            if stop.code in stops:
                raise Terminated() from None
            raise
    except KeyboardInterrupt:  # a stop (Ctrl-C, SIGTERM, SIGHUP) in the middle of ray.init
        _abandon_ray_start()
        raise
    finally:  # ours again (SIGTERM, SIGHUP): Ray's exit at once (its core worker's also dumps a stack)
        for signum, handler in ours.items():
            if handler is not None:
                signal.signal(signum, handler)
    return True


def _abandon_ray_start() -> None:
    """Undo a ``ray.init`` a stop cut short. Its core worker's fatal-signal handler, when the stop
    was a SIGTERM that reached it, has armed an alarm that aborts the process a few seconds later,
    in the middle of the cleanup this stop starts: cancel it. Then take the half-started runtime
    down here, while the interpreter is whole, not in Ray's exit handler."""
    if hasattr(signal, "alarm"):
        signal.alarm(0)
    ray.shutdown()


def _init_ray(cfg: SweepConfig) -> None:
    if cfg.address:
        try:
            ray.init(address=cfg.address, logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as err:
            cause = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise InputError(
                f"cannot attach to the Ray cluster at --address {cfg.address}: {cause} "
                "(is `ray start --head` running there? a cluster with token auth also needs "
                "RAY_AUTH_MODE=token and its token in the environment)"
            ) from None
    else:
        start_local_ray(cfg.num_cpus)


RAY_START_TRIES = 3
"""Ray gives its local node a fixed 30 s to register; a loaded machine can miss that window."""


def start_local_ray(num_cpus: int | None) -> None:
    """Start a local Ray runtime, retrying when its node misses Ray's start-up window (a bare
    ``Exception`` from ``ray.init``); after ``RAY_START_TRIES`` misses, one line naming the cause.
    Any other start-up error is Ray's own and passes through."""
    for _ in range(RAY_START_TRIES):
        try:
            ray.init(
                num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False
            )
            return
        except Exception as err:  # noqa: BLE001 - Ray raises a bare Exception for this one case
            if "timed out during startup" not in str(err):
                raise
            ray.shutdown()
    raise InputError(
        f"Ray's local node did not start within its 30 s window in {RAY_START_TRIES} tries: the "
        "machine is too loaded; retry when it is quieter, or attach to a running cluster with --address"
    )


def tune_trials(
    cfg: SweepConfig, base: TaskConfig, signal: Signal, points: list[dict], console: Console
) -> tuple[list[TrialRecord], float, int]:
    """Run every point as a Tune trial. Returns (records, wall seconds, concurrency)."""
    primary, mode = signal.primary_metric, metric_mode(signal)
    started = _start_ray(cfg)
    storage = Path(tempfile.mkdtemp(prefix="muon-sweep-ray-"))
    try:
        cpus = ray.cluster_resources().get("CPU", 1)
        slots = max(1, int(cpus // cfg.cpus_per_trial))
        concurrency = min(slots, cfg.max_concurrent or slots, len(points))
        threads = int(max(1, cfg.cpus_per_trial))
        trainable = tune.with_resources(
            tune.with_parameters(_trainable, base=base, signal=signal, threads=threads),
            {"cpu": cfg.cpus_per_trial, "gpu": cfg.gpus_per_trial},
        )
        scheduler = None
        if cfg.asha:
            steps = base.fit.steps
            scheduler = ASHAScheduler(
                time_attr="step",
                max_t=steps,
                grace_period=cfg.grace_steps or max(min(base.fit.eval_every, steps), steps // 4),
                reduction_factor=cfg.reduction_factor,
            )
        with Progress(
            TextColumn("[bold]sweep"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task_id = progress.add_task("sweep", total=len(points), status="starting Ray trials")
            tuner = tune.Tuner(
                trainable,
                param_space={"point": tune.grid_search(points)},
                tune_config=tune.TuneConfig(
                    metric=primary,
                    mode=mode,
                    scheduler=scheduler,
                    max_concurrent_trials=cfg.max_concurrent,
                    reuse_actors=True,
                ),
                run_config=tune.RunConfig(
                    name="sweep",
                    storage_path=str(storage),
                    verbose=0,
                    callbacks=[_ProgressCallback(progress, task_id, primary, mode), JsonLoggerCallback()],
                    failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
                ),
            )
            t0 = time.perf_counter()
            with _quiet_tune():
                grid = tuner.fit()
            seconds = time.perf_counter() - t0
        records = [_record(r.config["point"], r.metrics or {}, r.error, primary) for r in grid]
    finally:  # Ray first: its trials may still write into the storage folder until it is down
        if started:
            ray.shutdown()
        shutil.rmtree(storage, ignore_errors=True)
        # Tune's threads, stopped by a signal, may still write a last experiment state into it
        atexit.register(shutil.rmtree, storage, ignore_errors=True)
    return sorted(records, key=lambda r: r.index), seconds, concurrency


def run_sweep(task: str, base: TaskConfig, cfg: SweepConfig, console: Console | None = None) -> SweepResult:
    """Check the flags, load the signal once, run the trials, write table, presets and heat map."""
    console = console or Console()
    base.check(device=not cfg.address)  # on a cluster the trials' nodes, not this one, need the device
    cfg.check()
    if base.fit.device.startswith("cuda") and cfg.gpus_per_trial <= 0:
        raise ValueError("--device cuda needs --gpus-per-trial > 0 so Ray gives each trial a GPU")
    signal = base.signal()
    points = trial_points(cfg)
    primary, mode = signal.primary_metric, metric_mode(signal)
    run_dir = base.output_dir / signal.task / (base.run_name or default_run_name("sweep"))
    check_run_dir(run_dir, base.overwrite)
    if not cfg.address:  # a trial's field must fit here (on a cluster: on its node, unknown here)
        check_fit_memory(base.field, signal, base.fit.batch_size, base.fit.device)
    check_optimizers(signal, base, cfg.optimizers)  # here, not once per trial; a real field copy
    if cfg.address:
        check_address(cfg.address)
    console.print(f"[bold]{signal.task}[/]: {signal.describe()}")
    console.print(f"sweep: {len(points)} trials of {base.fit.steps} steps, {primary} ({mode})")
    try:
        records, seconds, concurrency = tune_trials(cfg, base, signal, points, console)
    except KeyboardInterrupt as err:
        raise type(err)("the sweep stopped before its trials finished: nothing was written") from None
    best = best_trials(records, mode)
    net = base.field
    title = f"{task} sweep: {len(records)} trials, {net.arch} {net.num_layers}×{net.width}"
    with staged_dir(run_dir, base.overwrite) as stage:
        write_csv(stage / "trials.csv", records, primary)
        heatmap(records, primary, mode, stage / "heatmap.png", title)
        for name, rec in best.items():
            save_preset(
                stage / f"preset-{name}.json",
                task,
                with_point_lrs(base, rec.optimizer, rec.lr, rec.muon_lr),
                name,
                source={"sweep": str(run_dir), "trial": rec.index, primary: rec.value, "mode": mode},
            )
        write_json(
            stage / "sweep.json",
            {
                "task": task,
                "signal": signal.describe(),
                "primary_metric": primary,
                "mode": mode,
                "sweep": dataclasses.asdict(cfg),
                "config": config_dict(base),
                "hardware": hardware(),
                "tune_seconds": seconds,
                "concurrency": concurrency,
                "trials": [dataclasses.asdict(r) for r in records],
                "best": {k: dataclasses.asdict(v) for k, v in best.items()},
            },
        )
    result = SweepResult(records, best, run_dir, primary, mode, seconds, concurrency)
    console.print(trial_table(records, primary, mode, title))
    console.print(closing_note(task, result))
    return result


def closing_note(task: str, result: SweepResult) -> str:
    """Best config per optimizer with its metric, the wall time and how to reuse the presets."""
    count = {s: sum(r.status == s for r in result.records) for s in ("diverged", "error", "stopped")}
    lines = [
        f"{len(result.records)} trials ({count['diverged']} diverged, {count['error']} errors, "
        f"{count['stopped']} stopped early) in "
        f"{result.tune_seconds:.1f} s wall with up to {result.concurrency} concurrent trial(s)"
    ]
    for name, rec in sorted(result.best.items()):
        lines.append(f"best {name}: {rec.flags()}  →  {result.primary} {rec.value:.3f}")
        lines.append(f"  {TASKS[task].command} --preset {result.run_dir / f'preset-{name}.json'}")
    if not result.best:
        lines.append("no trial finished: lower the learning-rate ranges")
    lines.append(f"outputs: {result.run_dir} (trials.csv, heatmap.png, sweep.json, preset-*.json)")
    return "\n".join(lines)
