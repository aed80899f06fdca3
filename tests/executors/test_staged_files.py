"""The parquet sink's side of distributed runs: worker-staged files, adopted by the driver."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from etl.builtin.parquet import ParquetSink
from etl.context import Context, RunInfo, rejects_table
from etl.schema import ARTICLE_SCHEMA
from etl.stream import INPUT_COLUMN
from tests.helpers import read_dataset


def _batch(run: RunInfo, texts: list[str], inputs: list[int]) -> pa.RecordBatch:
    batch = Context(run, "text", "[[sources]] #1").articles(text=texts)
    return batch.append_column(INPUT_COLUMN, pa.array(np.array(inputs, dtype=np.int32)))


def test_adopt_drops_ids_repeated_across_workers_and_rewrites_only_those_files(tmp_path):
    run = RunInfo(run_id="20260101T000000Z-00000000", started_at=datetime.now(UTC))
    sink = ParquetSink({"path": str(tmp_path / "ds")}, section="[sink]")
    sink.open(run, ARTICLE_SCHEMA)
    first = sink.worker_writer(run, ARTICLE_SCHEMA, "worker A/1")
    first.write(_batch(run, ["alpha", "beta", "gamma"], [0, 1, 2]))
    second = sink.worker_writer(run, ARTICLE_SCHEMA, "worker B")
    # within one task the writer drops the repeat itself; across tasks the driver does
    result = second.write(
        _batch(run, ["gamma", "delta", "delta", "alpha", "omega"], [3, 4, 5, 5, 6])
    )
    assert (result.written, result.duplicates) == (4, 1)
    files_a, files_b = first.close(), second.close()
    assert [f.staged.rsplit("/", 1)[1] for f in files_a] == ["worker_A_1-00001.staged"]
    assert files_b[0].input_values == [3, 4, 5, 6] and files_b[0].input_lengths == [1, 1, 1, 1]

    assert sink.adopt(files_a) == {}
    assert sink.adopt(files_b) == {3: 1, 5: 1}
    adopted = [f.staged.name for f in sink.finished]
    assert adopted == ["worker_A_1-00001.staged", "worker_B-00001-dedup.staged"]
    assert [f.rows for f in sink.finished] == [3, 2]
    assert not (tmp_path / "ds" / files_b[0].staged).exists()

    sink.commit(rejects_table([]), {"run_id": run.run_id})
    table = read_dataset(tmp_path / "ds")
    assert sorted(table.column("text").to_pylist()) == ["alpha", "beta", "delta", "gamma", "omega"]
    assert not list((tmp_path / "ds" / "_etl" / "staging").glob("*"))


def test_worker_files_roll_over_and_keep_the_input_of_every_row(tmp_path):
    run = RunInfo(run_id="20260101T000000Z-00000001", started_at=datetime.now(UTC))
    sink = ParquetSink({"path": str(tmp_path / "ds"), "max_rows_per_file": 3}, section="[sink]")
    sink.open(run, ARTICLE_SCHEMA)
    writer = sink.worker_writer(run, ARTICLE_SCHEMA, "w")
    writer.write(_batch(run, [f"text {i}" for i in range(7)], [0, 0, 1, 1, 1, 2, 9]))
    files = writer.close()
    assert [f.rows for f in files] == [3, 3, 1]
    assert [(f.input_values, f.input_lengths) for f in files] == [
        ([0, 1], [2, 1]),
        ([1, 2], [2, 1]),
        ([9], [1]),
    ]
    staging = tmp_path / "ds" / "_etl" / "staging"
    assert list(staging.rglob("*.staged"))  # the files abort() must remove
    sink.abort()
    assert staging.is_dir() and not list(staging.iterdir())
