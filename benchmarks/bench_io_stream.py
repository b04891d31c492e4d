"""Peak memory and time of streaming a large table through ``audit.io.tabular.iter_chunks``.

Writes a CSV (and optionally Parquet) of ``--rows`` x ``--cols`` float features plus an integer target under
/tmp, then reads it in a fresh child process per chunk size, so each peak RSS (``resource.getrusage`` maxrss)
belongs to that read alone. The child also reports its RSS after imports, before reading, so the growth due to
reading is visible on its own.

    python benchmarks/bench_io_stream.py                      # 1,000,000 x 20, chunk 65536
    python benchmarks/bench_io_stream.py --chunk-rows 8192 65536 262144 --parquet
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def _rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _write_tables(csv_path: Path, pq_path: Path | None, rows: int, cols: int, block: int = 125_000) -> None:
    """Write the same random table as CSV (and Parquet), block by block so the parent stays small."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    names = [f"f{j}" for j in range(cols)] + ["target"]
    csv_writer = pq_writer = None
    try:
        for start in range(0, rows, block):
            n = min(block, rows - start)
            x = rng.normal(size=(n, cols))
            table = pa.table([*(x[:, j] for j in range(cols)), rng.integers(0, 2, n)], names=names)
            if csv_writer is None:
                csv_writer = pacsv.CSVWriter(csv_path, table.schema)
                pq_writer = pq.ParquetWriter(pq_path, table.schema) if pq_path is not None else None
            csv_writer.write_table(table)
            if pq_writer is not None:
                pq_writer.write_table(table, row_group_size=block)
    finally:
        for writer in (csv_writer, pq_writer):
            if writer is not None:
                writer.close()


def _child(path: str, chunk_rows: int) -> None:
    from audit.io.tabular import inspect_table, iter_chunks

    before = _current_rss_mib()
    t0 = time.perf_counter()
    spec = inspect_table(path, target_col="target")  # includes the file's sha256
    t1 = time.perf_counter()
    rows, checksum = 0, 0.0
    for chunk in iter_chunks(spec, chunk_rows):
        rows += chunk.n_rows
        checksum += float(chunk.X[:, 0].sum(dtype="float64"))
    t2 = time.perf_counter()
    print(
        json.dumps(
            {
                "format": spec.format,
                "chunk_rows": chunk_rows,
                "rows": rows,
                "features": len(spec.features),
                "inspect_s": round(t1 - t0, 2),
                "read_s": round(t2 - t1, 2),
                "rows_per_s": round(rows / (t2 - t1)),
                "rss_after_imports_mib": round(before, 1),
                "peak_rss_mib": round(_rss_mib(), 1),
                "checksum": checksum,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cols", type=int, default=20)
    parser.add_argument("--chunk-rows", type=int, nargs="+", default=[65536])
    parser.add_argument("--path", default="/tmp/audit_bench_io.csv")
    parser.add_argument("--parquet", action="store_true", help="also time the same table as Parquet")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--child", nargs=2, metavar=("PATH", "CHUNK_ROWS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]))
        return

    csv_path = Path(args.path)
    pq_path = csv_path.with_suffix(".parquet") if args.parquet else None
    paths = [csv_path] + ([pq_path] if pq_path is not None else [])
    t0 = time.perf_counter()
    _write_tables(csv_path, pq_path, args.rows, args.cols)
    sizes = ", ".join(f"{p} {p.stat().st_size / 2**20:.0f} MiB" for p in paths)
    print(f"wrote {sizes} in {time.perf_counter() - t0:.1f}s")
    try:
        for path in paths:
            for chunk_rows in args.chunk_rows:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", str(path), str(chunk_rows)],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                print(out.stdout.strip())
    finally:
        if not args.keep:
            for path in paths:
                path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
