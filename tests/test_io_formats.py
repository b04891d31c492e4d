"""audit.io.tabular with files as people save them: TSV, semicolons, gzip, and the index column pandas' to_csv()
writes by default. Known answers: the detected separator, the dropped column, the values read."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audit.errors import DataError, UsageError
from audit.io import TableSpec, inspect_table, iter_chunks, read_baseline_row, read_table


def _frame(n: int = 23) -> pd.DataFrame:
    """Values exact in float32, so every format must give the same bits."""
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "x1": rng.integers(-40, 40, n) / 4.0,
            "x2": rng.integers(0, 100, n).astype(np.int64),
            "label": rng.integers(0, 2, n),
        }
    )


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _one_line(err: pytest.ExceptionInfo[BaseException]) -> str:
    msg = str(err.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


# ------------------------------------------------------------------------------------------ separators, gzip


@pytest.mark.parametrize(
    ("name", "sep", "sep_written"),
    [
        ("d.tsv", "\t", "\t"),
        ("d.csv.gz", ",", ","),
        ("d.tsv.gz", "\t", "\t"),
        ("semi.csv", ";", ";"),
        ("semi.csv.gz", ";", ";"),
    ],
)
def test_tsv_semicolon_and_gzip_read_like_the_plain_csv(tmp_path: Path, name: str, sep: str, sep_written: str) -> None:
    df = _frame()
    plain = tmp_path / "plain.csv"
    df.to_csv(plain, index=False)
    path = tmp_path / name
    df.to_csv(path, index=False, sep=sep_written)  # pandas gzips by the .gz suffix
    spec = inspect_table(path, target_col="label")
    assert spec.sep == sep
    assert spec.compression == ("gzip" if name.endswith(".gz") else None)
    assert spec.format == "csv"
    assert spec.columns == ("x1", "x2", "label") and spec.features == ("x1", "x2")
    assert spec.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()  # the file's (compressed) bytes
    expected = read_table(inspect_table(plain, target_col="label"))
    got = read_table(spec)
    np.testing.assert_array_equal(got.X, expected.X)
    np.testing.assert_array_equal(got.y, expected.y)
    chunks = list(iter_chunks(spec, chunk_rows=10))  # gzip streams in chunks like plain text
    assert [(c.row_offset, c.n_rows) for c in chunks] == [(0, 10), (10, 10), (20, 3)]
    np.testing.assert_array_equal(np.concatenate([c.X for c in chunks]), expected.X)


def test_detected_separator_other_than_the_extensions_gets_a_note(tmp_path: Path) -> None:
    semi = inspect_table(_write(tmp_path / "s.csv", "a;b\n1;2\n"))
    assert semi.sep == ";"
    assert len(semi.notes) == 1 and "semicolon-separated" in semi.notes[0] and "--sep" in semi.notes[0]
    comma_tsv = inspect_table(_write(tmp_path / "c.tsv", "a,b\n1,2\n"))
    assert comma_tsv.sep == "," and "comma-separated" in comma_tsv.notes[0]
    assert inspect_table(_write(tmp_path / "t.tsv", "a\tb\n1\t2\n")).notes == ()
    one = inspect_table(_write(tmp_path / "one.tsv", "a\n1\n2\n"))  # nothing to detect: the extension's
    assert one.sep == "\t" and one.notes == () and one.features == ("a",)


def test_separator_inside_a_quoted_header_name_and_ambiguous_headers(tmp_path: Path) -> None:
    quoted = inspect_table(_write(tmp_path / "q.csv", 'name,"x;y",z\n1,2,3\n4,5,6\n'))
    assert quoted.sep == "," and quoted.columns == ("name", "x;y", "z")
    np.testing.assert_array_equal(read_table(quoted).X, [[1, 2, 3], [4, 5, 6]])
    # the header splits on both, and so do the rows, evenly: only the person knows
    path = _write(tmp_path / "amb.csv", "a,b;c\n1,2;3\n")
    with pytest.raises(DataError) as err:
        inspect_table(path)
    assert _one_line(err) == (
        "cannot tell the separator of 'amb.csv': its header and first rows split evenly on both comma and "
        "semicolon; pass --sep ',' or --sep ';'"
    )
    semi = inspect_table(path, sep=";")
    assert semi.sep == ";" and semi.columns == ("a,b", "c") and semi.notes == ()
    comma = inspect_table(path, sep=",")
    assert comma.columns == ("a", "b;c")
    # rows settle it when the header is ambiguous: 3 comma fields on every row, semicolon splits the header only
    rows = inspect_table(_write(tmp_path / "r.csv", "a,b;c,d\n1,2,3\n4,5,6\n"))
    assert rows.sep == "," and rows.columns == ("a", "b;c", "d")


def test_explicit_sep_aliases_and_bad_values(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.csv", "a|b\n1|2\n")
    assert inspect_table(path).columns == ("a|b",)  # not a separator detection knows
    spec = inspect_table(path, sep="|")
    assert spec.sep == "|" and spec.columns == ("a", "b")
    np.testing.assert_array_equal(read_table(spec).X, [[1, 2]])
    tab = _write(tmp_path / "t.csv", "a\tb\n1\t2\n")
    for alias in ("\t", "\\t", "tab", "TAB"):
        assert inspect_table(tab, sep=alias).sep == "\t"
    for bad in ("", ",,", '"', "\n", "a", "."):
        with pytest.raises(UsageError, match="--sep must be one character such as"):
            inspect_table(tab, sep=bad)


def test_semicolon_file_with_decimal_commas_says_so(tmp_path: Path) -> None:
    path = _write(tmp_path / "eu.csv", "a;b\n1,5;2\n3;4\n")
    spec = inspect_table(path)
    assert spec.sep == ";" and spec.features == ("a", "b")
    with pytest.raises(DataError) as err:
        read_table(spec)
    assert _one_line(err) == (
        "column 'a' has 1 non-numeric value (first at data row 1, value '1,5'); it is written with a decimal "
        "comma: save the numbers with '.' as the decimal mark"
    )


def test_ragged_tsv_row_is_found_with_the_files_separator(tmp_path: Path) -> None:
    rows = [f"{i}\t{i}\t{i}" for i in range(30)]
    rows[20] = "20\t20"  # line 22
    path = _write(tmp_path / "r.tsv", "a\tb\tc\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError) as err:
        list(iter_chunks(inspect_table(path), chunk_rows=8))
    assert _one_line(err) == (
        "'r.tsv' line 22 has 2 fields but the header has 3 (a ragged row); fix that line so every row has 3 fields"
    )


def test_gzip_recognised_by_content_and_corrupt_gzip(tmp_path: Path) -> None:
    df = _frame(5000)
    # a gzip file named .csv and a plain file named .csv.gz are both read by what they hold
    hidden = tmp_path / "hidden.csv"
    hidden.write_bytes(gzip.compress(df.to_csv(index=False).encode()))
    spec = inspect_table(hidden, target_col="label")
    assert spec.compression == "gzip" and read_table(spec).n_rows == 5000
    plain = _write(tmp_path / "plain.csv.gz", "a,b\n1,2\n")
    assert inspect_table(plain).compression is None
    assert read_table(inspect_table(plain)).X.tolist() == [[1, 2]]
    truncated = tmp_path / "cut.csv.gz"
    whole = gzip.compress(df.to_csv(index=False).encode())
    truncated.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError) as err:
        list(iter_chunks(inspect_table(truncated, target_col="label"), chunk_rows=512))
    msg = _one_line(err)
    assert msg.startswith("'cut.csv.gz' is not a readable gzip file (") and "re-compress it with gzip" in msg


# -------------------------------------------------------------------------------------- pandas' index column


def test_pandas_default_index_is_dropped_with_a_note(tmp_path: Path) -> None:
    df = _frame()
    path = tmp_path / "to_csv.csv"
    df.to_csv(path)  # index=True: an unnamed first column 0..n-1
    assert path.read_text().splitlines()[0] == ",x1,x2,label"
    spec = inspect_table(path, target_col="label")
    assert spec.columns == ("", "x1", "x2", "label")
    assert spec.features == ("x1", "x2")
    assert spec.dropped_index == ""
    assert len(spec.notes) == 1
    note = spec.notes[0]
    assert "dropped the first column ''" in note and "0, 1, 2" in note and "to_csv()" in note and "index=False" in note
    np.testing.assert_array_equal(read_table(spec).X, df[["x1", "x2"]].to_numpy(np.float32))
    chunks = list(iter_chunks(spec, chunk_rows=4))  # every chunk goes on counting: no error
    assert sum(c.n_rows for c in chunks) == len(df)
    # the same in a gzip TSV
    tsv = tmp_path / "to_csv.tsv.gz"
    df.to_csv(tsv, sep="\t")
    spec_t = inspect_table(tsv, target_col="label")
    assert (spec_t.sep, spec_t.compression, spec_t.dropped_index, spec_t.features) == ("\t", "gzip", "", ("x1", "x2"))


def test_unnamed_0_header_is_the_index_only_when_it_counts_from_zero(tmp_path: Path) -> None:
    # read_csv of a to_csv() file and saving it with index=False gives a literal 'Unnamed: 0' header
    counting = _write(tmp_path / "u.csv", "Unnamed: 0,a\n0,5\n1,6\n2,7\n")
    spec = inspect_table(counting)
    assert spec.dropped_index == "Unnamed: 0" and spec.features == ("a",)
    assert "'Unnamed: 0'" in spec.notes[0]
    np.testing.assert_array_equal(read_table(spec).X[:, 0], [5, 6, 7])
    # not 0..n-1 (a filtered frame's index, or any other column so named): an ordinary feature
    for body in ("3,5\n4,6\n", "1,5\n2,6\n", "0,5\n2,6\n", "0.0,5\n1.0,6\n"):
        other = inspect_table(_write(tmp_path / "o.csv", "Unnamed: 0,a\n" + body))
        assert other.dropped_index is None and other.features == ("Unnamed: 0", "a") and other.notes == ()
    # only the first column is looked at
    later = inspect_table(_write(tmp_path / "l.csv", "a,Unnamed: 0\n5,0\n6,1\n"))
    assert later.dropped_index is None and later.features == ("a", "Unnamed: 0")


def test_index_named_in_drop_needs_no_note(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    _frame().to_csv(path)
    for name in ("", "Unnamed: 0"):  # the header cell, or the name pandas gives it
        spec = inspect_table(path, target_col="label", drop=(name,))
        assert spec.features == ("x1", "x2") and spec.dropped_index is None and spec.notes == ()
        assert read_table(spec).n_rows == 23
    # an empty first header over values that do not count: dropping it by name works and is never checked
    messy = _write(tmp_path / "m.csv", ",a\n7,1\n3,2\n")
    assert read_table(inspect_table(messy, drop=["Unnamed: 0"])).X.tolist() == [[1], [2]]


def test_empty_first_header_that_is_not_an_index(tmp_path: Path) -> None:
    path = _write(tmp_path / "e.csv", ",a\n7,1\n3,2\n")
    with pytest.raises(DataError) as err:
        inspect_table(path)
    assert _one_line(err) == (
        "column 1 of 'e.csv' has no name in the header and its values are not the row numbers 0, 1, 2, ... that "
        "pandas' to_csv() writes as an index; name it, or pass --drop 'Unnamed: 0' to leave it out"
    )


def test_index_that_stops_counting_in_a_later_chunk(tmp_path: Path) -> None:
    # the first 1000 rows count 0..999 (an index, by inspect_table's sample); row 1501 breaks the count
    rows = [f"{i},{i % 7}" for i in range(1600)]
    rows[1500] = "1499,3"
    path = _write(tmp_path / "late.csv", ",a\n" + "\n".join(rows) + "\n")
    spec = inspect_table(path)
    assert spec.dropped_index == "" and spec.features == ("a",)
    chunks = iter_chunks(spec, chunk_rows=500)
    assert [next(chunks).row_offset for _ in range(3)] == [0, 500, 1000]  # the first 1500 rows are fine
    with pytest.raises(DataError) as err:
        next(chunks)
    assert _one_line(err) == (
        "the first column '' (the empty header cell) of 'late.csv' was left out as pandas' row index (its first "
        "rows count 0, 1, 2, ...), but data row 1501 holds '1499' instead of 1500; pass --drop 'Unnamed: 0' to "
        "leave it out anyway, or clean the file"
    )
    # a missing cell breaks the count too
    rows[1500] = ",3"
    gap = _write(tmp_path / "gap.csv", "Unnamed: 0,a\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"data row 1501 holds an empty cell instead of 1500; pass --drop 'Unnamed: 0'"):
        list(iter_chunks(inspect_table(gap), chunk_rows=700))


def test_parquet_index_columns(tmp_path: Path) -> None:
    df = _frame()
    # a frame with a non-default index: pyarrow stores it as a column named __index_level_0__
    stored = tmp_path / "i.parquet"
    df.set_axis(np.arange(len(df)) * 3 + 10).to_parquet(stored)
    spec = inspect_table(stored, target_col="label")
    assert "__index_level_0__" in spec.columns and spec.features == ("x1", "x2")
    assert "'__index_level_0__'" in spec.notes[0] and "reset_index()" in spec.notes[0]
    np.testing.assert_array_equal(read_table(spec).X, df[["x1", "x2"]].to_numpy(np.float32))
    # a to_csv() index carried into Parquet as 'Unnamed: 0'
    carried = tmp_path / "u.parquet"
    df.rename_axis("Unnamed: 0").reset_index().to_parquet(carried, index=False)
    spec_u = inspect_table(carried, target_col="label")
    assert spec_u.dropped_index == "Unnamed: 0" and spec_u.features == ("x1", "x2")
    assert read_table(spec_u).n_rows == len(df)


def test_baseline_detects_its_own_separator_and_ignores_an_index(tmp_path: Path) -> None:
    base = tmp_path / "b.csv"
    pd.DataFrame({"x2": [4.0], "x1": [-1.5], "other": [9]}).to_csv(base, sep=";")  # index and semicolons
    np.testing.assert_array_equal(read_baseline_row(base, ["x1", "x2"]), np.array([-1.5, 4.0], np.float32))
    tsv = _write(tmp_path / "b.tsv.gz", "")
    tsv.write_bytes(gzip.compress(b"x1\tx2\n0.5\t2\n"))
    np.testing.assert_array_equal(read_baseline_row(tsv, ["x1", "x2"]), np.array([0.5, 2.0], np.float32))
    # an empty first header over a non-index value is just an extra column for a baseline
    odd = _write(tmp_path / "odd.csv", ",x1,x2\n7,1,2\n")
    np.testing.assert_array_equal(read_baseline_row(odd, ["x2", "x1"]), np.array([2.0, 1.0], np.float32))


def test_tablespec_built_without_the_new_fields_reads_as_comma_csv(tmp_path: Path) -> None:
    path = _write(tmp_path / "d.csv", "a,b\n1,2\n3,4\n")
    spec = TableSpec(str(path), "csv", ("a", "b"), ("b",), None, None, "0" * 64)
    assert (spec.sep, spec.compression, spec.dropped_index, spec.notes) == (",", None, None, ())
    assert read_table(spec).X.tolist() == [[2], [4]]
    assert inspect_table(path).notes == () and inspect_table(path).dropped_index is None
