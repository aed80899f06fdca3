"""Small helpers on record batches, for the streamer (etl.stream)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pyarrow as pa


def timed(batches: Iterator[Any], seconds: Counter[str], key: str) -> Iterator[Any]:
    """``batches``, the time spent making each added to ``seconds[key]``."""
    clock = time.perf_counter
    while True:
        started = clock()
        try:
            batch = next(batches)
        except StopIteration:
            seconds[key] += clock() - started
            return
        seconds[key] += clock() - started
        yield batch


def with_declared(batch: pa.RecordBatch, declared: pa.Schema) -> pa.RecordBatch:
    """``batch`` plus null columns for what ``declared`` has and it lacks (set them, or drop)."""
    names = set(batch.schema.names)
    for column in declared:
        if column.name not in names:
            batch = batch.append_column(column, pa.nulls(batch.num_rows, column.type))
    return batch


def concat(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(batches) == 1:
        return batches[0]
    return pa.concat_batches(batches)
