"""Section ``provenance``: files and hashes, seed, device, command line, library versions, outputs, config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from audit.report._format import fmt_compact, fmt_date, fmt_num
from audit.results import AuditRun

__all__ = ["build"]


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, Mapping):
        if not value:
            out.append((prefix, "–"))
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, list | tuple):
        out.append((prefix, ", ".join(str(v) for v in value) if value else "–"))
    elif value is None:
        out.append((prefix, "–"))
    elif isinstance(value, bool):
        out.append((prefix, "true" if value else "false"))
    elif isinstance(value, float):
        out.append((prefix, fmt_compact(value, 4)))
    else:
        out.append((prefix, str(value)))


def _artifacts(run: AuditRun) -> list[dict[str, str]]:
    """The run's output files; relative local names become links, anything else stays text."""
    out = []
    for kind, name in sorted(run.artifacts.items()):
        local = bool(name) and "://" not in name and ":" not in name.split("/")[0] and not name.startswith(("/", "\\"))
        out.append({"kind": kind, "name": name, "href": name if local else ""})
    return out


def build(run: AuditRun) -> dict[str, Any]:
    """Everything needed to reproduce the run.

    Parameters
    ----------
    run : AuditRun
        The results record.

    Returns
    -------
    dict
        ``facts``, ``command``, ``versions``, ``config`` (flattened ``key.sub: value`` pairs) and
        ``artifacts``. Never None.
    """
    p = run.provenance
    facts = [
        ("Created", fmt_date(p.created_at)),
        ("Model file", p.model_path or "n/a"),
        ("Model form", p.model_form or "n/a"),
        ("Model sha256", p.model_sha256 or "n/a"),
        ("Data file", p.data_path or "n/a"),
        ("Data sha256", p.data_sha256 or "n/a"),
        ("Seed", str(p.seed)),
        ("Device", p.device or "n/a"),
    ]
    if p.duration_s:
        facts.append(("Run time", f"{fmt_num(p.duration_s)} s"))
    config: list[tuple[str, str]] = []
    _flatten("", {k: v for k, v in p.config.items() if k != "command"}, config)  # the command has its own block
    return {
        "facts": facts,
        "command": p.command,
        "versions": sorted(p.versions.items()),
        "config": [row for row in config if row[0]],
        "artifacts": _artifacts(run),
    }
