"""A run's account of its inputs: one row per input, kept as Arrow columns.

The runner builds it from the streamer's counts (numpy arrays and counters indexed by work
unit) without a Python object per input, the sink commits it beside the run's manifest as
``_etl/runs/<run>.inputs.pq`` and keeps the remembered rows as the dataset's inputs memory.
At 100k inputs a list of dicts cost a third of a second to build, as long again to encode
as JSON, and 150 MB at commit; the columns cost a few milliseconds and a few MB.

In the run summary it is an :class:`InputRows`: a sequence of plain dicts for whoever reads
it (tests, hooks), built only when someone does.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

import numpy as np
import pyarrow as pa

#: one row per input of a run (docs/reliability.md says what each count means)
INPUTS_SCHEMA = pa.schema(
    [
        pa.field("input", pa.string()),
        pa.field("source", pa.string()),
        pa.field("size", pa.int64()),
        pa.field("mtime", pa.float64()),
        pa.field("records", pa.int64()),
        pa.field("read", pa.int64()),
        pa.field("written", pa.int64()),
        pa.field("duplicates", pa.int64()),
        pa.field("dropped", pa.int64()),
        pa.field("rejected", pa.int64()),
        pa.field("complete", pa.bool_()),
        pa.field("content_hash", pa.string()),
        pa.field("key", pa.string()),
        pa.field("remembered", pa.bool_()),
    ]
)


class InputRows(Sequence[dict[str, Any]]):
    """The per-input table of a run, readable as a list of dicts.

    Args:
        table: a table of :data:`INPUTS_SCHEMA`.
    """

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self._rows: list[dict[str, Any]] | None = None

    def rows(self) -> list[dict[str, Any]]:
        """Every row as a dict (built on first use)."""
        if self._rows is None:
            self._rows = self.table.to_pylist()
        return self._rows

    def __len__(self) -> int:
        return self.table.num_rows

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> Any:
        return self.rows()[index]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, InputRows):
            return self.table.equals(other.table)
        return isinstance(other, list) and self.rows() == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"InputRows({self.table.num_rows} inputs)"


def counts_array(counts: Mapping[int, int] | np.ndarray, n: int) -> np.ndarray:
    """Per-unit counts (a sparse ``{unit index: count}`` or an array) as ``n`` int64."""
    out = np.zeros(n, dtype=np.int64)
    if isinstance(counts, np.ndarray):
        m = min(n, len(counts))
        out[:m] = counts[:m]
    elif counts:
        index = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        values = np.fromiter(counts.values(), dtype=np.int64, count=len(counts))
        inside = index < n
        out[index[inside]] = values[inside]
    return out
