"""A run's rejects, kept on disk past a few thousand: memory stays flat whatever their count.

Every bad record is a row of the rejects table, with its input and location; a file of two
million bad lines makes two million rows. As Python dicts they took 870 bytes each (1.7 GB
for that file, and a 58 KB gzip of 30 million lines ran out of memory). :class:`Rejects`
keeps up to :data:`SPILL_ROWS` of them as dicts; past that it writes them as Arrow record
batches (LZ4-compressed IPC) to temporary files and keeps only their count and reasons.

It is plain data for the executors: pickled (a worker's chunk result), it carries its rows
with it as Arrow IPC bytes, and the driver spills them again on its own disk.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import weakref
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from etl.accounting import printable
from etl.context import REJECTS_SCHEMA

#: rejects held as dicts before they are written to disk
SPILL_ROWS = 10_000
_IPC = pa.ipc.IpcWriteOptions(compression="lz4")


class Rejects:
    """The rejects of a stream or a run, in order: a list of dicts while few, spilled to
    temporary Arrow files past :data:`SPILL_ROWS`.

    ``len()``, iteration (dicts), ``reasons`` (a Counter) and :meth:`table` are what callers
    use; :meth:`extend` takes reject dicts or another ``Rejects``.
    """

    def __init__(self, rows: Iterable[dict[str, Any]] = ()) -> None:
        self._rows: list[dict[str, Any]] = []
        self._files: list[str] = []  # finished IPC streams, in order
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None
        self._sink: Any = None
        self._count = 0
        #: how many rejects have each reason
        self.reasons: Counter[str] = Counter()
        self._cleanup = weakref.finalize(self, _remove, self._files)
        self.extend(rows)

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def __repr__(self) -> str:
        return f"Rejects({self._count} rows, {len(self._files)} files on disk)"

    def extend(self, rows: Iterable[dict[str, Any]] | Rejects) -> None:
        """Add rejects at the end: reject dicts, or every row of another ``Rejects``."""
        if isinstance(rows, Rejects):
            if rows._files or rows._writer is not None:
                self._spill()
                for batch in rows.batches():
                    self._write(batch)
            else:
                self._rows.extend(rows._rows)
            self._count += rows._count
            self.reasons.update(rows.reasons)
        else:
            added = 0
            for row in rows:
                self._rows.append(row)
                self.reasons[row["reason"]] += 1
                added += 1
            self._count += added
        if len(self._rows) >= SPILL_ROWS:
            self._spill()

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Every reject, in order, as record batches of :data:`REJECTS_SCHEMA`."""
        self._finish()
        for path in list(self._files):
            with pa.OSFile(path, "rb") as f:
                yield from pa.ipc.open_stream(f)
        if self._rows:
            yield _batch(self._rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for batch in self.batches():
            yield from batch.to_pylist()

    def first_of_each_reason(self, first: int) -> list[dict[str, Any]]:
        """The first ``first`` rejects of each reason, in order, as dicts.

        A scan of each batch's reason column, with dicts made only for the rows it keeps:
        600,000 rejects as dicts took 3.4 s at the end of a run, for the summary's three
        examples of each reason.
        """
        left = {reason: min(first, n) for reason, n in self.reasons.items()}
        found: list[tuple[int, dict[str, Any]]] = []
        offset = 0
        for batch in self.batches():
            if not any(left.values()):
                break
            reasons = batch.column("reason")
            for reason, n in left.items():
                if not n:
                    continue
                hits = pc.indices_nonzero(pc.equal(reasons, reason))[:n]
                rows = batch.take(hits).to_pylist()
                found.extend(zip((offset + i for i in hits.to_pylist()), rows, strict=True))
                left[reason] = n - len(rows)
            offset += batch.num_rows
        return [row for _, row in sorted(found, key=lambda pair: pair[0])]

    def table(self, secrets: Iterable[str] = ()) -> pa.Table:
        """The rejects table; each of ``secrets`` (values from ``${ENV}``) shown as ``***``."""
        table = pa.Table.from_batches(list(self.batches()), schema=REJECTS_SCHEMA)
        secrets = sorted((s for s in secrets if s), key=len, reverse=True)
        if not secrets or not table.num_rows:
            return table
        for i, field in enumerate(table.schema):
            if pa.types.is_string(field.type):
                column = table.column(i)
                for secret in secrets:
                    column = pc.replace_substring(column, secret, "***")
                table = table.set_column(i, field, column)
        return table

    # spilling

    def _spill(self) -> None:
        if self._rows:
            rows, self._rows = self._rows, []
            self._write(_batch(rows))

    def _write(self, batch: pa.RecordBatch) -> None:
        if self._writer is None:
            fd, path = tempfile.mkstemp(prefix="etl-rejects-", suffix=".arrows")
            os.close(fd)
            self._files.append(path)
            self._sink = pa.OSFile(path, "wb")
            self._writer = pa.ipc.new_stream(self._sink, REJECTS_SCHEMA, options=_IPC)
        self._writer.write_batch(batch)

    def _finish(self) -> None:
        """Close the file being written (a later spill starts another one)."""
        if self._writer is not None:
            self._writer.close()
            self._sink.close()
            self._writer = self._sink = None

    def close(self) -> None:
        """Remove the files on disk (also done when the object is garbage collected)."""
        self._finish()
        self._cleanup()

    # crossing process boundaries (a worker's chunk result)

    def __getstate__(self) -> dict[str, Any]:
        if not self._count:
            return {"ipc": b"", "count": 0, "reasons": self.reasons}
        out = pa.BufferOutputStream()
        with pa.ipc.new_stream(out, REJECTS_SCHEMA, options=_IPC) as writer:
            for batch in self.batches():
                writer.write_batch(batch)
        return {"ipc": out.getvalue().to_pybytes(), "count": self._count, "reasons": self.reasons}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()
        if state["count"] > SPILL_ROWS:  # many: back to disk, on this machine
            for batch in pa.ipc.open_stream(state["ipc"]):
                self._write(batch)
        elif state["count"]:
            self._rows = pa.ipc.open_stream(state["ipc"]).read_all().to_pylist()
        self._count = state["count"]
        self.reasons = Counter(state["reasons"])


def _batch(rows: list[dict[str, Any]]) -> pa.RecordBatch:
    """Reject dicts as a batch; undecodable characters (lone surrogates of odd file names)
    replaced, so that spilling, and the commit after it, never fails on them."""
    try:
        return pa.RecordBatch.from_pylist(rows, schema=REJECTS_SCHEMA)
    except (UnicodeError, pa.ArrowException):
        clean = [{k: printable(v) for k, v in row.items()} for row in rows]
        return pa.RecordBatch.from_pylist(clean, schema=REJECTS_SCHEMA)


def _remove(paths: list[str]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            os.unlink(path)
