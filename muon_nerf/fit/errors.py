"""User-facing errors: raised early, printed as one line by every command, exit status 2."""

from __future__ import annotations

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
    """SIGTERM, raised where the process is (as Ctrl-C raises ``KeyboardInterrupt``), so that
    staging folders and temporary files are cleaned up on the way out."""


_TERMINATED: list[bool] = []
"""Set once SIGTERM arrived: libraries (Ray Tune) may re-raise it as a plain ``KeyboardInterrupt``."""


def _terminate(signum: int, frame: object) -> None:
    _TERMINATED.append(True)
    raise Terminated()


def run_cli(main: Callable[[], T]) -> T:
    """Run a command's body; turn ``InputError``/``ValueError``/``OSError`` into one line (exit
    2), Ctrl-C and SIGTERM into one line (exit 130 / 143) after the body's cleanup. Every
    command starts here, so the process-wide settings a command wants (SIGTERM handling,
    ``flush_denormals``) are made here, never on import."""
    from muon_nerf.fit.device import flush_denormals  # torch: loaded when a command runs

    flush_denormals()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return main()
    except (InputError, ValueError, OSError) as err:  # OSError: I/O errors, with cause and path
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt as err:
        term = isinstance(err, Terminated) or bool(_TERMINATED)
        what = "terminated" if term else "interrupted"
        print(f"{what}: {str(err) or 'no unfinished file was left'}", file=sys.stderr)
        raise SystemExit(143 if term else 130) from None


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
