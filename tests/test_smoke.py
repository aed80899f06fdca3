import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_seed_pipeline_end_to_end(tmp_path):
    out = tmp_path / "seed"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "etl.cli",
            "run",
            str(ROOT / "examples/seed.toml"),
            "--set",
            f"sink.path={out}",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    table = pq.read_table(next(out.glob("*.parquet")))
    assert table.num_rows == 1
    row = table.to_pylist()[0]
    assert row["publisher"] == "Global Times"
    assert row["word_count"] == 960
    assert row["char_count"] == 6441
