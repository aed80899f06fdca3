"""The worker side of a run: read units, join small batches, apply transforms.

Executors call :func:`stream_units` wherever they run it (this process, a worker process, a
Dask worker); it needs only the plan's plugins and yields full batches that carry the hidden
column ``__etl_input`` (the index of the unit each row came from), so the driver can account
for every input after the sink has deduplicated.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from etl import log
from etl.batches import concat as _concat
from etl.batches import timed as _timed
from etl.batches import with_declared as _with_declared
from etl.context import Context
from etl.decisions import ROW_COLUMN, Noted
from etl.errors import ConfigError, PluginError, RunError
from etl.plugin import DecidesOnDriver, ReadsMany
from etl.schema import ARTICLE_SCHEMA, conform, schema_difference
from etl.store.hashing import NOT_HASHED

# the reasons and the counts live in etl.stream_stats (re-exported: executors and the
# accounting import them from here)
from etl.stream_stats import (
    CODE_FAULT_PREFIXES,
    LIMIT_REASONS,
    NOTHING_REASON,
    RETRY_REASONS,
    StreamStats,
    error_line,
    is_code_fault,
    is_retry_reason,
)

if TYPE_CHECKING:
    from etl.plugin import Plugin, Source, Transform, WorkUnit

INPUT_COLUMN = "__etl_input"
#: a chunk of units read at once (Source.read_many) holds at most this many input bytes
MAX_CHUNK_BYTES = 64 * 1024 * 1024

__all__ = [
    "CODE_FAULT_PREFIXES",
    "INPUT_COLUMN",
    "LIMIT_REASONS",
    "NOTHING_REASON",
    "RETRY_REASONS",
    "StreamStats",
    "Streamer",
    "error_line",
    "is_code_fault",
    "is_retry_reason",
]


class Streamer:
    """Runs units through a source and the transforms, yielding joined batches.

    Args:
        run: the run's facts.
        sources: the pipeline's sources, by index.
        transforms: the pipeline's transforms, in order.
        schema: the schema every source batch is conformed to.
        on_error: "quarantine" (bad input becomes rejects) or "fail" (raise RunError).
        hook: the plugin manager's hook relay, or None where hooks do not run.
        decide_here: False on a worker: a transform that decides on the driver
            (:class:`~etl.plugin.DecidesOnDriver`) only takes notes (``self.noted``), and
            its rows carry their number (``etl.decisions.ROW_COLUMN``) to the end.
    """

    def __init__(
        self,
        run: Any,
        sources: list[Source],
        transforms: list[Transform],
        schema: pa.Schema,
        on_error: str = "quarantine",
        hook: Any = None,
        decide_here: bool = True,
    ) -> None:
        self.run = run
        self.sources = sources
        self.transforms = transforms
        self.schema = schema
        self.on_error = on_error
        self.hook = hook
        self.stats = StreamStats()
        self._transform_ctx = [Context(run, t.name, t.section) for t in transforms]
        #: for progress: the first unit being read (or waiting in a chunk), and the unit of
        #: the oldest row held back to join a batch; units before both are finished
        self.reading: int | None = None
        self.held_from: int | None = None
        self._rejected_rows: Counter[int] = Counter()
        # The schema between each pair of stages: sources emit the article schema, and each
        # transform sees the columns before it plus (null) the ones it declares, so it can
        # rename or drop a column without hiding it from the transforms before it.
        self._stages = [ARTICLE_SCHEMA]
        for transform in transforms:
            self._stages.append(transform.output_schema(self._stages[-1]))
        #: the stage (1-based) whose transform only takes notes here, and its notes
        self.noting = 0
        self.noted: Noted | None = None
        for stage, transform in enumerate(transforms, 1):
            if (
                not decide_here
                and isinstance(transform, DecidesOnDriver)
                and transform.decides_on_driver()
            ):
                self.noting, self.noted = stage, Noted(transform.section)
                break
        # what each stage returns: its declared columns, then the hidden ones
        hidden = pa.field(INPUT_COLUMN, pa.int32())
        row = pa.field(ROW_COLUMN, pa.int64())
        self._expected = [
            schema.append(hidden).append(row)
            if self.noting and stage >= self.noting
            else schema.append(hidden)
            for stage, schema in enumerate(self._stages)
        ]
        self._final = self.schema.append(hidden)
        if self.noting:
            self._final = self._final.append(row)

    # rejects and errors

    def _collect(self, ctx: Context, unit_index: int | None) -> None:
        if ctx.counters:  # ctx.count(...) from sources and transforms: into the run summary
            self.stats.counters.update(ctx.counters)
            ctx.counters.clear()
        rejects = ctx.take_rejects()
        if not rejects:
            return
        self.stats.rejects.extend(rejects)
        logger = log.get_logger(run_id=self.run.run_id, stage="stream", plugin=ctx.plugin)
        for reject in rejects[:10]:  # -vv: -v is one event per stage and plugin
            logger.debug(
                "rejected",
                input=reject["input"],
                location=reject["location"],
                reason=reject["reason"],
            )
        if unit_index is not None:
            self.stats.rejected[unit_index] += len(rejects)
            if any(is_retry_reason(r["reason"]) for r in rejects):
                self.stats.retry.add(unit_index)
            if any(r["reason"] in LIMIT_REASONS for r in rejects):
                self.stats.digests.setdefault(unit_index, NOT_HASHED)
        if self.on_error == "fail":
            first = rejects[0]
            where = first["input"] + (f" ({first['location']})" if first["location"] else "")
            raise RunError(
                f"plugin '{first['plugin']}' ({first['section']}) rejected {where}: "
                f"{first['reason']}" + (f": {first['detail']}" if first["detail"] else ""),
                hint='set on_error = "quarantine" in [run] to keep going and collect rejects',
            )

    def _plugin_error(self, plugin: Plugin, exc: BaseException, input: str) -> None:
        if self.hook is not None:
            self.hook.etl_on_plugin_error(run=self.run, plugin=plugin, error=exc, input=input)

    # reading

    def read_unit(self, index: int, unit: WorkUnit) -> Iterator[pa.RecordBatch]:
        """Batches of one unit, each with the hidden input column; errors become rejects."""
        source = self.sources[unit.source_index]
        ctx = Context(self.run, source.name, source.section, unit.key)
        # a file of millions of bad lines gives no batch between its rejects: they leave the
        # context every few thousand, for the run's rejects, which keeps them on disk
        ctx.overflow = lambda full: self._collect(full, index)
        batch_no = 0
        try:
            for batch in _timed(source.read(unit, ctx), self.stats.seconds, source.section):
                self._collect(ctx, index)
                if batch.num_rows == 0:
                    continue
                batch_no += 1
                batch = conform(batch, self._stages[0])
                self.stats.read[index] += batch.num_rows
                yield batch.append_column(
                    INPUT_COLUMN, pa.array(np.full(batch.num_rows, index, dtype=np.int32))
                )
        except (RunError, ConfigError):  # a configuration found wrong by reading (a key of
            raise  # `fields` no input has) stops the run: it is no fault of this input
        except Exception as exc:
            self._plugin_error(source, exc, unit.key)
            ctx.reject(
                "source error",
                location=f"after batch {batch_no}" if batch_no else None,
                detail=error_line(exc),
            )
            if self.on_error == "fail":
                self._collect(ctx, index)
        self._collect(ctx, index)
        if ctx.digests:
            digest = ctx.digests.get(unit.key)
            if digest is not None:
                self.stats.digests[index] = digest
        if (
            unit.part is None  # a part may hold nothing; the driver checks its whole input
            and not self.stats.read.get(index)
            and not self.stats.rejected.get(index)
        ):
            # every input ends as rows or a reject: nothing vanishes unaccounted for
            ctx.reject(NOTHING_REASON, detail="the input gave no articles and no reject")
            self._collect(ctx, index)

    def read_many(self, chunk: list[tuple[int, WorkUnit]]) -> Iterator[pa.RecordBatch]:
        """Batches of several units of one source that reads many at once (``read_many``).

        One call for the whole chunk, so per-batch work (compute kernels, hashing) runs on
        a batch and not once per small file. If that call raises, the chunk's units are read
        again one by one, so an error is the reject of its own unit only.
        """
        source = self.sources[chunk[0][1].source_index]
        ctx = Context(self.run, source.name, source.section)
        try:
            started = time.perf_counter()
            batch, positions = source.read_many([unit for _, unit in chunk], ctx)
            self.stats.seconds[source.section] += time.perf_counter() - started
            positions = np.asarray(positions, dtype=np.int32)
            if len(positions) != batch.num_rows or (
                len(positions) and (positions.min() < 0 or positions.max() >= len(chunk))
            ):
                raise ValueError("read_many returned row positions that do not fit its units")
        except (RunError, ConfigError):
            raise
        except Exception:
            ctx.take_rejects()
            for index, unit in chunk:
                yield from self.read_unit(index, unit)
            return
        indexes = np.fromiter((index for index, _ in chunk), dtype=np.int32, count=len(chunk))
        rejects = ctx.take_rejects()
        if rejects:
            where = {unit.key: index for index, unit in chunk}
            by_unit: dict[int | None, list[dict[str, Any]]] = {}
            for reject in rejects:
                by_unit.setdefault(where.get(reject["input"]), []).append(reject)
            for index, group in by_unit.items():
                ctx.rejects = group
                self._collect(ctx, index)
        self._collect(ctx, None)
        if ctx.digests:
            digests, found = self.stats.digests, ctx.digests
            for index, unit in chunk:
                digest = found.get(unit.input.key)
                if digest is not None:
                    digests[index] = digest
        counts = np.bincount(positions, minlength=len(chunk))
        read = self.stats.read
        gave = counts > 0
        for index, n in zip(indexes[gave].tolist(), counts[gave].tolist(), strict=True):
            read[index] += n
        for pos in np.flatnonzero(counts == 0).tolist():  # units that gave no row
            index, unit = chunk[pos]
            if not read.get(index) and not self.stats.rejected.get(index):
                # every input ends as rows or a reject: nothing vanishes unaccounted for
                ctx.input = unit.key
                ctx.reject(NOTHING_REASON, detail="the input gave no articles and no reject")
                self._collect(ctx, index)
        if batch.num_rows:
            batch = conform(batch, self._stages[0])
            yield batch.append_column(INPUT_COLUMN, pa.array(indexes[positions]))

    def _read(self, units: Iterable[tuple[int, WorkUnit]]) -> Iterator[pa.RecordBatch]:
        """Batches of the units in order; runs of a read_many source go in chunks."""
        chunk: list[tuple[int, WorkUnit]] = []
        chunk_bytes = 0
        chunk_source = -1
        many = [isinstance(source, ReadsMany) for source in self.sources]
        batch_size = self.run.batch_size
        for index, unit in units:
            source_index = unit.source_index
            if chunk and (
                chunk_source != source_index
                or len(chunk) >= batch_size
                or chunk_bytes >= MAX_CHUNK_BYTES
            ):
                yield from self.read_many(chunk)
                chunk, chunk_bytes = [], 0
            if not many[source_index]:
                self.reading = index
                yield from self.read_unit(index, unit)
                continue
            chunk.append((index, unit))
            self.reading = chunk[0][0]
            chunk_source = source_index
            chunk_bytes += unit.input.size or 0
        if chunk:
            yield from self.read_many(chunk)

    def joined(self, units: Iterable[tuple[int, WorkUnit]]) -> Iterator[pa.RecordBatch]:
        """Batches of the given units: small ones joined, large ones cut, each of at most
        the run's batch size rows (the last may be smaller)."""
        target = self.run.batch_size
        pending: list[pa.RecordBatch] = []
        rows = 0
        for batch in self._read(units):
            if not pending and batch.num_rows == target:
                yield batch
                continue
            pending.append(batch)
            rows += batch.num_rows
            self.held_from = pending[0].column(INPUT_COLUMN)[0].as_py()
            if rows >= target:
                joined = _concat(pending)
                offset = 0
                while rows - offset >= target:
                    yield joined.slice(offset, target)
                    offset += target
                pending = [joined.slice(offset)] if offset < rows else []
                rows -= offset
                self.held_from = pending[0].column(INPUT_COLUMN)[0].as_py() if pending else None
        if pending and rows:
            yield _concat(pending)

    # transforming

    def transform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """``batch`` through every transform.

        A transform that raises is called again on halves of the batch, down to single
        articles, so only the articles it fails on are rejected: which articles end as rows
        does not depend on how batches were cut (it differs between executors). Those
        rejects come from code, not data: their inputs are read again next run.
        """
        inputs = batch.column(INPUT_COLUMN)
        for stage, (transform, ctx) in enumerate(
            zip(self.transforms, self._transform_ctx, strict=True), 1
        ):
            n_in = batch.num_rows
            batch = _with_declared(batch, self._stages[stage])
            started = time.perf_counter()
            out = self._process(transform, ctx, batch, self._expected[stage], stage)
            self.stats.seconds[transform.section] += time.perf_counter() - started
            if ctx.rejects:
                self._count_article_rejects(batch, out, ctx.rejects)
            self._collect(ctx, None)
            if not isinstance(out, pa.RecordBatch):
                raise PluginError(
                    f"plugin '{transform.name}' ({transform.section}) returned "
                    f"{type(out).__name__}, not a pyarrow.RecordBatch",
                    hint=("did you forget `return batch`? " if out is None else "")
                    + "return the batch you were given, filtered or with columns set",
                )
            numbered = self.noting and stage >= self.noting
            hidden = (INPUT_COLUMN, ROW_COLUMN) if numbered else (INPUT_COLUMN,)
            lost = next((c for c in hidden if c not in out.schema.names), None)
            if lost is not None:
                raise RunError(
                    f"plugin '{transform.name}' ({transform.section}) returned a batch without "
                    f"the column {lost}",
                    hint="select or filter the rows of the batch you were given; do not rebuild it "
                    "from scratch",
                )
            out = self._check_schema(transform, out, self._expected[stage])
            counts = self.stats.transform_rows.setdefault(transform.section, [0, 0])
            counts[0] += n_in
            counts[1] += out.num_rows
            batch = out
            if batch.num_rows == 0:
                break
        self._count_dropped(inputs, batch.column(INPUT_COLUMN))
        final = self._final
        return batch if batch.schema.equals(final) else conform(batch, final)

    def _process(
        self,
        transform: Transform,
        ctx: Context,
        batch: pa.RecordBatch,
        expected: pa.Schema,
        stage: int = 0,
    ) -> Any:
        """``transform.process(batch)`` (its notes, at the stage that only takes notes);
        on an exception, the halves, down to single rows."""
        try:
            if stage and stage == self.noting:
                return self._note(transform, ctx, batch)
            return transform.process(batch, ctx)
        except Exception as exc:
            if batch.num_rows <= 1:  # the hook hears once per failing article, not per half
                uri = batch.column("uri")[0].as_py() if batch.num_rows else None
                self._plugin_error(transform, exc, uri or "")
                self._reject_rows(batch, ctx, error_line(exc))
                empty = batch.slice(0, 0)
                if stage and stage == self.noting:  # numbered rows from here on
                    return empty.append_column(ROW_COLUMN, pa.array([], pa.int64()))
                return empty
        half = batch.num_rows // 2
        parts = []
        for piece in (batch.slice(0, half), batch.slice(half)):
            out = self._process(transform, ctx, piece, expected, stage)
            if not isinstance(out, pa.RecordBatch) or INPUT_COLUMN not in out.schema.names:
                return out  # the caller reports what is wrong with it
            parts.append(self._check_schema(transform, out, expected))
        return _concat(parts)

    def _note(self, transform: Any, ctx: Context, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The transform's notes of ``batch`` kept for the driver; the batch, its rows
        numbered, passes on whole (the driver drops what it decides)."""
        assert self.noted is not None
        notes = transform.notes(batch, ctx)
        units = batch.column(INPUT_COLUMN).to_numpy(zero_copy_only=False)
        return batch.append_column(ROW_COLUMN, pa.array(self.noted.add(notes, units)))

    def _check_schema(
        self, transform: Transform, out: pa.RecordBatch, expected: pa.Schema
    ) -> pa.RecordBatch:
        """``out`` as the expected schema (declared, then hidden columns) orders it; a
        PluginError naming the column if it differs."""
        if out.schema.equals(expected):
            return out
        problem = schema_difference(expected, out.schema)
        if problem is None:  # the same columns and types, in another order or nullability
            return pa.RecordBatch.from_arrays(
                [out.column(name) for name in expected.names], schema=expected
            )
        message, hint = problem
        raise PluginError(
            f"plugin '{transform.name}' ({transform.section}) returned a batch that does not "
            f"match the declared schema: {message}",
            hint=hint,
        )

    def _reject_rows(self, batch: pa.RecordBatch, ctx: Context, reason: str) -> None:
        ids = batch.column("id").to_pylist()
        uris = batch.column("uri").to_pylist()
        for article_id, uri in zip(ids, uris, strict=True):
            ctx.reject(f"transform error: {reason}", article_id=article_id, input=uri or "")

    def _count_article_rejects(
        self, batch: pa.RecordBatch, out: Any, rejects: list[dict[str, Any]]
    ) -> None:
        """Count a transform's rejects of articles against the inputs they came from: as
        rejects, not drops; an input whose article met a fault in code is read again.

        A reject names its article by id, and two rows of a batch may share one (the same
        text in two files, or twice in one file): each reject is matched to a row that went
        missing from the transform's output, so that it counts against that row's input
        once, and two rejects of one id against the two inputs that lost a row.
        """
        named = [r for r in rejects if r["article_id"] is not None]
        if not named:
            return
        missing = Counter(
            zip(
                batch.column("id").to_pylist(),
                batch.column(INPUT_COLUMN).to_numpy(zero_copy_only=False).tolist(),
                strict=True,
            )
        )
        if isinstance(out, pa.RecordBatch) and {"id", INPUT_COLUMN} <= set(out.schema.names):
            missing.subtract(
                zip(
                    out.column("id").to_pylist(),
                    out.column(INPUT_COLUMN).to_numpy(zero_copy_only=False).tolist(),
                    strict=True,
                )
            )
        units_of: dict[Any, list[int]] = {}
        for (article_id, index), n in missing.items():
            units_of.setdefault(article_id, []).extend([index] * max(n, 0))
        for reject in named:
            units = units_of.get(reject["article_id"])
            if not units:  # a reject of an article that is still in the output, or unknown
                continue
            index = units.pop()
            self.stats.rejected[index] += 1
            self.stats.rows_rejected[index] += 1
            self._rejected_rows[index] += 1
            if is_code_fault(reject["reason"]):
                self.stats.retry.add(index)

    def _count_dropped(self, before: pa.Array, after: pa.Array) -> None:
        b = np.bincount(before.to_numpy(zero_copy_only=False))
        a = np.bincount(after.to_numpy(zero_copy_only=False), minlength=len(b))
        for index in np.flatnonzero(b - a):
            gone = int(b[index] - a[index]) - self._rejected_rows.pop(int(index), 0)
            if gone:
                self.stats.dropped[int(index)] += gone
        self._rejected_rows.clear()

    def stream(self, units: Iterable[tuple[int, WorkUnit]]) -> Iterator[pa.RecordBatch]:
        """Read, join and transform: what the sink receives (still with the input column)."""
        for batch in self.joined(units):
            out = self.transform(batch)
            if out.num_rows:
                yield out
