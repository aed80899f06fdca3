"""The driver's side of a run, as executors see it: the :class:`~etl.executors.api.Job`.

It owns exactly-once within a run: every batch or worker file passes the id filter here
(the store's ids plus those written earlier in the run, first occurrence in unit order
wins) before the sink sees it, and every row is counted here against its input. In merge
mode a second filter keeps the first row of each key in the run (a later one with the
same key is counted a duplicate); the rows of committed keys are replaced at commit.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from etl.accounting import Totals
from etl.decisions import ROW_COLUMN
from etl.errors import RunError
from etl.executors.api import Answer, ChunkResult, Job, pack_units, raise_error
from etl.plugin import StagedFile, WriteResult
from etl.run.decide import Decider
from etl.run.split import nothing_rejects, split_units
from etl.schema import first_seen
from etl.stream import INPUT_COLUMN, StreamStats

if TYPE_CHECKING:
    from etl.decisions import Noted
    from etl.progress import Progress
    from etl.run.plan import Plan


class DriverJob(Job):
    """A plan's work, with the run's id filter and account.

    Args:
        plan: the checked plan (its units already filtered by the inputs memory).
        seen: ids the dataset holds (empty unless appending); ids written are added.
        keys_seen: merge mode: keys written earlier in the run (by its earlier checkpoints);
            keys written are added.
    """

    def __init__(self, plan: Plan, seen: set[str], keys_seen: set[Any] | None = None) -> None:
        self.plan = plan
        self.run = plan.run
        #: what the executor runs: big inputs in parts (etl.run.split); everything counted
        #: here is mapped back to the plan's inputs first
        self.parts = split_units(plan)
        self.units = self.parts.units
        self.target = plan.target()
        self.sink = plan.sink
        self.worker_files = plan.workers_write_files()
        self.seen = seen
        #: merge mode: the key column, and the keys written by this run
        self.key = plan.sink.key() if plan.sink.mode() == "merge" else None
        self._keys_seen: set[Any] = set() if keys_seen is None else keys_seen
        self._keys: list[pa.Array] = []
        #: the unit index of each id written (for the id index's inputs)
        self._units: list[np.ndarray] = []
        self.totals = Totals()
        self._stats = StreamStats()
        #: the streamer of stream_here while it runs (progress reads its rejects)
        self._live: Any = None
        #: ids written by this run, in pieces (for the store's id index)
        self._ids: list[pa.Array] = []
        # chunk results wait here until every earlier chunk is in
        self._waiting: dict[int, ChunkResult] = {}
        self._next = 0
        #: ids of chunks that asked, waiting for their turn
        self._asks: dict[int, tuple[list[str], Noted | None]] = {}
        #: chunks before this one have their ids in ``seen``
        self._next_decision = 0
        #: answers given to chunks not yet taken: a chunk whose worker died runs again
        #: elsewhere and asks again, and gets the same answer
        self._given: dict[int, tuple[list[str], Any]] = {}
        self.answered = 0
        #: worker files that held a duplicate and were rewritten without it
        self.rewritten = 0
        #: a transform that decides on the driver decides here, chunk by chunk in order
        self.decider = Decider(plan, self._stats)

    # in this process

    def stream_here(self, progress: Callable[[int, int], None] | None = None) -> None:
        streamer = self._live = self.plan.streamer()
        started = 0

        def finished() -> int:
            """Units before the one being read (or waiting in a chunk of a source that
            reads many at once), and before any row still held back to join a batch, are
            finished: all their articles were written or dropped."""
            marks = (started, streamer.reading, streamer.held_from)
            return min(m for m in marks if m is not None)

        def units() -> Any:
            nonlocal started
            for index, unit in enumerate(self.units):
                started = index
                # every 64th unit: the display is throttled anyway, and a run of 100k
                # small inputs should not pay for a report per input
                if progress is not None and not index & 63:
                    progress(finished(), self.totals.written)
                yield index, unit

        try:
            for batch in streamer.stream(units()):
                self.write(batch)
                if progress is not None:
                    progress(finished(), self.totals.written)
        finally:
            self._live = None
            self._stats.merge(self.parts.stats(streamer.stats))

    def write(self, batch: pa.RecordBatch) -> None:
        """One streamed batch (with the input column): drop known ids, write, account."""
        units = self.parts.rows(batch.column(INPUT_COLUMN).to_numpy(zero_copy_only=False))
        clean = batch.drop_columns([INPUT_COLUMN])
        keep = first_seen(clean.column("id").to_pylist(), self.seen)
        mask = None if keep is None else np.asarray(keep, bool)
        if self.key is not None:
            mask = self._first_of_keys(clean.column(self.key).to_pylist(), mask)
        if mask is not None:
            clean = clean.filter(pa.array(mask))
        self.totals.add(units, mask)
        if clean.num_rows:
            started = time.perf_counter()
            self.sink.write(clean)
            self._stats.seconds[self.sink.section] += time.perf_counter() - started
            self._ids.append(clean.column("id"))
            self._units.append(units if mask is None else units[mask])
            if self.key is not None:
                self._keys.append(clean.column(self.key))
        duplicates = batch.num_rows - clean.num_rows
        self.plan.hook.etl_after_batch_written(
            run=self.run,
            batch=clean,
            result=WriteResult(
                clean.num_rows, duplicates, None if mask is None else pa.array(mask)
            ),
        )

    def _first_of_keys(self, keys: list[Any], mask: np.ndarray | None) -> np.ndarray | None:
        """``mask`` narrowed to the first row of each key in the run (a null key is no key)."""
        seen = self._keys_seen
        keep = np.ones(len(keys), bool) if mask is None else mask.copy()
        for i, key in enumerate(keys):
            if not keep[i] or key is None:
                continue
            if key in seen:
                keep[i] = False
            else:
                seen.add(key)
        return None if mask is None and keep.all() else keep

    # on workers

    def worker_spec(self) -> bytes:
        from etl.run.worker import make_spec

        return pickle.dumps(make_spec(self.plan), protocol=pickle.HIGHEST_PROTOCOL)

    def probe_unit(self) -> bytes | None:
        from etl.run.reach import first_unit

        index = first_unit(self.plan)
        return None if index is None else pack_units(self.units, index, index + 1)

    def take(self, result: ChunkResult) -> list[Answer]:
        if result.error is not None:
            raise_error(result.error)
        self._waiting[result.chunk] = result
        while self._next in self._waiting:
            ready = self._waiting.pop(self._next)
            self._given.pop(self._next, None)
            self._next += 1
            if ready.stats is not None:
                self._stats.merge(self.parts.stats(ready.stats))
            noted = ready.noted
            dropped = None if noted is None else self.decider.decide(ready.chunk, noted)
            if ready.batches is not None:
                self._write_shipped(ready.batches, dropped)
            else:
                if ready.totals is not None:
                    self.totals.merge(self.parts.totals(ready.totals))
                judged = None
                if noted is not None and dropped is not None:
                    judged = self._count_unwritten(noted, dropped)
                self._adopt(ready.files, ready.decided, judged)
        return self._answer()

    def _write_shipped(self, data: bytes, dropped: np.ndarray | None) -> None:
        """Batches a worker shipped; ``dropped``: the driver's decision by row number."""
        if not data:
            return
        with pa.ipc.open_stream(data) as reader:
            for batch in reader:
                if dropped is not None:
                    gone = dropped[batch.column(ROW_COLUMN).to_numpy(zero_copy_only=False)]
                    batch = batch.drop_columns([ROW_COLUMN])
                    if gone.any():
                        units = batch.column(INPUT_COLUMN).to_numpy(zero_copy_only=False)
                        self.decider.count_dropped(self.parts.rows(units[gone]))
                        batch = batch.filter(pa.array(~gone))
                self.write(batch)

    def _count_unwritten(self, noted: Noted, dropped: np.ndarray) -> tuple[pa.Array, np.ndarray]:
        """Count the rows that ended on a worker but went into no file (an id repeated in
        the chunk, or not new in the driver's answer): dropped by the deciding transform,
        or duplicates. Returns the ids written to files, and whether each is dropped."""
        ends, written, ids = noted.all_ends()
        units = self.parts.rows(noted.all_units().astype(np.int64)[ends])
        gone = dropped[ends]
        self.decider.count_dropped(units[~written & gone])
        duplicates = units[~written & ~gone]
        self.totals.add(duplicates, np.zeros(len(duplicates), bool))
        return pa.array(ids, pa.string()), gone[written]

    def _adopt(
        self,
        files: list[StagedFile],
        decided: bool,
        judged: tuple[pa.Array, np.ndarray] | None = None,
    ) -> None:
        """Workers' files, in unit order: find the rows whose ids were seen, then adopt.

        ``judged``: the ids written and whether the deciding transform drops each, when a
        transform decides on the driver (the worker counted nothing of its files then)."""
        keep: list[Any] = []
        for item in files:
            mask = None
            units = self.parts.rows(
                np.repeat(
                    np.asarray(item.input_values, np.int64),
                    np.asarray(item.input_lengths, np.int64),
                )
            )
            if judged is not None:
                keep.append(self._decided_file(item, units, decided, judged))
                continue
            if not decided:
                found = first_seen(item.ids, self.seen)
                mask = None if found is None else np.asarray(found, bool)
            if mask is not None:
                self.rewritten += int(mask.any())
                self.totals.count_duplicates(units[~mask])
                self._ids.append(pa.array(item.ids, pa.string()).filter(pa.array(mask)))
                self._units.append(units[mask])
            else:
                self._ids.append(pa.array(item.ids, pa.string()))
                self._units.append(units)
            keep.append(mask)
        if files:
            self.sink.adopt(files, keep)  # type: ignore[attr-defined]

    def _decided_file(
        self,
        item: StagedFile,
        units: np.ndarray,
        decided: bool,
        judged: tuple[pa.Array, np.ndarray],
    ) -> np.ndarray | None:
        """The keep mask of a worker file whose rows the deciding transform judged."""
        written, dropped = judged
        ids = pa.array(item.ids, pa.string())
        # every id of a file is among the chunk's written ids (unique in a chunk)
        gone = dropped[pc.index_in(ids, value_set=written).to_numpy(zero_copy_only=False)]
        alive = ~gone
        mask = alive.copy() if gone.any() else None
        if not decided:
            found = first_seen(ids.filter(pa.array(alive)).to_pylist(), self.seen)
            if found is not None:
                mask = alive.copy() if mask is None else mask
                mask[alive] = found
        self.decider.count_dropped(units[gone])
        self.totals.add(units[alive], None if mask is None else mask[alive])
        kept = alive if mask is None else mask
        self._ids.append(ids.filter(pa.array(kept)))
        self._units.append(units[kept])
        if mask is not None:
            self.rewritten += int(mask.any())
        return mask

    def ask(self, chunk: int, ids: list[str], noted: Noted | None = None) -> list[Answer]:
        given = self._given.get(chunk)
        if given is not None:
            if given[0] != ids:
                raise RunError(
                    f"chunk {chunk} read other articles when it ran again (its first worker "
                    "died): an input changed during the run; nothing was committed",
                    hint="run the pipeline again once the inputs stay put",
                )
            return [(chunk, given[1])]
        self._asks[chunk] = (ids, noted)
        return self._answer()

    def known_ids(self, ids: list[str]) -> list[bool] | None:
        return first_seen(ids, self.seen, claim=False)

    def _decided_keep(self, chunk: int, ids: list[str], noted: Noted) -> list[bool] | None:
        """Which of a holding worker's rows to write: not dropped by the deciding
        transform (decided now, kept for the chunk's adoption) and new."""
        dropped = self.decider.given[chunk] = self.decider.dropped(noted)
        alive = ~dropped[noted.ends[0]]
        found = first_seen([i for i, a in zip(ids, alive, strict=True) if a], self.seen)
        keep = alive.copy()
        if found is not None:
            keep[alive] = found
        return None if keep.all() else keep.tolist()

    def _answer(self) -> list[Answer]:
        """Answer questions strictly in chunk order: chunk k once every earlier chunk was
        answered or, if it did not ask, adopted."""
        answers: list[Answer] = []
        while True:
            chunk = self._next_decision
            if chunk in self._asks:
                ids, noted = self._asks.pop(chunk)
                if noted is None:
                    keep = first_seen(ids, self.seen)
                else:  # the deciding transform decides, once: a re-asked chunk gets this
                    keep = self._decided_keep(chunk, ids, noted)
                self._given[chunk] = (ids, keep)
                answers.append((chunk, keep))
                self.answered += 1
            elif chunk >= self._next:  # neither asked nor adopted yet
                break
            self._next_decision += 1
        return answers

    # results

    def stats(self) -> StreamStats:
        return self._stats

    def progress(self) -> Progress:
        """Progress over the units, counting a split input once (when all its parts are done)."""
        from etl.progress import Progress

        return Progress(self.units, rejected=self.rejected, owner=self.parts.owner)

    def rejected(self) -> int:
        live = self._live
        return len(self._stats.rejects) + (len(live.stats.rejects) if live is not None else 0)

    def written(self) -> int:
        return self.totals.written

    def summary_counter(self, key: str, n: int) -> None:
        if n:
            self._stats.counters[key] += n

    def finish(self) -> None:
        """After the executor: reject each split input whose parts gave nothing at all."""
        nothing_rejects(self.plan, self.parts, self._stats)

    def count(self, executor: str) -> None:
        """Say in the run summary how duplicates across workers' chunks were dropped."""
        self.summary_counter(f"{executor}:chunks deduplicated before writing", self.answered)
        self.summary_counter(f"{executor}:files rewritten to drop duplicates", self.rewritten)
        split, parts = self.parts.counts()
        self.summary_counter(f"{executor}:inputs split into parts", split)
        self.summary_counter(f"{executor}:parts of split inputs", parts)

    def ids(self) -> pa.Array:
        """Every id this run wrote."""
        return _concat(self._ids)

    def id_units(self) -> np.ndarray:
        """The unit index of each id of :meth:`ids`."""
        return np.concatenate(self._units) if self._units else np.zeros(0, np.int64)

    def keys(self) -> pa.Array:
        """Merge mode: the key of every row this run wrote (nulls left out)."""
        keys = _concat(self._keys)
        return keys.filter(keys.is_valid()) if len(keys) else keys


def _concat(pieces: list[Any]) -> pa.Array:
    if not pieces:
        return pa.array([], pa.string())
    arrays = [a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a for a in pieces]
    return pa.concat_arrays(arrays)
