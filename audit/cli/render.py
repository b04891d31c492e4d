"""``audit render RUN_JSON``: re-render the report of a saved run, without the model or the data."""

from __future__ import annotations

from pathlib import Path

import typer

from audit.cli._common import guarded
from audit.errors import UsageError

__all__ = ["register", "render", "resolve_targets"]

_SUFFIX_FORMAT = {".html": "html", ".htm": "html", ".pdf": "pdf"}


def resolve_targets(
    run_json: Path, formats: tuple[str, ...] | None, out: Path | None, artifacts: dict[str, str]
) -> dict[str, Path]:
    """Decide which files to write.

    Parameters
    ----------
    run_json : Path
        The saved run; reports go next to it by default.
    formats : tuple of str or None
        Parsed ``--format``; ``None`` when not given (then the ``--out`` suffix decides, else html and pdf).
    out : Path or None
        ``--out``: a folder, or one file when a single format is written.
    artifacts : dict of str to str
        ``AuditRun.artifacts``: the file names the run used, reused by default.

    Returns
    -------
    dict of str to Path
        format -> destination file.

    Raises
    ------
    UsageError
        When ``--out`` names one file but several formats are asked for, or its suffix does not match.
    """
    from audit.report.writer import REPORT_FORMATS, report_paths

    suffix_format = _SUFFIX_FORMAT.get(out.suffix.lower()) if out is not None else None
    names_file = out is not None and not out.is_dir() and out.suffix != ""
    if formats is None:
        formats = (suffix_format,) if names_file and suffix_format else REPORT_FORMATS
    if out is None:
        return report_paths(run_json.parent, formats, artifacts)
    if not names_file:
        return report_paths(out, formats, artifacts)
    if len(formats) > 1:
        raise UsageError(
            f"--out '{out}' names one file but --format asks for {','.join(formats)}; "
            "pass a folder to --out or a single --format"
        )
    if suffix_format != formats[0]:
        raise UsageError(
            f"--out '{out}' does not end in .{formats[0]} but --format is {formats[0]}; "
            f"name the file *.{formats[0]} or pass a folder"
        )
    return {formats[0]: out}


@guarded
def render(
    run_json: Path = typer.Argument(..., help="The audit.json written by 'audit run'.", show_default=False,
                                    metavar="RUN_JSON"),
    format: str | None = typer.Option(
        None,
        "--format",
        "-f",
        help="html, pdf or html,pdf. Default: the --out suffix, else html,pdf.",
        show_default=False,
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="A folder, or one file when writing one format. Default: next to RUN_JSON.",
        show_default=False,
    ),
) -> None:
    """Re-render the HTML/PDF report of a saved run (no model, no data, no torch)."""
    from audit.report.writer import parse_formats, write_reports
    from audit.results import load_run

    formats = parse_formats(format) if format is not None else None
    run = load_run(run_json)
    targets = resolve_targets(run_json, formats, out, dict(run.artifacts))
    for path in write_reports(run, targets).values():
        typer.echo(f"wrote {path}")


class _Command(typer.core.TyperCommand):
    """``Usage: audit render [OPTIONS] RUN_JSON``: typer writes a required argument as ``{RUN_JSON}``."""

    def collect_usage_pieces(self, ctx):
        return [p[1:-1] if p.startswith("{") and p.endswith("}") else p for p in super().collect_usage_pieces(ctx)]


def register(app: typer.Typer) -> None:
    """Add ``audit render`` to the app."""
    app.command("render", help=render.__doc__, cls=_Command)(render)
