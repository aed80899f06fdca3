"""The worker side of a run: rebuild the plugins from a spec, run chunks of units.

The driver never ships live plugin objects. It ships a :class:`WorkerSpec` (the parsed
pipeline, the run's facts, the disabled plugins and the bytes of every local plugin file the
pipeline names); each worker rebuilds the plugins from it and runs source -> transforms for
a chunk of work units. A sink with the :class:`~etl.plugin.WorkerFiles` capability then
gets the chunk's articles as files the worker writes; for any other sink the chunk's
batches go back to the driver (Arrow IPC), which writes them.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from etl.accounting import Totals
from etl.config import Pipeline
from etl.context import RunInfo
from etl.decisions import ROW_COLUMN
from etl.errors import ConfigError, EtlError, MissingDependency, PluginError, RunError
from etl.executors.api import ChunkResult, WorkerSession, unpack_units
from etl.plugin import WriteResult
from etl.schema import first_seen
from etl.stream import INPUT_COLUMN
from etl.transforms.python import function_files, place_function_files

if TYPE_CHECKING:
    from etl.plugin import WorkUnit
    from etl.run.plan import Plan


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
        functions: for each function file of a ``python`` transform: (file name, its bytes).
        suppliers: plugin name -> the distribution that supplies it on the driver (for hints).
        log: (format, verbosity) of the driver's logging.
    """

    pipeline: Pipeline
    run: RunInfo
    disable: tuple[str, ...] = ()
    shipped: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    #: the function files of ``python`` transforms, by the file as the pipeline names it
    functions: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    suppliers: dict[str, str] = field(default_factory=dict)
    log: tuple[str, int] = ("json", 0)

    def check(self, where: str, probe: bytes | None = None) -> None:
        """Build the plugins, open the unit in ``probe`` (packed) and check that the sink's
        staged files can be written: to fail early with a clear message (a preflight)."""
        from etl.run.reach import check_reach

        plan = build_worker_plan(self, where)
        check_reach(plan, where, unpack_units(probe)[0][1] if probe else None)

    def open(self, where: str, name: str) -> Session:
        """Build the plugins and open the transforms; ``name`` goes into file names."""
        plan = build_worker_plan(self, where)
        for transform in plan.transforms:
            transform.open(plan.run)
        return Session(plan, name)


def make_spec(plan: Plan) -> WorkerSpec:
    """The spec of a plan: what workers rebuild it from."""
    from etl import log

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
    return WorkerSpec(
        pipeline=pipeline,
        run=replace(plan.run, extra={}),
        disable=tuple(sorted(plan.pm.blocked_names)),
        shipped=shipped,
        functions=function_files(pipeline),
        suppliers=suppliers,
        log=log.settings() or ("console", 0),
    )


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
    from etl.run.plan import build_plan

    log.configure(*spec.log)
    pipeline = spec.pipeline
    log.add_secrets(pipeline.secrets)  # storage credentials travel with the pipeline
    if spec.functions:
        placed = {k: _materialize(name, data) for k, (name, data) in spec.functions.items()}
        pipeline = place_function_files(pipeline, placed)
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


class Session(WorkerSession):
    """A worker's rebuilt plan; runs chunks of units."""

    def __init__(self, plan: Plan, name: str) -> None:
        self.plan = plan
        self.name = name
        self.files = plan.workers_write_files()
        # workers that write files ask the driver which ids are new before writing, so the
        # driver never rewrites a file for a duplicate (it did for nearly every file of a
        # news corpus, whose duplicates lie a few thousand inputs apart)
        self.can_ask = self.files
        from etl.run.plan import deciding

        self.asks_with_notes = bool(deciding(plan))

    def close(self) -> None:
        for transform in self.plan.transforms:
            transform.close()

    def start_chunk(
        self,
        chunk: int,
        units: bytes,
        ask: Callable[..., Any] | None = None,
        hold_bytes: int = 0,
        hint: bool = False,
    ) -> Callable[[], ChunkResult]:
        """Read one chunk's units through source and transforms; returns what finishes it.

        ``units`` is :func:`~etl.executors.api.pack_units`' bytes; they are unpacked here,
        after the plugins are loaded, so that units whose data refer to a plugin's classes load.

        A sink without worker files: the chunk's batches go back as Arrow IPC. Otherwise,
        with ``ask``, the chunk's articles are held (up to ``hold_bytes`` of Arrow memory)
        until the driver says which ids are new, and only those are written; without it,
        or for a chunk that gives more, they are written as they stream and the driver
        drops duplicates when it adopts the files. ``hint``: the answer is only a hint
        (Dask's), so the driver still checks the files (``decided`` stays False).

        The question is sent here, as soon as the chunk is read; the returned function
        waits for its answer (``ask`` may return the answer, or a function that waits for
        it), writes the files and gives the result. A worker may read its next chunk
        before it calls it, instead of waiting for its turn.

        A transform that decides on the driver only takes notes here (``streamer.noted``);
        they go to the driver with the question, or with the result, and the driver drops
        what it decides: from the answer, from the shipped batches, or from the files.
        """
        items = unpack_units(units)
        streamer = self.plan.streamer(decide_here=False)
        if not self.files:
            batches = _ipc(streamer.stream(items))
            result = ChunkResult(
                chunk, self.name, streamer.stats, batches=batches, noted=streamer.noted
            )
            return lambda: result
        finish = self._write_files(chunk, items, streamer, ask, hold_bytes)

        def finished() -> ChunkResult:
            result = finish()
            result.decided = result.decided and not hint
            return result

        return finished

    def _write_files(
        self,
        chunk: int,
        items: list[tuple[int, WorkUnit]],
        streamer: Any,
        ask: Callable[..., Any] | None,
        hold_bytes: int,
    ) -> Callable[[], ChunkResult]:
        plan = self.plan
        noted = streamer.noted
        hidden = [INPUT_COLUMN] if noted is None else [INPUT_COLUMN, ROW_COLUMN]
        sink: Any = plan.sink
        writer = sink.worker_writer(plan.run, plan.schema, f"{self.name}-c{chunk:05d}")
        totals = Totals()
        seen: set[str] = set()

        def write(batch: pa.RecordBatch, decided: bool = False, keep: Any = None) -> None:
            """Write a batch; ``decided``: ``keep`` is the driver's answer (None: all new),
            else ids repeated within this task are dropped here."""
            all_units = batch.column(INPUT_COLUMN).to_numpy(zero_copy_only=False)
            clean = batch.drop_columns(hidden)
            found = keep if decided else first_seen(clean.column("id").to_pylist(), seen)
            mask = None if found is None else np.asarray(found, bool)
            units = all_units
            if mask is not None:
                clean = clean.filter(pa.array(mask))
                units = all_units[mask]
            if noted is None:
                totals.add(all_units, mask)
            else:  # the driver counts them, once it decided
                rows = batch.column(ROW_COLUMN).to_numpy(zero_copy_only=False)
                noted.ended(rows, mask, clean.column("id").to_pylist())
            if clean.num_rows:
                started = time.perf_counter()
                writer.write(clean, units)
                streamer.stats.seconds[sink.section] += time.perf_counter() - started
            plan.hook.etl_after_batch_written(
                run=plan.run,
                batch=clean,
                result=WriteResult(clean.num_rows, batch.num_rows - clean.num_rows, None),
            )

        held: list[pa.RecordBatch] | None = [] if ask is not None and hold_bytes > 0 else None
        held_bytes = 0
        answer: Any = None
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
            if held and ask is not None:
                ids = [i for batch in held for i in batch.column("id").to_pylist()]
                if noted is None:
                    answer = ask(ids)
                else:  # the notes, and the number of each row held
                    rows = np.concatenate([b.column(ROW_COLUMN).to_numpy() for b in held])
                    answer = ask(ids, replace(noted, ends=[rows]))
                    noted.notes = []  # the driver keeps its decision: not sent twice
        except BaseException:
            writer.abort()
            raise

        def finish() -> ChunkResult:
            try:
                if held:
                    keep = answer() if callable(answer) else answer
                    offset = 0
                    for batch in held:
                        part = None if keep is None else keep[offset : offset + batch.num_rows]
                        offset += batch.num_rows
                        write(batch, decided=True, keep=part)
                files = writer.close()
            except BaseException:
                writer.abort()
                raise
            return ChunkResult(
                chunk, self.name, streamer.stats, totals, files, decided=bool(held), noted=noted
            )

        return finish


def _ipc(batches: Any) -> bytes:
    """Streamed batches (with the input column) as one Arrow IPC stream."""
    out = pa.BufferOutputStream()
    writer = None
    for batch in batches:
        if writer is None:
            writer = pa.ipc.new_stream(out, batch.schema)
        writer.write_batch(batch)
    if writer is None:
        return b""
    writer.close()
    return out.getvalue().to_pybytes()
