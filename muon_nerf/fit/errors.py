"""User-facing errors: raised early, printed as one line by every command, exit status 2."""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection
from typing import TypeVar

T = TypeVar("T")


class InputError(ValueError):
    """Bad input a user can fix (missing file, wrong format, wrong flag value, NaN loss…)."""


class DivergedError(InputError):
    """The fit diverged (non-finite loss, or a final loss far above the initial one): a lower
    learning rate fixes it. Sweeps record such trials as ``diverged``."""


def run_cli(main: Callable[[], T]) -> T:
    """Run a command's body; turn ``InputError``/``ValueError``/``FileNotFoundError`` into one line."""
    try:
        return main()
    except (InputError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("interrupted: nothing was written for the unfinished run", file=sys.stderr)
        raise SystemExit(130) from None


def dispatch_task(
    prog: str, tasks: Collection[str], main: Callable[[str, list[str]], object], usage: str = ""
) -> None:
    """``prog <task> [FLAGS]``: run ``main(task, flags)``, or print usage / a one-line error (exit 2)."""
    argv = sys.argv[1:]
    if argv and argv[0] in tasks:
        main(argv[0], argv[1:])
        return
    if argv and argv[0] in ("-h", "--help"):
        print(f"usage: {prog} {{{','.join(tasks)}}} {usage}[FLAGS]   ({prog} <task> --help for flags)")
        return
    got = argv[0] if argv else "nothing"
    print(f"error: first argument must be a task: {', '.join(tasks)}; got {got}", file=sys.stderr)
    raise SystemExit(2)
