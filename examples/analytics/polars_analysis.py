"""Polars over an etl dataset: lazy scans, grown schemas, partitions and the rejects table.

python examples/analytics/polars_analysis.py out/analytics/news
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl

from etl.evolution import unified_schema


def scan(dataset: str | Path) -> pl.LazyFrame:
    """All committed articles as one LazyFrame.

    Polars takes the first file's columns unless told otherwise, so give it the dataset's
    unified schema (``_etl/schema.json``) and let it insert the columns an older file lacks.
    Partition folders (``language=en/``) are hive columns.
    """
    root = Path(dataset)
    unified = unified_schema(root)
    if unified is None:
        raise SystemExit(f"{root}: no etl dataset with data files there")
    schema = pl.from_arrow(unified.empty_table()).schema
    hive = {k: v for k, v in schema.items() if any(root.glob(f"{k}=*"))}
    return pl.scan_parquet(
        root / "**" / "*.parquet",
        schema={k: v for k, v in schema.items() if k not in hive},
        hive_schema=hive or None,
        hive_partitioning=bool(hive),
        missing_columns="insert",
        # a column widened by a later run (int32 -> int64) is cast up in the older files
        cast_options=pl.ScanCastOptions(integer_cast="upcast", float_cast="upcast"),
    )


def scan_without_etl(dataset: str | Path) -> pl.LazyFrame:
    """The same without etl installed: one scan per file, columns unified by name."""
    files = sorted(Path(dataset).glob("**/*.parquet"))
    return pl.concat(
        [pl.scan_parquet(f, hive_partitioning=True) for f in files], how="diagonal_relaxed"
    )


def rejects(dataset: str | Path) -> pl.DataFrame:
    files = sorted((Path(dataset) / "_etl" / "rejects").glob("*.rejects.pq"))
    if not files:
        return pl.DataFrame(
            {"reason": [], "len": []}, schema={"reason": pl.String, "len": pl.UInt32}
        )
    return pl.scan_parquet(files).group_by("reason").len().sort("len", descending=True).collect()


def main(dataset: str) -> dict:
    articles = scan(dataset)
    per_publisher = (
        articles.group_by("publisher")
        .agg(pl.len().alias("articles"), pl.col("word_count").median().alias("median_words"))
        .sort(["articles", "publisher"], descending=[True, False])
        .collect()
    )
    print(per_publisher)
    monthly = (
        articles.filter(pl.col("published_at").is_not_null())
        .with_columns(pl.col("published_at").dt.truncate("1mo").alias("month"))
        .group_by("month")
        .agg(pl.len().alias("articles"))
        .sort("month")
        .collect()
    )
    print(monthly)
    names = articles.collect_schema().names()
    if "length_bucket" in names:
        # a column a later run added: rows from before it are null
        print(articles.group_by("length_bucket").len().sort("length_bucket").collect())
    reasons = rejects(dataset)
    print(reasons)
    summary = {
        "articles": articles.select(pl.len()).collect().item(),
        "per_publisher": {
            str(r["publisher"]): r["articles"] for r in per_publisher.iter_rows(named=True)
        },
        "rejects": {r["reason"]: r["len"] for r in reasons.iter_rows(named=True)},
        "without_etl": scan_without_etl(dataset).select(pl.len()).collect().item(),
    }
    print("SUMMARY", json.dumps(summary, sort_keys=True))
    return summary


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "out/analytics/news")
