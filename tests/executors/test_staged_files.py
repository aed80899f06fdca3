"""The parquet sink's side of distributed runs: worker-written files, adopted by the driver.

The framework decides which rows are duplicates (tests/executors/test_executors.py runs the
whole thing); here the sink's part: files that record every row's id and unit, rewritten
only where the driver's mask drops rows, committed by ``commit(prepare(...))``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from etl.context import Context, RunInfo
from etl.schema import ARTICLE_SCHEMA
from etl.sinks.parquet import ParquetSink
from tests.helpers import read_dataset


def _batch(run: RunInfo, texts: list[str]) -> pa.RecordBatch:
    return Context(run, "text", "[[sources]] #1").articles(text=texts)


def _units(values: list[int]) -> np.ndarray:
    return np.array(values, dtype=np.int32)


def test_adopt_rewrites_only_the_files_the_driver_masks(tmp_path):
    run = RunInfo(run_id="20260101T000000Z-00000000", started_at=datetime.now(UTC))
    sink = ParquetSink({"path": str(tmp_path / "ds")}, section="[sink]")
    sink.open(run, ARTICLE_SCHEMA)
    first = sink.worker_writer(run, ARTICLE_SCHEMA, "worker A/1")
    first.write(_batch(run, ["alpha", "beta", "gamma"]), _units([0, 1, 2]))
    second = sink.worker_writer(run, ARTICLE_SCHEMA, "worker B")
    second.write(_batch(run, ["gamma", "delta", "alpha", "omega"]), _units([3, 4, 5, 6]))
    files_a, files_b = first.close(), second.close()
    assert [f.path.rsplit("/", 1)[1] for f in files_a] == ["worker_A_1-00001.staged"]
    assert files_b[0].input_values == [3, 4, 5, 6] and files_b[0].input_lengths == [1, 1, 1, 1]
    assert (
        files_b[0].ids == _batch(run, ["gamma", "delta", "alpha", "omega"]).column("id").to_pylist()
    )

    sink.adopt(files_a, [None])
    sink.adopt(files_b, [np.array([False, True, False, True])])
    adopted = [f.staged.name for f in sink.finished]
    assert adopted == ["worker_A_1-00001.staged", "worker_B-00001-dedup.staged"]
    assert [f.rows for f in sink.finished] == [3, 2]
    assert not (tmp_path / "ds" / files_b[0].path).exists()

    payload = sink.prepare({})
    sink.commit(payload)
    sink.commit(payload)  # idempotent: recovery may call it again
    table = read_dataset(tmp_path / "ds")
    assert sorted(table.column("text").to_pylist()) == ["alpha", "beta", "delta", "gamma", "omega"]


def test_worker_files_roll_over_and_keep_the_input_of_every_row(tmp_path):
    run = RunInfo(run_id="20260101T000000Z-00000001", started_at=datetime.now(UTC))
    sink = ParquetSink({"path": str(tmp_path / "ds"), "max_rows_per_file": 3}, section="[sink]")
    sink.open(run, ARTICLE_SCHEMA)
    writer = sink.worker_writer(run, ARTICLE_SCHEMA, "w")
    writer.write(_batch(run, [f"text {i}" for i in range(7)]), _units([0, 0, 1, 1, 1, 2, 9]))
    files = writer.close()
    assert [f.rows for f in files] == [3, 3, 1]
    assert [(f.input_values, f.input_lengths) for f in files] == [
        ([0, 1], [2, 1]),
        ([1, 2], [2, 1]),
        ([9], [1]),
    ]
    assert sum(len(f.ids) for f in files) == 7
    staging = tmp_path / "ds" / "_etl" / "staging"
    assert list(staging.rglob("*.staged"))  # the files abort() must remove
    writer.abort()
    sink.abort()
    assert not list(staging.rglob("*.staged"))
