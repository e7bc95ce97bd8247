"""User-facing errors: raised early, printed as one line by every command, exit status 2."""

from __future__ import annotations

import atexit
import errno
import os
import signal
import sys
import threading
from collections.abc import Callable, Collection
from typing import TypeVar

T = TypeVar("T")


class InputError(ValueError):
    """Bad input a user can fix (missing file, wrong format, wrong flag value, NaN loss…)."""


class DivergedError(InputError):
    """The fit diverged (non-finite loss, or a final loss far above the initial one): a lower
    learning rate fixes it. Sweeps record such trials as ``diverged``."""


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the process is (as Ctrl-C raises ``KeyboardInterrupt``), so
    that staging folders and temporary files are cleaned up on the way out."""


_TERMINATED: list[int] = []
"""The signals that arrived (SIGTERM, SIGHUP): libraries (Ray Tune) may re-raise one as a plain
``KeyboardInterrupt``."""

_STOPPING: list[bool] = []
"""Set once the first interrupt was raised: the cleanup it started must not be cut short."""

_RAISED: list[type[KeyboardInterrupt]] = []
"""The stop a handler raised, until the command ends: code that swallows it (an ``except
BaseException`` that carries on) would leave the fit running with every later signal ignored,
as if a cleanup were under way; ``raise_swallowed_stop`` raises it again."""

STOP_SIGNALS = ("SIGTERM", "SIGHUP")
"""Signals that stop a command as Ctrl-C does (SIGHUP: its terminal or ssh session went away)."""


def _terminate(signum: int, frame: object) -> None:
    if _STOPPING:
        return  # a second signal while the first one's cleanup runs: finish that cleanup first
    _STOPPING.append(True)
    _TERMINATED.append(signum)
    _RAISED.append(Terminated)
    raise Terminated()


def _interrupt(signum: int, frame: object) -> None:
    if _STOPPING:
        return
    _STOPPING.append(True)
    _RAISED.append(KeyboardInterrupt)
    raise KeyboardInterrupt()


def raise_swallowed_stop() -> None:
    """Raise again a stop signal's exception that never reached ``run_cli``: called where only
    work goes on (between two fit steps), never inside a cleanup, so a stop ends the fit even
    when a library caught the first one."""
    if _RAISED:
        raise _RAISED[0]()


def _ignore_stop_signals() -> None:
    """At exit the command is over: ignore stop signals (Python resets its handlers to the
    default as it finalizes, so a late second SIGTERM would kill the exiting process with a
    status no one expects, and one during atexit would print a traceback)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for name in ("SIGINT", *STOP_SIGNALS):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null: its reader went away (``… | head -1``), and the flush at exit
    would fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _broken_pipe(console: object) -> None:
    """rich's handler of a closed stdout exits 1 without a word; raise instead, so the command
    cleans up and says so (``run_cli``)."""
    _quiet_stdout()
    raise BrokenPipeError(errno.EPIPE, "Broken pipe")


def _exit_code(err: KeyboardInterrupt) -> tuple[str, int]:
    if not (isinstance(err, Terminated) or _TERMINATED):
        return "interrupted", 130
    signum = _TERMINATED[0] if _TERMINATED else signal.SIGTERM
    word = "terminated" if signum == signal.SIGTERM else f"stopped by {signal.Signals(signum).name}"
    return word, 128 + signum


def run_cli(main: Callable[[], T]) -> T:
    """Run a command's body; turn ``InputError``/``ValueError``/``OSError`` into one line (exit
    2), Ctrl-C, SIGTERM and SIGHUP into one line (exit 130 / 143 / 129) after the body's cleanup,
    a closed stdout (``… | head -1``) into one line (exit 141). A second signal during that
    cleanup is ignored, so what the line says was kept was kept. Every command starts here, so
    the process-wide settings a command wants (signal handling, ``flush_denormals``) are made
    here, never on import."""
    from rich.console import Console

    from muon_nerf.fit.device import flush_denormals  # torch: loaded when a command runs

    flush_denormals()
    _STOPPING.clear()  # a fresh command (tests run several in one process)
    _TERMINATED.clear()
    _RAISED.clear()
    Console.on_broken_pipe = _broken_pipe
    atexit.unregister(_ignore_stop_signals)
    atexit.register(_ignore_stop_signals)  # registered last: it runs before the other exit handlers
    if threading.current_thread() is threading.main_thread():
        for name in STOP_SIGNALS:
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), _terminate)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not where SIGINT is ignored
            signal.signal(signal.SIGINT, _interrupt)
    try:
        return main()
    except BrokenPipeError as err:
        _STOPPING.append(True)
        _quiet_stdout()
        text = str(err) if err.errno is None else "stdout was closed by its reader (broken pipe): stopped"
        print(f"error: {text}", file=sys.stderr)
        raise SystemExit(141) from None
    except (InputError, ValueError, OSError) as err:  # OSError: I/O errors, with cause and path
        _STOPPING.append(True)
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt as err:
        _STOPPING.append(True)
        what, code = _exit_code(err)
        print(f"{what}: {str(err) or 'stopped before any file was written'}", file=sys.stderr)
        raise SystemExit(code) from None
    finally:
        _RAISED.clear()  # the command is over: a fit called after it (Python API, tests) is not stopped


def dispatch_task(
    prog: str,
    tasks: Collection[str],
    main: Callable[[str, list[str]], object],
    usage: str = "",
    epilog: str = "",
) -> None:
    """``prog <task> [FLAGS]``: run ``main(task, flags)``, or print usage (and ``epilog``) / a
    one-line error (exit 2)."""
    argv = sys.argv[1:]
    if argv and argv[0] in tasks:
        main(argv[0], argv[1:])
        return
    if argv and argv[0] in ("-h", "--help"):
        print(f"usage: {prog} {{{','.join(tasks)}}} {usage}[FLAGS]   ({prog} <task> --help for flags)")
        if epilog:
            print(epilog)
        return
    got = argv[0] if argv else "nothing"
    print(f"error: first argument must be a task: {', '.join(tasks)}; got {got}", file=sys.stderr)
    raise SystemExit(2)
