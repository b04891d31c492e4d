"""Every package of the source tree is installed: pyproject.toml lists it and it has an __init__.py (an
editable install hid a missing entry; a wheel would have dropped the package)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for d in (ROOT / "audit").rglob("*"):
        if d.is_dir() and d.name != "__pycache__" and any(d.glob("*.py")):
            assert (d / "__init__.py").is_file(), f"{d.relative_to(ROOT)} has modules but no __init__.py"
            found.add(".".join(d.relative_to(ROOT).parts))
    found.add("audit")
    assert found - listed == set(), f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert "audit.templates" in listed
