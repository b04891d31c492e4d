"""One exception family. Each message says what is wrong and what to do, in one line.

The CLI (:func:`audit.cli._common.guarded`) prints ``str(err)`` of an :class:`AuditError` as one line on stderr
and exits with ``err.exit_code``. Any other exception is a bug in audit: it keeps its traceback, is followed by
one ``audit: internal error: ...`` line asking for a report, and exits with :data:`EXIT_BUG`, so that a crash
never reads as a failed audit (exit 1).

Exit codes (documented in the README):

- 0: the verdict is below ``--fail-on``
- 1: the verdict is at or above ``--fail-on``
- 2: usage error (bad option values, bad arguments to the engine)
- 3: could not run (the model or the data could not be loaded or do not fit together)
- 4: internal error, a bug in audit (the traceback is printed; please report it)
- 130: interrupted (Ctrl-C)
"""

from __future__ import annotations

__all__ = [
    "EXIT_OK",
    "EXIT_GATE",
    "EXIT_USAGE",
    "EXIT_CANNOT_RUN",
    "EXIT_BUG",
    "EXIT_INTERRUPTED",
    "AuditError",
    "UsageError",
    "DataError",
    "ModelLoadError",
    "AttributionError",
    "ReportError",
    "ExecutorError",
]

EXIT_OK = 0
EXIT_GATE = 1
EXIT_USAGE = 2
EXIT_CANNOT_RUN = 3
EXIT_BUG = 4
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C


class AuditError(Exception):
    """Base class. ``str(err)`` is the one line a person reads."""

    exit_code: int = EXIT_CANNOT_RUN


class UsageError(AuditError, ValueError):
    """An option or argument has a value that cannot work."""

    exit_code = EXIT_USAGE


class AttributionError(UsageError):
    """Bad arguments to the IG engine (steps, method, baseline shape, target index)."""


class DataError(AuditError):
    """The data file is missing, malformed or does not fit the model."""

    exit_code = EXIT_CANNOT_RUN


class ModelLoadError(AuditError):
    """The checkpoint cannot be loaded safely or is not a model we can run."""

    exit_code = EXIT_CANNOT_RUN


class ReportError(AuditError):
    """A saved run cannot be read or rendered."""

    exit_code = EXIT_CANNOT_RUN


class ExecutorError(AuditError):
    """The executor cannot run: Ray is not installed, the cluster cannot be reached or lacks the resources asked."""

    exit_code = EXIT_CANNOT_RUN
