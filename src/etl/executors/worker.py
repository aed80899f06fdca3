"""What the ``processes`` and ``dask`` executors share: the worker side and the driver's merge.

The driver never ships live plugin objects. It ships a :class:`WorkerSpec` (the parsed
pipeline, the run's facts, the disabled plugins and the bytes of every local plugin file the
pipeline names); each worker rebuilds the plugins from it, runs source -> transforms for a
chunk of work units with :class:`etl.stream.Streamer`, and writes staged Parquet files through
the sink's ``worker_writer``. It returns a :class:`ChunkResult`: plain counts, rejects and the
list of staged files. The driver's :class:`Collector` takes results in any order and adopts
their files in the order of the work units, so the first occurrence of an id wins exactly as
it does in one process, and the per-input accounting is exact.
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
import tempfile
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from etl.config import Pipeline
from etl.context import RunInfo
from etl.errors import ConfigError, EtlError, MissingDependency, PluginError, RunError
from etl.stream import INPUT_COLUMN, StreamStats, error_line

if TYPE_CHECKING:
    from etl.plugin import WorkUnit
    from etl.runner import Plan, Totals

#: upper bound of work units in one chunk when chunk_size is automatic
MAX_AUTO_CHUNK = 1000


def is_plugin_file(spec: str) -> bool:
    """True for a ``plugins = [...]`` entry that names a file (as PluginManager.load_local)."""
    return spec.endswith(".py") or "/" in spec or os.sep in spec


@dataclass
class WorkerSpec:
    """Everything a worker needs to rebuild the plan's plugins (plain data, picklable).

    Args:
        pipeline: the parsed pipeline, as the driver has it.
        run: the driver's run (id, start time, batch size...).
        disable: plugin or distribution names the driver did not load.
        shipped: for each local plugin file of ``pipeline.plugins``: (file name, its bytes).
        suppliers: plugin name -> the distribution that supplies it on the driver (for hints).
        log: (format, verbosity) of the driver's logging.
    """

    pipeline: Pipeline
    run: RunInfo
    disable: tuple[str, ...] = ()
    shipped: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    suppliers: dict[str, str] = field(default_factory=dict)
    log: tuple[str, int] = ("json", 0)


def make_spec(plan: Plan) -> WorkerSpec:
    """The spec of a plan: what workers rebuild it from."""
    pipeline = plan.pipeline
    shipped: dict[str, tuple[str, bytes]] = {}
    for spec in pipeline.plugins:
        if is_plugin_file(spec):
            path = (pipeline.base_dir / spec).resolve()
            shipped[spec] = (path.name, path.read_bytes())
    suppliers = {
        f"{p.kind}:{p.name}": f"{type(p).supplier} {type(p).supplier_version}".strip()
        for p in plan.plugins()
    }
    run = replace(plan.run, extra={})
    return WorkerSpec(
        pipeline=pipeline,
        run=run,
        disable=tuple(sorted(plan.pm.blocked_names)),
        shipped=shipped,
        suppliers=suppliers,
        log=_log_settings(),
    )


def _log_settings() -> tuple[str, int]:
    from etl import log

    return log.settings() or ("console", 0)


def _materialize(name: str, data: bytes) -> Path:
    """A shipped plugin file, written once per content under this machine's temp folder."""
    digest = hashlib.sha256(data).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "etl-plugins" / digest
    path = folder / name
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{name}.{os.getpid()}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return path


def build_worker_plan(spec: WorkerSpec, where: str) -> Plan:
    """Rebuild the plan's plugins on a worker (no units listed); errors name the worker.

    Installed plugins are found by reference (entry points, ``plugins = ["module"]``); local
    plugin files come from the bytes the driver shipped, so the worker need not see the
    pipeline's folder.
    """
    from etl import log
    from etl.plugins import get_plugin_manager
    from etl.runner import build_plan

    log.configure(*spec.log)
    pipeline = spec.pipeline
    try:
        pm = get_plugin_manager(base_dir=pipeline.base_dir, disable=spec.disable)
        for entry in pipeline.plugins:
            if entry in spec.shipped:
                name, data = spec.shipped[entry]
                pm.load_local(str(_materialize(name, data)), pipeline.base_dir)
            else:
                pm.load_local(entry, pipeline.base_dir)
        plan = build_plan(replace(pipeline, plugins=[]), pm=pm, list_units=False)
    except EtlError as exc:
        hint = exc.hint
        if isinstance(exc, ConfigError | PluginError) and not isinstance(exc, MissingDependency):
            supplier = _supplier_of(spec, exc.message)
            hint = (
                "install the same plugins on every worker as on the driver"
                + (f" (there it comes from {supplier})" if supplier else "")
                + (f"; {exc.hint}" if exc.hint else "")
            )
        raise RunError(f"{where}: {exc.message}", hint=hint) from exc
    plan.run = spec.run
    return plan


def _supplier_of(spec: WorkerSpec, message: str) -> str:
    for key, supplier in spec.suppliers.items():
        name = key.split(":", 1)[1]
        if f"named '{name}'" in message and supplier:
            return supplier
    return ""


@dataclass
class ChunkResult:
    """What a worker returns for one chunk of work units (plain data)."""

    chunk: int
    worker: str = ""
    stats: StreamStats = field(default_factory=StreamStats)
    totals: Totals | None = None
    files: list[Any] = field(default_factory=list)
    #: (error class name, message, hint, traceback text) when the chunk failed
    error: tuple[str, str, str | None, str] | None = None
    #: the driver decided which ids were new before the files were written (no duplicates)
    decided: bool = False


@dataclass
class ChunkIds:
    """A worker asks the driver which of its chunk's article ids are new (plain data)."""

    chunk: int
    worker: str
    ids: list[str]


def run_chunk(
    plan: Plan,
    chunk: int,
    units: bytes,
    worker: str,
    ask: Callable[[list[str]], list[bool] | None] | None = None,
    hold_bytes: int = 0,
) -> ChunkResult:
    """Run one chunk's units through source and transforms into staged files.

    ``units`` is the pickled list of (unit index, WorkUnit); it is unpickled here, after the
    plugins are loaded, so that units whose data refer to a plugin's classes load too.

    With ``ask`` (the ``processes`` executor), the chunk's articles are held (up to
    ``hold_bytes`` of Arrow memory) until the driver says which of their ids are new, and
    only those are written: the driver decides in the order of the work units, so the files
    need no rewrite. Without it, or for a chunk that gives more, the articles are written
    as they stream and the driver drops duplicates when it adopts the files.
    """
    from etl.plugin import WriteResult
    from etl.runner import Totals

    items: list[tuple[int, WorkUnit]] = pickle.loads(units)
    writer = plan.sink.worker_writer(plan.run, plan.schema, f"{worker}-c{chunk:05d}")
    streamer = plan.streamer()
    totals = Totals()

    def write(batch: pa.RecordBatch, keep: list[bool] | None = None) -> None:
        if keep is None:
            result = writer.write(batch)
        else:  # the driver's decision: write the rows it keeps
            kept = pa.array(keep, pa.bool_())
            written = writer.write(batch.filter(kept)).written
            result = WriteResult(written, batch.num_rows - written, kept)
        totals.add_write(batch, result.kept, result.written, result.duplicates)
        plan.hook.etl_after_batch_written(
            run=plan.run, batch=batch.drop_columns([INPUT_COLUMN]), result=result
        )

    held: list[pa.RecordBatch] | None = [] if ask is not None and hold_bytes > 0 else None
    held_bytes = 0
    try:
        for batch in streamer.stream(items):
            if held is None:
                write(batch)
                continue
            held.append(batch)
            held_bytes += batch.nbytes
            if held_bytes > hold_bytes:  # too much to hold: write as it streams
                for waiting in held:
                    write(waiting)
                held = None
        if held:
            ids = [i for batch in held for i in batch.column("id").to_pylist()]
            keep = ask(ids) if ask is not None else None
            offset = 0
            for batch in held:
                part = None if keep is None else keep[offset : offset + batch.num_rows]
                offset += batch.num_rows
                write(batch, None if part is None or all(part) else part)
        files = writer.close()
    except BaseException:
        writer.abort()
        raise
    return ChunkResult(chunk, worker, streamer.stats, totals, files, decided=bool(held))


def failed(chunk: int, worker: str, exc: BaseException, where: str) -> ChunkResult:
    """A ChunkResult that carries an error back to the driver (exceptions may not pickle)."""
    if isinstance(exc, EtlError):
        info = (type(exc).__name__, exc.message, exc.hint, "")
    else:
        info = (
            "RunError",
            f"{where} failed: {error_line(exc)}",
            "run again with -v to see the worker's traceback",
            "".join(traceback.format_exception(exc)),
        )
    return ChunkResult(chunk, worker, error=info)


def raise_error(info: tuple[str, str, str | None, str]) -> None:
    """Raise on the driver the error a worker reported."""
    kind, message, hint, trace = info
    if trace:
        from etl import log

        log.get_logger(stage="stream").debug("worker traceback", traceback=trace)
    cls = {"ConfigError": ConfigError, "PluginError": PluginError}.get(kind, RunError)
    raise cls(message, hint=hint)


def check_sink(plan: Plan, executor: str) -> None:
    """Refuse a sink that cannot take files written by workers."""
    sink = plan.sink
    if not (hasattr(sink, "worker_writer") and hasattr(sink, "adopt")):
        raise ConfigError(
            f"executor '{executor}' ({plan.executor.section}): the sink '{sink.name}' "
            f"({sink.section}) cannot take files written by workers",
            hint='use executor "local" with this sink',
        )


def chunk_bounds(units: int, workers: int, configured: int = 0) -> list[tuple[int, int]]:
    """(start, stop) of each chunk of work units, in unit order.

    A configured size gives equal chunks. Automatic chunks shrink as the work runs out
    (guided scheduling): each takes 1/(2 x workers) of what is left, at most
    ``MAX_AUTO_CHUNK`` units and at least 1/64 of a worker's share, so workers start on
    big chunks (few files, little overhead) and finish together on small ones.
    """
    if units <= 0:
        return []
    if configured > 0:
        return [(i, min(i + configured, units)) for i in range(0, units, configured)]
    smallest = max(1, math.ceil(units / (workers * 64)))
    bounds = []
    start = 0
    while start < units:
        left = units - start
        size = min(MAX_AUTO_CHUNK, max(smallest, math.ceil(left / (workers * 2))))
        bounds.append((start, min(start + size, units)))
        start += size
    return bounds


def chunks(units: list[WorkUnit], bounds: list[tuple[int, int]]) -> Iterator[tuple[int, bytes]]:
    """(chunk number, pickled [(unit index, unit), ...]) in unit order, made as needed."""
    for number, (start, stop) in enumerate(bounds):
        items = list(enumerate(units[start:stop], start))
        yield number, pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)


class Collector:
    """The driver's side: merge chunk results and adopt their files, in unit order.

    Results may arrive in any order; a result waits until every earlier chunk is in, so ids
    repeated across chunks keep their first occurrence, as in one process.

    Workers that hold a chunk's articles ask (:meth:`ask`) which ids are new; those
    questions are answered in chunk order too: chunk k is answered once every earlier chunk
    was answered or, if it did not ask, adopted. Its files then hold no duplicate and are
    adopted as they are.
    """

    def __init__(self, plan: Plan) -> None:
        from etl.runner import Totals

        self.plan = plan
        self.stats = StreamStats()
        self.totals = Totals()
        self.waiting: dict[int, ChunkResult] = {}
        self.next = 0
        #: ids of chunks that asked, waiting for their turn
        self.asks: dict[int, list[str]] = {}
        #: chunks before this one have their ids in the sink's set of seen ids
        self.next_decision = 0
        self.answered = 0

    def add(self, result: ChunkResult) -> list[tuple[int, list[bool] | None]]:
        """Take a chunk's result; returns the answers to questions it unblocked."""
        if result.error is not None:
            raise_error(result.error)
        self.waiting[result.chunk] = result
        while self.next in self.waiting:
            ready = self.waiting.pop(self.next)
            self.next += 1
            self.stats.merge(ready.stats)
            assert ready.totals is not None
            self.totals.merge(ready.totals)
            if ready.decided:
                self.plan.sink.adopt(ready.files, decided=True)
            else:
                self.totals.count_duplicates(self.plan.sink.adopt(ready.files))
        return self._answer()

    def count(self, executor: str) -> None:
        """Say in the run summary how duplicates across chunks were dropped."""
        counters = self.stats.counters
        if self.answered:
            counters[f"{executor}:chunks deduplicated before writing"] = self.answered
        rewritten = getattr(self.plan.sink, "rewritten_files", 0)
        if rewritten:
            counters[f"{executor}:files rewritten to drop duplicates"] = rewritten

    def ask(self, chunk: int, ids: list[str]) -> list[tuple[int, list[bool] | None]]:
        """A worker's question: which of chunk ``chunk``'s ids (in order) are new.

        Returns the answers that can be given now, as ``(chunk, keep)``; ``keep`` is None
        when every id is new.
        """
        self.asks[chunk] = ids
        return self._answer()

    def _answer(self) -> list[tuple[int, list[bool] | None]]:
        answers = []
        while True:
            chunk = self.next_decision
            if chunk in self.asks:
                answers.append((chunk, self.plan.sink.keep_new(self.asks.pop(chunk))))
                self.answered += 1
            elif chunk >= self.next:  # neither asked nor adopted yet
                break
            self.next_decision += 1
        return answers
