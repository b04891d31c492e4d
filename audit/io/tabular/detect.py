"""What a data file is and how to read it as text: the checks on its path, its format and compression (from the
name and the first bytes), its field separator (from the header), and the messages every table reader shares for
a file that is not UTF-8 or not readable gzip.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import zlib
from pathlib import Path
from typing import IO

from audit.errors import DataError, UsageError

__all__ = [
    "GZIP_ERRORS",
    "bad_gzip",
    "check_file",
    "check_sep",
    "detect_sep",
    "format_of",
    "not_utf8",
    "one_line",
    "open_text",
    "sep_words",
]

_EXTENSIONS = (
    (".csv.gz", "csv", ","),
    (".tsv.gz", "csv", "\t"),
    (".csv", "csv", ","),
    (".tsv", "csv", "\t"),
    (".parquet", "parquet", ","),
    (".pq", "parquet", ","),
)
_SEPARATORS = (",", "\t", ";")  # the separators detection chooses from
_SEP_ALIASES = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";"}
_SNIFF_ROWS = 20  # data rows looked at, after the header, to decide between separators
_SNIFF_CHARS = 1 << 22  # at most this much text is read for that
_GZIP_MAGIC = b"\x1f\x8b"


def check_sep(sep: str | None) -> str | None:
    """The separator a caller asked for, aliases resolved (``"tab"``, ``"\\t"``, ...), or None to detect it.

    Raises
    ------
    UsageError
        ``sep`` is not one usable character.
    """
    if sep is None:
        return None
    if not isinstance(sep, str):
        raise UsageError(f"--sep must be one character such as ',' ';' or '\\t', got {type(sep).__name__}")
    value = _SEP_ALIASES.get(sep.lower(), sep)
    if len(value) != 1 or value in "\"\r\n" or value.isalnum() or value == ".":
        raise UsageError(f"--sep must be one character such as ',' ';' or '\\t' (tab), got {sep!r}")
    return value


def sep_words(sep: str) -> str:
    """A separator as a person names it: ``"comma"``, ``"tab"``, ``"semicolon"``, else its repr."""
    return {",": "comma", "\t": "tab", ";": "semicolon"}.get(sep, repr(sep))


def _sep_option(sep: str) -> str:
    return "--sep '\\t'" if sep == "\t" else f"--sep '{sep}'"


def check_file(path: str | os.PathLike[str]) -> Path:
    """The data path as a Path, once it is known to be an existing, non-empty file.

    Raises
    ------
    UsageError
        ``path`` is not a string or PathLike.
    DataError
        Missing, a directory, or 0 bytes.
    """
    if not isinstance(path, str | os.PathLike):
        raise UsageError(f"the data path must be a string or path, got {type(path).__name__}")
    file = Path(path)
    if not file.exists():
        raise DataError(f"data file '{path}' does not exist; check the path")
    if file.is_dir():
        raise DataError(f"data path '{path}' is a directory; pass a CSV or Parquet file")
    if file.stat().st_size == 0:
        raise DataError(f"data file '{path}' is empty (0 bytes); pass a file with a header and data rows")
    return file


def format_of(file: Path) -> tuple[str, str, str | None]:
    """(format, default separator, compression) from the name and the first bytes."""
    lower = file.name.lower()
    match = next(((ext, fmt, sep) for ext, fmt, sep in _EXTENSIONS if lower.endswith(ext)), None)
    if match is None:
        suffix = "".join(file.suffixes[-2:]) if file.suffix.lower() == ".gz" else file.suffix
        raise DataError(
            f"'{file.name}' has an unsupported extension '{suffix or '(none)'}'; save the data as CSV (.csv), "
            "TSV (.tsv), either gzip-compressed (.csv.gz, .tsv.gz), or Parquet (.parquet)"
        )
    ext, fmt, default_sep = match
    with open(file, "rb") as fh:
        magic = fh.read(4)
    if fmt == "parquet" and magic != b"PAR1":
        raise DataError(
            f"'{file.name}' is named {ext} but is not a Parquet file (it does not start with PAR1); "
            "re-save it with pandas.DataFrame.to_parquet or rename it to its real format"
        )
    if fmt == "csv" and magic == b"PAR1":
        raise DataError(f"'{file.name}' is named {ext} but is a Parquet file; rename it to .parquet")
    compression = "gzip" if fmt == "csv" and magic[:2] == _GZIP_MAGIC else None
    return fmt, default_sep, compression


def open_text(file: Path, compression: str | None, errors: str = "strict") -> IO[str]:
    """The file as text (BOM skipped), decompressing gzip as it is read."""
    if compression == "gzip":
        return gzip.open(file, "rt", encoding="utf-8-sig", newline="", errors=errors)
    return open(file, newline="", encoding="utf-8-sig", errors=errors)  # noqa: SIM115


def bad_gzip(name: str, error: BaseException) -> str:
    """The message for a file whose gzip stream cannot be read (one of :data:`GZIP_ERRORS`)."""
    reason = one_line(error)
    return f"'{name}' is not a readable gzip file ({reason}); re-compress it with gzip or save it uncompressed"


# what reading a corrupt or truncated gzip stream raises; reported with bad_gzip()
GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)


def _read_head(file: Path, compression: str | None) -> tuple[str, bool]:
    """The text of the first non-blank lines (header + up to _SNIFF_ROWS), and whether it is the whole file."""
    lines: list[str] = []
    size = 0
    complete = False
    try:
        with open_text(file, compression) as fh:
            while True:
                line = fh.readline()
                if not line:
                    complete = True
                    break
                if not line.strip():
                    continue
                lines.append(line)
                size += len(line)
                if len(lines) > _SNIFF_ROWS or size > _SNIFF_CHARS:
                    break
    except UnicodeDecodeError as e:
        raise DataError(not_utf8(file.name, e)) from e
    except GZIP_ERRORS as e:
        raise DataError(bad_gzip(file.name, e)) from e
    return "".join(lines), complete


def detect_sep(file: Path, compression: str | None, default: str) -> str:
    """Comma, tab or semicolon: the one that splits the header, or, if several do, the one the first rows agree with.

    A header that none of them splits is a one-column file: ``default`` (the extension's separator).
    """
    text, complete = _read_head(file, compression)
    parsed: dict[str, list[list[str]]] = {}
    for sep in _SEPARATORS:
        try:
            rows = [row for row in csv.reader(io.StringIO(text), delimiter=sep) if row]
        except csv.Error:
            rows = []
        if not complete and len(rows) > 1:
            rows = rows[:-1]  # the last line read may be cut short inside a quoted field
        parsed[sep] = rows
    splitting = [sep for sep, rows in parsed.items() if rows and len(rows[0]) > 1]
    if not splitting:
        return default
    if len(splitting) == 1:
        return splitting[0]
    if all(len(parsed[sep]) < 2 for sep in splitting):
        return splitting[0]  # header only: the header check reports that, whatever the separator
    consistent = [sep for sep in splitting if all(len(row) == len(parsed[sep][0]) for row in parsed[sep][1:])]
    if len(consistent) == 1:
        return consistent[0]
    candidates = consistent or splitting
    listed = " and ".join(sep_words(s) for s in candidates)
    raise DataError(
        f"cannot tell the separator of '{file.name}': its header and first rows split evenly on both {listed}; "
        f"pass {' or '.join(_sep_option(s) for s in candidates)}"
    )


def not_utf8(name: str, error: UnicodeDecodeError) -> str:
    """The message for a file that is not UTF-8 text, naming the first byte that cannot be decoded."""
    byte = error.object[error.start : error.start + 1].hex() if error.object else "??"
    return f"'{name}' is not UTF-8 text (byte 0x{byte} cannot be decoded); re-save it as UTF-8"


def one_line(error: BaseException) -> str:
    """An exception's first non-blank line (at most 200 characters), or its type name, to quote in a message."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."
