"""What every command shares: how an error ends a command.

- :class:`~audit.errors.AuditError`: one ``audit: error: ...`` line on stderr and its documented exit code
  (2 usage, 3 could not run);
- any other exception: a bug in audit. Its traceback goes to stderr, then one last ``audit: internal error: ...``
  line asking for a report, and the exit code is 4 (:data:`~audit.errors.EXIT_BUG`), never 1, which means
  "the audit found a problem";
- Ctrl-C: one ``audit: interrupted`` line and exit 130;
- Typer/Click's own exits and usage errors (and ``SystemExit``) pass through untouched.
"""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import typer
import typer.exceptions

from audit.errors import EXIT_BUG, EXIT_INTERRUPTED, AuditError

F = TypeVar("F", bound=Callable[..., Any])

# Exceptions that are the CLI framework's control flow, not errors of ours: typer.Exit / typer.Abort and
# every Click exception (typer's vendored Click derives them all from TyperException; a plain Click, when
# installed, has its own classes).
_PASS_THROUGH: tuple[type[BaseException], ...] = (typer.Exit, typer.Abort, typer.exceptions.TyperException)
try:  # pragma: no cover - depends on whether a standalone click is installed
    import click

    _PASS_THROUGH += (click.exceptions.Exit, click.exceptions.Abort, click.exceptions.ClickException)
except ImportError:  # pragma: no cover
    pass

BUG_HINT = "this is a bug in audit; please report it with the command line, the traceback above and `audit --version`"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def fail(err: AuditError) -> typer.Exit:
    """Print ``audit: error: <message>`` on one line to stderr and return the Exit to raise."""
    print(f"audit: error: {_one_line(str(err))}", file=sys.stderr)
    return typer.Exit(code=err.exit_code)


def internal_error(err: BaseException) -> typer.Exit:
    """Print the traceback of ``err`` and one ``audit: internal error: <Type>: <message>; ...`` line to stderr;
    return the Exit (code 4) to raise."""
    traceback.print_exception(type(err), err, err.__traceback__, file=sys.stderr)
    message = _one_line(str(err))
    what = f"{type(err).__name__}: {message}" if message else type(err).__name__
    print(f"audit: internal error: {what}; {BUG_HINT}", file=sys.stderr, flush=True)
    return typer.Exit(code=EXIT_BUG)


def guarded(fn: F) -> F:
    """Wrap a command body: AuditError -> one stderr line and its exit code; any other exception -> its
    traceback, one ``audit: internal error`` line and exit 4; Ctrl-C -> one line and exit 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except _PASS_THROUGH:
            raise
        except AuditError as err:
            raise fail(err) from None
        except KeyboardInterrupt:
            print("audit: interrupted", file=sys.stderr, flush=True)
            raise typer.Exit(code=EXIT_INTERRUPTED) from None
        except Exception as err:  # anything else is a bug in audit
            raise internal_error(err) from None

    return wrapper  # type: ignore[return-value]
