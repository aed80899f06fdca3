"""Run the real `etl` CLI and read datasets back (kept per package: plugins/*/tests are
separate rootless test folders, so nothing here is imported by name across packages)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pytest

DATA = Path(__file__).resolve().parent / "data"


def _run_etl(*args: str, cwd: Path | None = None, timeout: float = 300):
    env = {**os.environ, "ETL_PROGRESS": "0"}
    return subprocess.run(
        [sys.executable, "-m", "etl.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


def _read_dataset(path: Path) -> pa.Table:
    files = sorted(str(p) for p in Path(path).rglob("*.parquet") if "_etl" not in p.parts)
    if not files:
        return pa.table({})
    return pads.dataset(files, format="parquet").to_table()


def _read_rejects(path: Path) -> pa.Table:
    files = sorted(str(p) for p in (Path(path) / "_etl" / "rejects").glob("*.rejects.pq"))
    if not files:
        from etl.context import REJECTS_SCHEMA

        return REJECTS_SCHEMA.empty_table()
    return pads.dataset(files, format="parquet").to_table()


@pytest.fixture(scope="session")
def etl_cli():
    """(run_etl, read_dataset, read_rejects)."""
    return _run_etl, _read_dataset, _read_rejects


def _per_input(path: Path) -> dict[str, dict]:
    """The last run's accounting per input (written, duplicates, rejected...) from its manifest."""
    import json

    runs = sorted((Path(path) / "_etl" / "runs").glob("*.json"))
    manifest = json.loads(runs[-1].read_text(encoding="utf-8"))
    return {row["input"]: row for row in manifest["summary"]["per_input"]}


@pytest.fixture(scope="session")
def per_input():
    return _per_input
