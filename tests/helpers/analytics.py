"""Helpers of the analytics tests: example pipelines, and one function per analytics tool
that reads a whole etl dataset the way docs/analytics.md says.

Each reader returns a pyarrow-free summary: (rows, ids as a set, non-null count of a column).
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import ROOT, run_etl

EXAMPLES = ROOT / "examples" / "analytics"


def etl_ok(*args: str, **kwargs) -> str:
    """Run ``etl ARGS`` (in process) and return its stdout; fail the test if it fails."""
    proc = run_etl(*args, **kwargs)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc.stdout


def written(path: Path) -> list[int]:
    """Rows each committed run wrote, oldest first (from the run manifests)."""
    runs = sorted((Path(path) / "_etl" / "runs").glob("*.json"))
    return [json.loads(p.read_text())["summary"]["written"] for p in runs]


def _glob(root: Path) -> str:
    return str(Path(root) / "**" / "*.parquet")


def duckdb_read(root: Path, column: str):
    import duckdb

    con = duckdb.connect()
    src = f"read_parquet('{_glob(root)}', union_by_name = true, hive_partitioning = true)"
    names = [r[0] for r in con.sql(f"DESCRIBE SELECT * FROM {src}").fetchall()]
    ids = {r[0] for r in con.sql(f"SELECT id FROM {src}").fetchall()}
    rows = con.sql(f"SELECT count(*) FROM {src}").fetchall()[0][0]
    nonnull = (
        con.sql(f'SELECT count("{column}") FROM {src}').fetchall()[0][0] if column in names else 0
    )
    return rows, ids, nonnull


def polars_read(root: Path, column: str):
    import polars as pl

    from etl.evolution import unified_schema

    schema = pl.from_arrow(unified_schema(root).empty_table()).schema
    hive = {k: v for k, v in schema.items() if any(Path(root).glob(f"{k}=*"))}
    file_schema = {k: v for k, v in schema.items() if k not in hive}
    lf = pl.scan_parquet(
        _glob(root),
        schema=file_schema,
        hive_schema=hive or None,
        hive_partitioning=bool(hive),
        missing_columns="insert",
        # a column widened by a later run (int32 -> int64) is cast up in the older files
        cast_options=pl.ScanCastOptions(integer_cast="upcast", float_cast="upcast"),
    )
    df = lf.select("id", pl.col(column) if column in schema else pl.lit(None)).collect()
    return df.height, set(df["id"].to_list()), df[df.columns[1]].count()


def polars_diagonal_read(root: Path, column: str):
    """Without etl installed: concatenate per-file scans, columns unified by name."""
    import polars as pl

    files = sorted(Path(root).glob("**/*.parquet"))
    lf = pl.concat(
        [pl.scan_parquet(f, hive_partitioning=True) for f in files], how="diagonal_relaxed"
    )
    df = lf.collect()
    return df.height, set(df["id"].to_list()), df[column].count() if column in df.columns else 0


def pandas_read(root: Path, column: str):
    import pandas as pd

    from etl.evolution import unified_schema

    df = pd.read_parquet(root, engine="pyarrow", schema=unified_schema(root))
    return len(df), set(df["id"]), int(df[column].count()) if column in df.columns else 0


def pyarrow_read(root: Path, column: str):
    import pyarrow.dataset as pads

    from etl.evolution import unified_schema

    ds = pads.dataset(
        root,
        format="parquet",
        schema=unified_schema(root),
        partitioning="hive",
        ignore_prefixes=["_", "."],
    )
    table = ds.to_table(columns=["id", column] if column in ds.schema.names else ["id"])
    nonnull = table.num_rows - table.column(column).null_count if table.num_columns > 1 else 0
    return table.num_rows, set(table.column("id").to_pylist()), nonnull


READERS = {
    "duckdb": duckdb_read,
    "polars": polars_read,
    "polars-diagonal": polars_diagonal_read,
    "pandas": pandas_read,
    "pyarrow.dataset": pyarrow_read,
}
