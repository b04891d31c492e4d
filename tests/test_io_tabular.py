"""audit.io.tabular and audit.hashing: planted files with known contents, every error message, chunking
properties."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.errors import AuditError, DataError, UsageError
from audit.hashing import sha256_file
from audit.io import Chunk, TableSpec, inspect_table, iter_chunks, read_baseline_row, read_table


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _planted_frame() -> pd.DataFrame:
    """Values that are exact in float32 so CSV and Parquet must agree bit for bit."""
    rng = np.random.default_rng(7)
    n = 37
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "x1": rng.integers(-50, 50, n) / 4.0,
            "region": rng.choice(["north", "south", "01"], n),
            "x2": rng.integers(0, 1000, n).astype(np.int64),
            "label": rng.integers(0, 3, n),
            "x3": rng.normal(size=n).astype(np.float32).astype(np.float64),
        }
    )


def _chunks_equal(a: Chunk, b: Chunk) -> None:
    np.testing.assert_array_equal(a.X, b.X)
    assert a.X.dtype == np.float32 and b.X.dtype == np.float32
    assert (a.y is None) == (b.y is None)
    if a.y is not None:
        np.testing.assert_array_equal(a.y, b.y)
    assert (a.slice_values is None) == (b.slice_values is None)
    if a.slice_values is not None:
        assert list(a.slice_values) == list(b.slice_values)
    assert a.row_offset == b.row_offset


# ------------------------------------------------------------------------------------------- known contents


def test_planted_csv_values_columns_and_roles(tmp_path: Path) -> None:
    df = _planted_frame()
    path = tmp_path / "data.csv"
    df.to_csv(path, index=False)
    spec = inspect_table(path, target_col="label", drop=["id"], slice_col="region")
    assert spec.format == "csv"
    assert spec.columns == ("id", "x1", "region", "x2", "label", "x3")
    assert spec.features == ("x1", "x2", "x3")  # file order, target/drop/slice removed
    assert spec.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    table = read_table(spec)
    np.testing.assert_array_equal(table.X, df[["x1", "x2", "x3"]].to_numpy(np.float32))
    assert table.y is not None and table.y.dtype == np.float64
    np.testing.assert_array_equal(table.y, df["label"].to_numpy(np.float64))
    assert table.slice_values is not None
    assert list(table.slice_values) == list(df["region"])  # '01' stays text, not the number 1
    assert table.row_offset == 0 and table.n_rows == len(df)


def test_csv_and_parquet_with_same_content_give_identical_chunks(tmp_path: Path) -> None:
    df = _planted_frame()
    csv_path, pq_path = tmp_path / "d.csv", tmp_path / "d.parquet"
    df.to_csv(csv_path, index=False)
    df.to_parquet(pq_path, index=False, row_group_size=1000)
    kwargs = {"target_col": "label", "drop": ("id",), "slice_col": "region"}
    spec_c, spec_p = inspect_table(csv_path, **kwargs), inspect_table(pq_path, **kwargs)
    assert spec_p.format == "parquet"
    assert spec_c.columns == spec_p.columns and spec_c.features == spec_p.features
    chunks_c, chunks_p = list(iter_chunks(spec_c, 10)), list(iter_chunks(spec_p, 10))
    assert [c.row_offset for c in chunks_c] == [0, 10, 20, 30]
    assert len(chunks_c) == len(chunks_p)
    for a, b in zip(chunks_c, chunks_p, strict=True):
        _chunks_equal(a, b)


def test_chunk_offsets_and_sizes(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    pd.DataFrame({"a": np.arange(25.0), "b": -np.arange(25.0)}).to_csv(path, index=False)
    chunks = list(iter_chunks(inspect_table(path), chunk_rows=10))
    assert [(c.row_offset, c.n_rows) for c in chunks] == [(0, 10), (10, 10), (20, 5)]
    assert chunks[2].X[0, 0] == 20.0 and chunks[2].X[0, 1] == -20.0
    assert all(c.y is None and c.slice_values is None for c in chunks)


def test_read_table_max_rows_stops_early_before_a_bad_row(tmp_path: Path) -> None:
    rows = "\n".join(f"{i},{i * 2}" for i in range(10))
    path = _write(tmp_path / "d.csv", f"a,b\n{rows}\n1,oops\n")
    table = read_table(inspect_table(path), max_rows=7)
    np.testing.assert_array_equal(table.X[:, 1], np.arange(7) * 2.0)
    with pytest.raises(DataError, match="data row 11"):
        read_table(inspect_table(path))


def test_bool_columns_are_numbers_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.csv", "a,b\n1,True\n\n2,False\n")
    table = read_table(inspect_table(path))
    np.testing.assert_array_equal(table.X, np.array([[1, 1], [2, 0]], np.float32))


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n_rows=st.integers(1, 40),
    n_cols=st.integers(1, 4),
    chunk_rows=st.integers(1, 45),
    fmt=st.sampled_from(["csv", "parquet"]),
    seed=st.integers(0, 2**16),
)
def test_chunk_boundaries_do_not_change_results(
    tmp_path: Path, n_rows: int, n_cols: int, chunk_rows: int, fmt: str, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({f"c{j}": rng.normal(scale=10.0 ** rng.integers(-3, 6), size=n_rows) for j in range(n_cols)})
    df["t"] = rng.integers(0, 2, n_rows)
    df["s"] = rng.choice(["a", "b"], n_rows)
    path = tmp_path / f"h.{fmt}"
    if fmt == "csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False, row_group_size=max(1, n_rows // 3))
    spec = inspect_table(path, target_col="t", slice_col="s")
    whole = read_table(spec)
    chunks = list(iter_chunks(spec, chunk_rows))
    assert all(1 <= c.n_rows <= chunk_rows for c in chunks)
    offsets = np.cumsum([0] + [c.n_rows for c in chunks])
    assert [c.row_offset for c in chunks] == list(offsets[:-1])
    np.testing.assert_array_equal(np.concatenate([c.X for c in chunks]), whole.X)
    np.testing.assert_array_equal(np.concatenate([c.y for c in chunks]), whole.y)
    assert list(np.concatenate([c.slice_values for c in chunks])) == list(whole.slice_values)
    # and the values are the file's values: float64 -> float32 exactly as numpy rounds
    np.testing.assert_array_equal(whole.X, df[[f"c{j}" for j in range(n_cols)]].to_numpy(np.float32))


# ------------------------------------------------------------------------------------------ inspect errors


def test_missing_empty_directory_and_extension_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"'.*nope\.csv' does not exist; check the path"):
        inspect_table(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is empty"):
        inspect_table(_write(tmp_path / "e.csv", ""))
    with pytest.raises(DataError, match="is empty"):
        inspect_table(_write(tmp_path / "blank.csv", "\n\n"))
    with pytest.raises(DataError, match="is a directory; pass a CSV or Parquet file"):
        inspect_table(tmp_path)
    unsupported = r"unsupported extension '\.xlsx'; save the data as CSV \(\.csv\), TSV \(\.tsv\), .*or Parquet"
    with pytest.raises(DataError, match=unsupported):
        inspect_table(_write(tmp_path / "d.xlsx", "a\n1\n"))
    with pytest.raises(DataError, match="not a Parquet file"):
        inspect_table(_write(tmp_path / "fake.parquet", "a,b\n1,2\n"))


def test_header_only_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="has a header but no rows"):
        inspect_table(_write(tmp_path / "h.csv", "a,b,c\n"))
    pq_path = tmp_path / "h.parquet"
    pd.DataFrame({"a": pd.Series([], dtype=float)}).to_parquet(pq_path)
    with pytest.raises(DataError, match="has a header but no rows"):
        inspect_table(pq_path)


def test_header_only_detected_at_read_time_too(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.csv", "a,b\n1,2\n")
    spec = inspect_table(path)
    _write(path, "a,b\n")  # emptied after inspection
    with pytest.raises(DataError, match="has a header but no rows"):
        list(iter_chunks(spec))


def test_unknown_columns_list_what_the_file_has(tmp_path: Path) -> None:
    cols = [f"col{i}" for i in range(14)] + ["age"]
    path = _write(tmp_path / "d.csv", ",".join(cols) + "\n" + ",".join("1" * len(cols)) + "\n")
    with pytest.raises(UsageError) as err:
        inspect_table(path, target_col="agee")
    msg = str(err.value)
    assert "unknown --target-col column 'agee'" in msg and "did you mean 'age'?" in msg
    assert "col0, col1" in msg and "col9" in msg and "col10" not in msg and "(15 in all)" in msg
    with pytest.raises(UsageError, match="unknown --drop column 'zzz'"):
        inspect_table(path, drop=("col1", "zzz"))
    with pytest.raises(UsageError, match="unknown --slice-col column 'region'"):
        inspect_table(path, slice_col="region")
    with pytest.raises(UsageError, match="is also the --target-col"):
        inspect_table(path, target_col="age", slice_col="age")


def test_duplicate_and_unnamed_columns(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"column name 'a' appears 2 times in 'd\.csv' \(columns 1, 3\)"):
        inspect_table(_write(tmp_path / "d.csv", "a,b,a\n1,2,3\n"))
    with pytest.raises(DataError, match="column 2 of 'u.csv' has no name"):
        inspect_table(_write(tmp_path / "u.csv", "a,,c\n1,2,3\n"))


def test_no_feature_columns_left(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.csv", "id,y\n1,0\n")
    with pytest.raises(DataError, match="no feature columns left in 'd.csv' after removing id, y"):
        inspect_table(path, target_col="y", drop=["id"])


# -------------------------------------------------------------------------------------------- value errors


def test_non_numeric_feature_names_column_count_row_value_and_fix(tmp_path: Path) -> None:
    rows = ["1,2.5,0"] * 5 + ["2,abc,1", "3,4,0", "4,?,1"]
    path = _write(tmp_path / "d.csv", "age,income,y\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError) as err:
        read_table(inspect_table(path, target_col="y"))
    assert str(err.value) == (
        "column 'income' has 2 non-numeric values (first at data row 6, value 'abc'); "
        "pass --drop income or clean the file"
    )


def test_error_row_numbers_count_across_chunks(tmp_path: Path) -> None:
    rows = [f"{i},{i}" for i in range(30)]
    rows[24] = "24,"  # data row 25
    path = _write(tmp_path / "d.csv", "a,b\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError) as err:
        list(iter_chunks(inspect_table(path), chunk_rows=10))
    assert str(err.value) == (
        "column 'b' has 1 missing value in data rows 21-30 (first at data row 25); fill or drop them, or pass --drop b"
    )


def test_missing_infinite_and_float32_overflow(tmp_path: Path) -> None:
    path = _write(tmp_path / "m.csv", "x,z\n1,1\n2,\n3,NA\n4,\n5,1\n")
    with pytest.raises(DataError, match=r"^column 'z' has 3 missing values \(first at data row 2\); fill or drop"):
        read_table(inspect_table(path))
    path = _write(tmp_path / "i.csv", "x,z\n1,1\n2,inf\n3,-inf\n")
    with pytest.raises(DataError, match=r"column 'z' has 2 infinite values \(first at data row 2\); replace them"):
        read_table(inspect_table(path))
    path = _write(tmp_path / "o.csv", "x,z\n1,1\n2,1e39\n")
    too_large = r"column 'z' has 1 value too large for float32 \(first at data row 2, value 1e\+39"
    with pytest.raises(DataError, match=too_large):
        read_table(inspect_table(path))


def test_dropped_column_may_hold_anything(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.csv", "name,x,notes\nann,1,hello\nbob,2,\n")
    table = read_table(inspect_table(path, drop=["name", "notes"]))
    np.testing.assert_array_equal(table.X[:, 0], [1.0, 2.0])


def test_target_errors(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.csv", "x,label\n1,cat\n2,dog\n3,cat\n")
    with pytest.raises(DataError) as err:
        read_table(inspect_table(path, target_col="label"))
    msg = str(err.value)
    assert "target column 'label' holds text labels (first at data row 1, value 'cat')" in msg
    assert "encode the labels as integers 0..k-1" in msg and "cat=0, dog=1" in msg
    path = _write(tmp_path / "n.csv", "x,y\n1,0\n2,\n")
    with pytest.raises(DataError, match=r"target column 'y' has 1 missing value \(first at data row 2\)"):
        read_table(inspect_table(path, target_col="y"))


def test_slice_column_missing_labels(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.csv", "x,g\n1,a\n2,\n")
    with pytest.raises(DataError, match=r"slice column 'g' has 1 missing value \(first at data row 2\)"):
        read_table(inspect_table(path, slice_col="g"))


def test_parquet_text_and_null_features(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    pd.DataFrame({"a": [1.0, None, 3.0], "b": ["1", "2", "x"]}).to_parquet(path)
    with pytest.raises(DataError, match=r"column 'a' has 1 missing value \(first at data row 2\)"):
        read_table(inspect_table(path, drop=["b"]))
    with pytest.raises(DataError, match=r"column 'b' has 1 non-numeric value \(first at data row 3, value 'x'\)"):
        read_table(inspect_table(path, drop=["a"]))


# ------------------------------------------------------------------------------------------- ragged rows


@pytest.mark.parametrize(
    ("body", "line", "fields"),
    [
        ("1,2,3\n4,5,6,7\n8,9,10\n", 3, 4),  # too many fields: pandas raises ParserError
        ("1,2,3,4\n5,6,7,8\n", 2, 4),  # every row too long: pandas would drop the extra field with a warning
        ("1,2,3\n4,5\n8,9,10\n", 3, 2),  # too few: pandas would fill NaN
        ("1,2,3\n\n4,5\n", 4, 2),  # a blank line before it still counts as a line
    ],
)
def test_ragged_rows_name_the_line(tmp_path: Path, body: str, line: int, fields: int) -> None:
    path = _write(tmp_path / "r.csv", "a,b,c\n" + body)
    with pytest.raises(DataError) as err:
        read_table(inspect_table(path))
    assert str(err.value) == (
        f"'r.csv' line {line} has {fields} fields but the header has 3 (a ragged row); "
        "fix that line so every row has 3 fields"
    )


def test_short_row_found_even_when_its_missing_field_is_dropped(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.csv", "a,b,c\n1,2,3\n4,5\n")
    with pytest.raises(DataError, match="line 3 has 2 fields"):
        read_table(inspect_table(path, drop=["c"]))


def test_ragged_row_in_a_later_chunk(tmp_path: Path) -> None:
    rows = [f"{i},{i}" for i in range(40)]
    rows[33] = "33,33,33"  # line 35
    path = _write(tmp_path / "r.csv", "a,b\n" + "\n".join(rows) + "\n")
    chunks = iter_chunks(inspect_table(path), chunk_rows=8)
    with pytest.raises(DataError, match="'r.csv' line 35 has 3 fields but the header has 2"):
        list(chunks)


def test_unclosed_quote_and_non_utf8(tmp_path: Path) -> None:
    path = _write(tmp_path / "q.csv", 'a,b\n1,"2\n3,4\n')
    with pytest.raises(DataError, match="could not be parsed as CSV .*EOF inside string"):
        read_table(inspect_table(path))
    latin = tmp_path / "l.csv"
    latin.write_bytes("a,b\n1,2\n3,\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"'l.csv' is not UTF-8 text \(byte 0xe9 cannot be decoded\); re-save it as"):
        read_table(inspect_table(latin))


# ---------------------------------------------------------------------------------------- argument errors


def test_bad_arguments_raise_at_the_call(tmp_path: Path) -> None:
    spec = inspect_table(_write(tmp_path / "d.csv", "a\n1\n"))
    with pytest.raises(UsageError, match="chunk_rows must be a positive integer"):
        iter_chunks(spec, chunk_rows=0)  # no next(): the check is eager
    with pytest.raises(UsageError, match="needs a TableSpec"):
        iter_chunks("d.csv")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="max_rows must be a positive integer"):
        read_table(spec, max_rows=0)


def test_spec_is_frozen(tmp_path: Path) -> None:
    spec = inspect_table(_write(tmp_path / "d.csv", "a\n1\n"))
    assert isinstance(spec, TableSpec)
    with pytest.raises(AttributeError):
        spec.features = ("b",)  # type: ignore[misc]


# ------------------------------------------------------------------------------------------------ baseline


def test_baseline_row_in_feature_order_extra_columns_ignored(tmp_path: Path) -> None:
    path = _write(tmp_path / "b.csv", "note,c,a,b\nhello,3.5,1,-2\n")
    np.testing.assert_array_equal(read_baseline_row(path, ["a", "b", "c"]), np.array([1, -2, 3.5], np.float32))


def test_baseline_row_errors(tmp_path: Path) -> None:
    path = _write(tmp_path / "b.csv", "a\n1\n")
    with pytest.raises(DataError, match=r"baseline file 'b.csv' lacks the feature column\(s\) b, c; add them"):
        read_baseline_row(path, ["a", "b", "c"])
    with pytest.raises(DataError, match="has more than one data row; keep exactly one row"):
        read_baseline_row(_write(tmp_path / "two.csv", "a\n1\n2\n"), ["a"])
    with pytest.raises(DataError, match="has a header but no rows"):
        read_baseline_row(_write(tmp_path / "none.csv", "a\n"), ["a"])
    with pytest.raises(DataError, match=r"baseline column 'a' has 1 non-numeric value .*value 'x'\); put a number"):
        read_baseline_row(_write(tmp_path / "t.csv", "a\nx\n"), ["a"])
    with pytest.raises(UsageError, match="non-empty list"):
        read_baseline_row(path, [])


# ------------------------------------------------------------------------------------------------- hashing


def test_sha256_file_streams_and_matches_hashlib(tmp_path: Path) -> None:
    data = bytes(range(256)) * 1000
    path = tmp_path / "blob"
    path.write_bytes(data)
    expected = hashlib.sha256(data).hexdigest()
    assert sha256_file(path) == expected
    assert sha256_file(path, chunk=7) == expected  # chunk size cannot change the digest
    assert sha256_file(_write(tmp_path / "empty", "")) == hashlib.sha256(b"").hexdigest()
    with pytest.raises(UsageError, match="chunk must be a positive integer"):
        sha256_file(path, chunk=0)
    with pytest.raises(AuditError, match="cannot read .* to hash it"):
        sha256_file(tmp_path / "missing")
