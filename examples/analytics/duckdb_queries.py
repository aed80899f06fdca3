"""Run queries.sql over an etl dataset with DuckDB and print each result.

python examples/analytics/duckdb_queries.py out/analytics/news
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb

SQL = Path(__file__).with_name("queries.sql")


def run(dataset: str) -> dict[str, list[tuple]]:
    """name -> rows, for every ``-- name:`` query in queries.sql."""
    con = duckdb.connect()
    con.execute("SET VARIABLE dataset = ?", [str(dataset)])
    preamble, *named = SQL.read_text(encoding="utf-8").split("-- name: ")
    con.execute(preamble)
    results: dict[str, list[tuple]] = {}
    for block in named:
        name, _, sql = block.partition("\n")
        try:
            results[name.strip()] = con.sql(sql).fetchall()
        except duckdb.IOException as exc:
            if "No files found" not in str(exc):
                raise
            results[name.strip()] = []  # e.g. a dataset without rejects
    return results


if __name__ == "__main__":
    for name, rows in run(sys.argv[1] if len(sys.argv) > 1 else "out/analytics/news").items():
        print(f"-- {name}")
        for row in rows[:20]:
            print("  ", *row)
