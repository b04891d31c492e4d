"""Streaming SHA-256 of files, for provenance (model and data hashes in audit.json)."""

from __future__ import annotations

import hashlib
import os

from audit.errors import AuditError, UsageError

__all__ = ["sha256_file"]


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hash a file's bytes with SHA-256, reading ``chunk`` bytes at a time.

    Memory stays at one chunk whatever the file size.

    Parameters
    ----------
    path : str or PathLike
        The file to hash.
    chunk : int, default 1 MiB
        Bytes read per step; must be at least 1.

    Returns
    -------
    str
        64 lowercase hex digits.

    Raises
    ------
    UsageError
        ``chunk`` is not a positive integer.
    AuditError
        The file cannot be read (missing, a directory, no permission).
    """
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise UsageError(f"sha256_file chunk must be a positive integer, got {chunk!r}; the default is 1 MiB")
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
    except OSError as e:
        reason = e.strerror or type(e).__name__
        where = os.fspath(path)
        raise AuditError(f"cannot read '{where}' to hash it ({reason}); check the path and permissions") from e
    return digest.hexdigest()
