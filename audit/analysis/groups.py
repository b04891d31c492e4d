"""Feature groups: columns that are one feature to a person (the one-hot levels of a category, a declared block).

A category the file spreads over one-hot columns (``island_Biscoe``, ``island_Dream``, ``island_Torgersen``) is one
feature: its levels are mutually exclusive, so taking one level away alone proves nothing, and a leak through one
level is a leak of the category. The ranking keeps the per-column view and adds a grouped one: per row a group's
attribution is the sum of its members' signed attributions (the change in output the whole category accounts
for, by completeness), globally the mean of its absolute value.

Groups come from two places:

- **one-hot blocks**, found from the data: at least two columns that share a prefix (the name up to its last
  ``_``, ``=``, ``.`` or ``:``), hold only 0 and 1, and sum to exactly 1 on every row (a full encoding) or to 0 or 1
  on every row with at least one row at 0 (pandas' ``drop_first=True``: the dropped level is the all-zero row);
- **declared groups**, ``--group NAME=GLOB`` (repeatable; ``group = ["NAME=GLOB", ...]`` in ``audit.toml``): the
  columns whose names match the glob. A declared group takes its columns out of any one-hot block.

A column belongs to at most one group.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

import numpy as np

from audit.analysis.ranking import global_ranking
from audit.errors import UsageError
from audit.results import FeatureGroup

__all__ = [
    "find_groups", "parse_group_option", "onehot_blocks", "unit_matrix", "unit_values", "Units", "group_ranking",
    "merge_blocks",
]

_PREFIX = re.compile(r"^(.+)[_=.:][^_=.:]+$")


def parse_group_option(values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``("island=island_*", ...)`` as ``(("island", "island_*"), ...)``.

    Raises
    ------
    UsageError
        For an entry without ``=``, an empty name or glob, or a name given twice.
    """
    out: list[tuple[str, str]] = []
    for v in values:
        name, sep, glob = str(v).partition("=")
        name, glob = name.strip(), glob.strip()
        if not sep or not name or not glob:
            raise UsageError(f"group '{v}' must be NAME=GLOB, e.g. island=island_*")
        if name in {n for n, _ in out}:
            raise UsageError(f"group '{name}' is declared twice; give each group one NAME=GLOB")
        out.append((name, glob))
    return tuple(out)


def onehot_blocks(X: np.ndarray, names: Sequence[str]) -> list[FeatureGroup]:
    """The one-hot blocks of ``X`` (module notes), in the order of their first column.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
    names : sequence of str of length n_features
    """
    X = np.asarray(X)
    if X.shape[0] == 0:
        return []
    binary = np.all((X == 0) | (X == 1), axis=0)  # (F,)
    by_prefix: dict[str, list[int]] = {}
    for j, name in enumerate(names):
        m = _PREFIX.match(str(name))
        if binary[j] and m:
            by_prefix.setdefault(m.group(1), []).append(j)
    out: list[FeatureGroup] = []
    for prefix, cols in by_prefix.items():
        if len(cols) < 2:
            continue
        total = X[:, cols].sum(axis=1)  # (n,)
        if np.all(total == 1):
            kind = "one-hot"
        elif np.all((total == 0) | (total == 1)) and np.any(total == 0) and np.any(total == 1):
            kind = "one-hot (a dropped level)"
        else:
            continue
        out.append(FeatureGroup(name=prefix, members=tuple(str(names[j]) for j in cols), kind=kind))
    return sorted(out, key=lambda g: list(names).index(g.members[0]))


def find_groups(X: np.ndarray, names: Sequence[str], declared: Sequence[tuple[str, str]] = ()) -> tuple[
        FeatureGroup, ...]:
    """Declared groups, then the one-hot blocks of the remaining columns.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Rows to look for one-hot blocks in (a sample is enough: a block must hold on every row of it).
    names : sequence of str of length n_features
    declared : sequence of (name, glob)
        From :func:`parse_group_option`.

    Raises
    ------
    UsageError
        A glob that matches no column, a column matched by two groups, or a group name that is also a column name
        outside the group.
    """
    names = [str(n) for n in names]
    taken: dict[str, str] = {}
    out: list[FeatureGroup] = []
    for gname, glob in declared:
        hits = [n for n in names if fnmatch.fnmatchcase(n, glob)]
        if not hits:
            raise UsageError(f"group '{gname}={glob}' matches no feature column; fix the glob")
        for h in hits:
            if h in taken:
                raise UsageError(f"column '{h}' is in group '{taken[h]}' and in group '{gname}'; a column can be in "
                                 "one group only")
            taken[h] = gname
        if gname in names and gname not in hits:
            raise UsageError(f"group name '{gname}' is also a feature column; name the group differently")
        out.append(FeatureGroup(name=gname, members=tuple(hits), kind="declared"))
    rest = [j for j, n in enumerate(names) if n not in taken]
    for g in onehot_blocks(np.asarray(X)[:, rest], [names[j] for j in rest]):
        if g.name in names:  # a column already named like the block's prefix: keep the group apart from it
            g = FeatureGroup(name=f"{g.name} (one-hot)", members=g.members, kind=g.kind)
        out.append(g)
    return tuple(out)


class Units:
    """The grouped view of the features: each group one unit, each column outside the groups its own unit.

    Attributes
    ----------
    names : tuple of str
        Unit names: groups at the position of their first member, the other columns in file order.
    members : tuple of tuple of int
        The columns of each unit.
    """

    def __init__(self, names: Sequence[str], groups: Sequence[FeatureGroup]) -> None:
        names = [str(n) for n in names]
        pos = {n: j for j, n in enumerate(names)}
        group_of = {m: g for g in groups for m in g.members}
        units: list[tuple[str, tuple[int, ...]]] = []
        seen: set[str] = set()
        for n in names:
            g = group_of.get(n)
            if g is None:
                units.append((n, (pos[n],)))
            elif g.name not in seen:
                seen.add(g.name)
                units.append((g.name, tuple(pos[m] for m in g.members)))
        self.names = tuple(u for u, _ in units)
        self.members = tuple(m for _, m in units)


def unit_matrix(A: np.ndarray, units: Units) -> np.ndarray:
    """Per-row attributions of the units: the sum of the members' signed attributions, (n_rows, n_units)."""
    A = np.asarray(A, dtype=np.float64)
    return np.column_stack([A[:, list(m)].sum(axis=1) for m in units.members]) if units.members else A[:, :0]


def unit_values(X: np.ndarray, units: Units) -> np.ndarray:
    """One value per row and unit for the univariate leak scores, (n_rows, n_units): a column's own value; for a
    group, a code of the row's pattern of member values (for a one-hot block: which level is set), so a category
    whose levels map onto the classes scores as a perfect separator whatever the order of its codes."""
    X = np.asarray(X, dtype=np.float64)
    cols = []
    for m in units.members:
        if len(m) == 1:
            cols.append(X[:, m[0]])
        else:
            _, code = np.unique(X[:, list(m)], axis=0, return_inverse=True)
            cols.append(code.reshape(-1).astype(np.float64))
    return np.column_stack(cols) if cols else X[:, :0]


def group_ranking(A: np.ndarray, units: Units, *, n_boot: int = 200, seed: int = 0):
    """The grouped ranking: :func:`audit.analysis.ranking.global_ranking` of :func:`unit_matrix`.

    Parameters
    ----------
    A : ndarray of shape (n_rows, n_features)
        Per-row attributions of the columns.
    units : Units

    Returns
    -------
    tuple of FeatureStat
        One per unit, in rank order; a group's ``mean_abs`` is the mean over rows of |sum of its members'
        attributions|, its ``mean`` the mean of that sum.
    """
    return global_ranking(unit_matrix(A, units), list(units.names), n_boot=n_boot, seed=seed)


def merge_blocks(groups: Sequence[Sequence[int]], blocks: Sequence[Sequence[int]]) -> list[list[int]]:
    """Column groups (every column in exactly one, e.g. correlated groups) with each block's columns joined into
    one group, together with every group any of them was in; in column order.

    >>> merge_blocks([[0], [1, 3], [2], [4]], [[2, 3]])
    [[0], [1, 2, 3], [4]]
    """
    parent = {j: j for g in groups for j in g}

    def root(j: int) -> int:
        while parent[j] != j:
            parent[j] = parent[parent[j]]
            j = parent[j]
        return j

    for g in list(groups) + list(blocks):
        g = list(g)
        for j in g[1:]:
            parent[root(j)] = root(g[0])
    out: dict[int, list[int]] = {}
    for j in sorted(parent):
        out.setdefault(root(j), []).append(j)
    return sorted(out.values(), key=lambda g: g[0])
