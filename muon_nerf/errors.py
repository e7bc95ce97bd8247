"""User-facing errors: raised early, printed as one line by every command, exit status 2."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class InputError(ValueError):
    """Bad input a user can fix (missing file, wrong format, wrong flag value, NaN loss…)."""


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
