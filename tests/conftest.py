"""Shared helpers for the test suite: run the real `etl` command, read datasets back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"


def run_etl(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300):
    """Run the real CLI in a subprocess; return the CompletedProcess."""
    full_env = {**os.environ, "ETL_PROGRESS": "0", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "etl.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=timeout,
    )


def read_dataset(path: Path) -> pa.Table:
    """The committed articles of a dataset, as readers see them."""
    files = sorted(str(p) for p in Path(path).rglob("*.parquet") if "_etl" not in p.parts)
    if not files:
        return pa.table({})
    return pads.dataset(files, format="parquet").to_table()


def read_rejects(path: Path) -> pa.Table:
    files = sorted(str(p) for p in (Path(path) / "_etl" / "rejects").glob("*.rejects.pq"))
    if not files:
        from etl.context import REJECTS_SCHEMA

        return REJECTS_SCHEMA.empty_table()
    return pads.dataset(files, format="parquet").to_table()


def write_pipeline(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def etl():
    return run_etl
