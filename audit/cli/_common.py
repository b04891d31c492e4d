"""What every command shares: AuditError -> one line on stderr and its documented exit code."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from audit.errors import AuditError

F = TypeVar("F", bound=Callable[..., Any])


def fail(err: AuditError) -> typer.Exit:
    """Print ``audit: error: <message>`` on one line to stderr and return the Exit to raise."""
    message = " ".join(str(err).split())  # one line, whatever the message held
    print(f"audit: error: {message}", file=sys.stderr)
    return typer.Exit(code=err.exit_code)


def guarded(fn: F) -> F:
    """Run a command body; AuditError becomes one stderr line and its exit code. Other errors keep
    their traceback (they are bugs)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AuditError as err:
            raise fail(err) from None

    return wrapper  # type: ignore[return-value]
