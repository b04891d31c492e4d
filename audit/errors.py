"""One exception family. Each message says what is wrong and what to do, in one line.

The CLI catches :class:`AuditError` only, prints ``str(err)`` to stderr and exits with ``err.exit_code``.
Anything else is a bug and keeps its traceback.

Exit codes (documented in the README):

- 0: the verdict is below ``--fail-on``
- 1: the verdict is at or above ``--fail-on``
- 2: usage error (bad option values, bad arguments to the engine)
- 3: could not run (the model or the data could not be loaded or do not fit together)
"""

from __future__ import annotations

__all__ = [
    "EXIT_OK",
    "EXIT_GATE",
    "EXIT_USAGE",
    "EXIT_CANNOT_RUN",
    "AuditError",
    "UsageError",
    "DataError",
    "ModelLoadError",
    "AttributionError",
    "ReportError",
]

EXIT_OK = 0
EXIT_GATE = 1
EXIT_USAGE = 2
EXIT_CANNOT_RUN = 3


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
