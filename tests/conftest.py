"""Shared helpers for the test suite: run the real `etl` command, read datasets back."""

from __future__ import annotations

from pathlib import Path

from etl.testing import read_parquet_dataset, read_rejects, run_cli

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
CORPORA = DATA / "corpora"


# the same helpers plugin authors get from etl.testing
run_etl = run_cli
read_dataset = read_parquet_dataset
__all__ = ["DATA", "ROOT", "read_dataset", "read_rejects", "run_etl", "write_pipeline"]


def write_pipeline(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
