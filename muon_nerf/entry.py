"""The console scripts' entry points: they load each command's module (which imports torch, a
few seconds) under a Ctrl-C guard, so an interrupt during start-up is one line too, not a
traceback. Nothing else of the package is imported here."""

from __future__ import annotations

import importlib
import sys


def _start(module: str) -> None:
    try:
        entrypoint = importlib.import_module(module).entrypoint
    except KeyboardInterrupt:
        print("interrupted: while starting; nothing was written", file=sys.stderr)
        raise SystemExit(130) from None
    entrypoint()


def muon_fit() -> None:
    _start("muon_nerf.signals.cli")


def muon_sweep() -> None:
    _start("muon_nerf.sweep.cli")


def muon_sdf() -> None:
    _start("muon_nerf.sdf.entry")


def muon_data() -> None:
    _start("muon_nerf.runs.fetch")
