"""A run's account of its inputs: one row per input, kept as Arrow columns.

Every count of a run lives here: :class:`Totals` (what the sink was given, per unit) and the
streamer's :class:`~etl.stream.StreamStats` (what sources and transforms did, per unit) become
one table with :func:`input_rows`, without a Python object per input. The store commits it
beside the run's manifest as ``_etl/runs/<run>.inputs.pq`` and keeps the remembered rows as
the dataset's inputs memory.
At 100k inputs a list of dicts cost a third of a second to build, as long again to encode
as JSON, and 150 MB at commit; the columns cost a few milliseconds and a few MB.

In the run summary it is an :class:`InputRows`: a sequence of plain dicts for whoever reads
it (tests, hooks), built only when someone does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
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
        pa.field("fingerprint", pa.string()),
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


@dataclass
class Totals:
    """What the driver handed the sink: rows written and duplicates dropped, per unit."""

    inputs: int = 0
    written: int = 0
    duplicates: int = 0
    #: per unit index: rows written, and rows dropped as duplicates (grown as needed)
    unit_written: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    unit_duplicates: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def _grow(self, n: int) -> None:
        if n > len(self.unit_written):
            size = max(n, 2 * len(self.unit_written))
            written = np.zeros(size, np.int64)
            written[: len(self.unit_written)] = self.unit_written
            duplicates = np.zeros(size, np.int64)
            duplicates[: len(self.unit_duplicates)] = self.unit_duplicates
            self.unit_written, self.unit_duplicates = written, duplicates

    def add(self, units: np.ndarray, kept: np.ndarray | None) -> None:
        """Count a batch: ``units`` is each row's unit index, ``kept`` the rows written
        (None: all of them); the others were duplicates."""
        if not len(units):
            return
        counts = np.bincount(units)
        kept_counts = counts if kept is None else np.bincount(units[kept], minlength=len(counts))
        self._grow(len(counts))
        self.unit_written[: len(counts)] += kept_counts
        self.unit_duplicates[: len(counts)] += counts - kept_counts
        written = int(kept_counts.sum())
        self.written += written
        self.duplicates += len(units) - written

    def count_duplicates(self, units: np.ndarray) -> None:
        """Move rows counted as written to duplicates: ``units`` holds the unit index of
        each such row (the driver found their ids again)."""
        if not len(units):
            return
        counts = np.bincount(units)
        self._grow(len(counts))
        self.unit_written[: len(counts)] -= counts
        self.unit_duplicates[: len(counts)] += counts
        self.written -= len(units)
        self.duplicates += len(units)

    def __getstate__(self) -> dict[str, Any]:
        # a worker's account covers its chunk's units, but its arrays start at unit 0 (and
        # grow by doubling past the chunk): sent whole, the last chunk of a 100k-unit run
        # carried 1.6 MB of zeros and a run's chunks 84 MB in all; only the span of units
        # it counted travels
        state = self.__dict__.copy()
        counted = np.flatnonzero(self.unit_written | self.unit_duplicates)
        lead, end = (int(counted[0]), int(counted[-1]) + 1) if len(counted) else (0, 0)
        state["unit_written"] = self.unit_written[lead:end]
        state["unit_duplicates"] = self.unit_duplicates[lead:end]
        state["lead"] = lead
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        lead = state.pop("lead", 0)
        for name in ("unit_written", "unit_duplicates"):
            full = np.zeros(lead + len(state[name]), np.int64)
            full[lead:] = state[name]
            state[name] = full
        self.__dict__.update(state)

    def merge(self, other: Totals) -> None:
        """Add another account (a worker's, for other units) to this one."""
        self.inputs += other.inputs
        self.written += other.written
        self.duplicates += other.duplicates
        n = len(other.unit_written)
        self._grow(n)
        self.unit_written[:n] += other.unit_written
        self.unit_duplicates[:n] += other.unit_duplicates


def input_rows(
    units: Sequence[Any], source_names: list[str], stats: Any, totals: Totals
) -> InputRows:
    """One row per work unit: what it gave and where each record went, as columns.

    Args:
        units: the run's work units, by index.
        source_names: the name of each ``[[sources]]`` entry.
        stats: the merged :class:`~etl.stream.StreamStats`.
        totals: the driver's :class:`Totals`.
    """
    n = len(units)
    read = counts_array(stats.read, n)
    rejected = counts_array(stats.rejected, n)
    complete = np.ones(n, bool)
    if stats.retry:
        complete[[i for i in stats.retry if i < n]] = False
    digests = stats.digests
    names = pa.array(source_names, pa.string())
    source_index = np.fromiter((u.source_index for u in units), np.int32, count=n)
    columns = {
        "input": _strings([u.key for u in units]),
        "source": names.take(pa.array(source_index)),
        "size": pa.array([u.input.size for u in units], pa.int64()),
        "mtime": pa.array([u.input.mtime for u in units], pa.float64()),
        # what the input gave: articles read plus records the source rejected;
        # records = written + duplicates + dropped + rejected (docs/reliability.md)
        "records": read + rejected - counts_array(stats.rows_rejected, n),
        "read": read,
        "written": counts_array(totals.unit_written, n),
        "duplicates": counts_array(totals.unit_duplicates, n),
        "dropped": counts_array(stats.dropped, n),
        "rejected": rejected,
        "complete": complete,
        "content_hash": pa.array([digests.get(i) for i in range(n)], pa.string())
        if digests
        else pa.nulls(n, pa.string()),
        "key": pa.nulls(n, pa.string()),
        "remembered": np.zeros(n, bool),
        "fingerprint": pa.array([u.input.fingerprint for u in units], pa.string()),
    }
    return InputRows(pa.table(columns, schema=INPUTS_SCHEMA))


def _strings(values: list[str]) -> pa.Array:
    """Input names as a column; undecodable bytes of odd file names shown as the rejects
    table shows them (the key digest still names the exact input)."""
    try:
        return pa.array(values, pa.string())
    except (UnicodeError, pa.ArrowException):
        return pa.array([printable(v) for v in values], pa.string())


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def printable(value: Any) -> Any:
    """A string that encodes as UTF-8: undecodable bytes of a file name (surrogateescape)
    and other lone surrogates become one U+FFFD each."""
    if isinstance(value, str):
        try:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:  # other lone surrogates (a "\ud800" escape in JSON)
            return _LONE_SURROGATE.sub("\ufffd", value)
    return value


def count_rereads(summary: dict[str, Any], account: InputRows, known: pa.Array) -> None:
    """Say in ``summary`` which of its duplicates were re-reads, and whether it changed
    anything, so that every view of a run counts the same way.

    ``reread``: rows skipped as already present that came from inputs the dataset had
    ingested before (``--full``, or a changed file whose articles are mostly the same):
    they are the same articles read again, not duplicates in the corpus. ``duplicates``
    keeps counting them (an input's records still add up: records = written + duplicates
    + dropped + rejected), so a duplicate of the corpus is ``duplicates - reread``.
    ``changed``: the run wrote, replaced or rejected something.

    Args:
        summary: the run summary (``duplicates``, ``written``... filled in).
        account: the run's per-input account, with ``key`` filled in.
        known: the key digests of the inputs the dataset remembered before this run.
    """
    import pyarrow.compute as pc

    reread = 0
    if summary.get("duplicates") and len(known):
        table = account.table
        was_known = pc.is_in(table.column("key"), value_set=known)
        reread = int(pc.sum(table.column("duplicates").filter(was_known)).as_py() or 0)
    summary["reread"] = reread
    summary["changed"] = changed(summary)


def changed(summary: dict[str, Any]) -> bool:
    """A run that wrote, replaced or rejected something (else it left the dataset as it was)."""
    return any(summary.get(k) for k in ("written", "replaced", "rejected"))


def new_duplicates(summary: dict[str, Any]) -> int:
    """Duplicates of the corpus the run skipped: its duplicates less its re-reads."""
    return int(summary.get("duplicates") or 0) - int(summary.get("reread") or 0)


def first_inputs(rejects: list[dict[str, Any]], first: int = 3) -> dict[str, list[str]]:
    """The first ``first`` places of each reject reason, ``input (location)``, for the
    summary to name them."""
    out: dict[str, list[str]] = {}
    for reject in rejects:
        places = out.setdefault(reject["reason"], [])
        if len(places) < first:
            where = printable(reject.get("input") or "")
            location = reject.get("location")
            places.append(f"{where} ({location})" if location else where)
    return out
