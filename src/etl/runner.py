"""A run: plan -> stream -> commit.

* plan: check the pipeline, build its plugins, fix the output schema, list the work units;
* stream: the executor runs the units through source and transforms into the sink;
* commit: the sink makes the run visible at once, with its rejects and manifest.

A failure before the commit leaves the dataset as it was.
"""

from __future__ import annotations

import gc
import os
import re
import secrets
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa

from etl import __version__, log
from etl.accounting import INPUTS_SCHEMA, InputRows, counts_array
from etl.config import Pipeline, Section
from etl.context import RunInfo, rejects_table
from etl.errors import ConfigError, EtlError, PluginError, RunError
from etl.plugin import Executor, Plugin, Sink, Source, Transform, WorkUnit
from etl.plugins import PluginManager, get_plugin_manager
from etl.schema import ARTICLE_SCHEMA
from etl.stream import INPUT_COLUMN, Streamer, StreamStats


def new_run_id(now: datetime) -> str:
    """Sortable by start time to the microsecond, unique across machines.

    ``20261126T203000123456Z-1a2b3c4d``: two runs started in one second still sort in the
    order they started (file listings of ``_etl/runs`` and rejects rely on it).
    """
    return f"{now:%Y%m%dT%H%M%S}{now.microsecond:06d}Z-{secrets.token_hex(4)}"


@dataclass
class Plan:
    """Everything a run needs, checked before the first input is read."""

    pipeline: Pipeline
    pm: PluginManager
    run: RunInfo
    sources: list[Source]
    transforms: list[Transform]
    sink: Sink
    executor: Executor
    schema: pa.Schema
    units: list[WorkUnit] = field(default_factory=list)
    skipped_inputs: int = 0

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def plugins(self) -> list[Plugin]:
        return [*self.sources, *self.transforms, self.sink, self.executor]

    def streamer(self) -> Streamer:
        return Streamer(
            self.run, self.sources, self.transforms, self.schema, self.pipeline.on_error, self.hook
        )


def _build(pm: PluginManager, section: Section, base_dir: Any) -> Plugin:
    cls = pm.get(section.kind, section.plugin, section.label)
    try:
        return cls(section.options, section=section.label, base_dir=base_dir)
    except EtlError:
        raise
    except Exception as exc:
        raise PluginError(
            f"plugin '{section.plugin}' ({section.label}) failed to start: "
            f"{type(exc).__name__}: {exc}",
            hint=f"this is a bug in the plugin '{section.plugin}' from {cls.supplier}"
            if cls.supplier
            else None,
        ) from exc


def build_plan(
    pipeline: Pipeline,
    *,
    pm: PluginManager | None = None,
    full: bool = False,
    list_units: bool = True,
    disable: tuple[str, ...] = (),
) -> Plan:
    """Check the pipeline against its plugins and list its work units; read nothing."""
    try:
        return _build_plan(pipeline, pm=pm, full=full, list_units=list_units, disable=disable)
    except EtlError as exc:  # a message may quote an option that came from ${ENV}
        redact_error(exc, pipeline)
        raise


def redact_error(exc: EtlError, pipeline: Pipeline) -> None:
    """Show values that came from the environment as ``***`` in an error's message and hint."""
    if pipeline.secrets:
        exc.message = pipeline.redact(exc.message)
        exc.hint = pipeline.redact(exc.hint)
        exc.args = (exc.message,)


def _build_plan(
    pipeline: Pipeline,
    *,
    pm: PluginManager | None,
    full: bool,
    list_units: bool,
    disable: tuple[str, ...],
) -> Plan:
    if pm is None:
        pm = get_plugin_manager(local=pipeline.plugins, base_dir=pipeline.base_dir, disable=disable)
    else:
        for spec in pipeline.plugins:
            pm.load_local(spec, pipeline.base_dir)
    now = datetime.now(UTC)
    run = RunInfo(
        run_id=new_run_id(now),
        started_at=now,
        pipeline_path=pipeline.path,
        base_dir=pipeline.base_dir,
        full=full,
        batch_size=pipeline.batch_size,
    )
    sources = [_build(pm, s, pipeline.base_dir) for s in pipeline.sources]
    transforms = [_build(pm, s, pipeline.base_dir) for s in pipeline.transforms]
    sink = _build(pm, pipeline.sink, pipeline.base_dir)
    executor = _build(pm, pipeline.executor, pipeline.base_dir)
    schema = ARTICLE_SCHEMA
    for transform in transforms:
        try:
            schema = transform.output_schema(schema)
        except EtlError:
            raise
        except Exception as exc:
            raise PluginError(
                f"plugin '{transform.name}' ({transform.section}): output_schema failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
    plan = Plan(pipeline, pm, run, sources, transforms, sink, executor, schema)
    if list_units:
        with _no_gc():
            _list_units(plan)
    return plan


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a listing builds 100k+ small objects.

    They make no reference cycles, but each gen-2 pass would walk all of them again (a
    fifth of a 100k-file listing's time). Not ``gc.freeze()``: in a process that runs many
    pipelines (a test suite, a service) frozen cyclic garbage would never be collected.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _list_units(plan: Plan) -> None:
    units = plan.units
    for index, source in enumerate(plan.sources):
        try:
            for unit in source.units():
                units.append(
                    unit if unit.source_index == index else WorkUnit(unit.input, unit.data, index)
                )
        except EtlError:
            raise
        except Exception as exc:
            raise RunError(
                f"plugin '{source.name}' ({source.section}) could not list its inputs: "
                f"{type(exc).__name__}: {exc}"
            ) from exc


@dataclass
class Totals:
    """The driver's running account of a run; becomes the summary."""

    inputs: int = 0
    written: int = 0
    duplicates: int = 0
    #: per unit index: rows written, and rows dropped as duplicates (grown as needed)
    unit_written: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    unit_duplicates: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def _grow(self, n: int) -> None:
        if n > len(self.unit_written):
            size = max(n, 2 * len(self.unit_written))
            for name in ("unit_written", "unit_duplicates"):
                old = getattr(self, name)
                new = np.zeros(size, np.int64)
                new[: len(old)] = old
                setattr(self, name, new)

    def add_write(self, batch: pa.RecordBatch, kept: Any, written: int, duplicates: int) -> None:
        self.written += written
        self.duplicates += duplicates
        units = batch.column(INPUT_COLUMN).to_numpy(zero_copy_only=False)
        if not len(units):
            return
        counts = np.bincount(units)
        if kept is None:
            kept_counts = counts
        else:
            mask = kept.to_numpy(zero_copy_only=False) if hasattr(kept, "to_numpy") else kept
            kept_counts = np.bincount(units[np.asarray(mask, bool)], minlength=len(counts))
        self._grow(len(counts))
        self.unit_written[: len(counts)] += kept_counts
        self.unit_duplicates[: len(counts)] += counts - kept_counts

    def merge(self, other: Totals) -> None:
        """Add another account (a worker's, for other units) to this one."""
        self.inputs += other.inputs
        self.written += other.written
        self.duplicates += other.duplicates
        n = len(other.unit_written)
        self._grow(n)
        self.unit_written[:n] += other.unit_written
        self.unit_duplicates[:n] += other.unit_duplicates

    def count_duplicates(self, dropped: dict[int, int]) -> None:
        """Move rows counted as written to duplicates (the driver found them again)."""
        for index, n in dropped.items():
            self._grow(index + 1)
            self.unit_written[index] -= n
            self.unit_duplicates[index] += n
            self.written -= n
            self.duplicates += n


def write_batch(plan: Plan, totals: Totals, batch: pa.RecordBatch) -> None:
    """Hand one streamed batch to the sink (without the input column) and account for it."""
    clean = batch.drop_columns([INPUT_COLUMN])
    result = plan.sink.write(clean)
    duplicates = result.duplicates
    totals.add_write(batch, result.kept, result.written, duplicates)
    plan.hook.etl_after_batch_written(run=plan.run, batch=clean, result=result)


def summarize(
    plan: Plan, stats: StreamStats, totals: Totals, timings: dict[str, float]
) -> dict[str, Any]:
    from collections import Counter

    reasons = Counter(r["reason"] for r in stats.rejects)
    return {
        "run_id": plan.run.run_id,
        "inputs": len(plan.units),
        "inputs_skipped": plan.skipped_inputs,
        "read": sum(stats.read.values()),
        "written": totals.written,
        "duplicates": totals.duplicates,
        "dropped": sum(stats.dropped.values()),
        "rejected": len(stats.rejects),
        "rejects_by_reason": dict(reasons.most_common()),
        "counters": dict(stats.counters),
        "transforms": {k: {"in": v[0], "out": v[1]} for k, v in stats.transform_rows.items()},
        "per_input": input_rows(plan, stats, totals),
        "timings": {k: round(v, 4) for k, v in timings.items()},
    }


def input_rows(plan: Plan, stats: StreamStats, totals: Totals) -> InputRows:
    """One row per work unit: what it gave and where each record went, as columns."""
    units = plan.units
    n = len(units)
    read = counts_array(stats.read, n)
    rejected = counts_array(stats.rejected, n)
    complete = np.ones(n, bool)
    if stats.retry:
        complete[[i for i in stats.retry if i < n]] = False
    digests = stats.digests
    names = pa.array([s.name for s in plan.sources], pa.string())
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
    }
    return InputRows(pa.table(columns, schema=INPUTS_SCHEMA))


def _strings(values: list[str]) -> pa.Array:
    """Input names as a column; undecodable bytes of odd file names shown as the rejects
    table shows them (the key digest still names the exact input)."""
    try:
        return pa.array(values, pa.string())
    except (UnicodeError, pa.ArrowException):
        return pa.array([_printable(v) for v in values], pa.string())


def safe_rejects(plan: Plan, rows: list[dict[str, Any]]) -> pa.Table:
    """The rejects table, secrets redacted and undecodable characters (lone surrogates of
    odd file names) replaced, so that writing it can never fail the commit."""
    p = plan.pipeline
    if p.secrets:
        rows = [p.redact(row) for row in rows]
    try:
        return rejects_table(rows)
    except (UnicodeError, pa.ArrowException):
        return rejects_table([{k: _printable(v) for k, v in row.items()} for row in rows])


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _printable(value: Any) -> Any:
    if isinstance(value, str):
        try:  # undecodable bytes of a file name (surrogateescape): one U+FFFD each
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:  # other lone surrogates (a "\ud800" escape in JSON)
            return _LONE_SURROGATE.sub("\ufffd", value)
    return value


def manifest(plan: Plan, summary: dict[str, Any]) -> dict[str, Any]:
    """The run manifest: what ran, with what, and what it did (secrets redacted, everywhere:
    input names and error details may hold a value that came from the environment)."""
    p = plan.pipeline
    redact = p.redact if p.secrets else (lambda value: value)
    result = redact(
        {
            "run_id": plan.run.run_id,
            "etl_version": __version__,
            "started_at": plan.run.started_at.isoformat(),
            "finished_at": datetime.now(UTC).isoformat(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "pipeline_file": str(p.path) if p.path else None,
            "pipeline_text": p.redact(p.text),
            "pipeline": p.describe(),
            "plugins": [
                {
                    "kind": pl.kind,
                    "name": pl.name,
                    "section": pl.section,
                    "supplier": type(pl).supplier,
                    "version": type(pl).supplier_version,
                }
                for pl in plan.plugins()
            ],
            "schema": [{"name": f.name, "type": str(f.type)} for f in plan.schema],
            "summary": summary,
        }
    )
    rows = summary.get("per_input")
    if p.secrets and isinstance(rows, InputRows):
        table = rows.table
        names = pa.array(p.redact(table.column("input").to_pylist()), pa.string())
        result["summary"]["per_input"] = InputRows(table.set_column(0, "input", names))
    return result


def run_plan(plan: Plan) -> dict[str, Any]:
    """Stream and commit a built plan; return the summary. The dataset is untouched on error."""
    log.add_secrets(plan.pipeline.secrets)
    logger = log.get_logger(run_id=plan.run.run_id)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    error: BaseException | None = None
    summary: dict[str, Any] = {}
    plan.hook.etl_before_run(run=plan.run, pipeline=plan.pipeline)
    opened = False
    try:
        t0 = time.perf_counter()
        plan.sink.open(plan.run, plan.schema)
        opened = True
        plan.skipped_inputs = 0
        keep = getattr(plan.sink, "filter_units", None)
        if keep is not None and not plan.run.full:
            before = len(plan.units)
            plan.units = list(keep(plan.units))
            plan.skipped_inputs = before - len(plan.units)
        for transform in plan.transforms:
            transform.open(plan.run)
        timings["open"] = time.perf_counter() - t0
        logger.info(
            "run started", stage="plan", inputs=len(plan.units), skipped=plan.skipped_inputs
        )
        t0 = time.perf_counter()
        stats, totals = plan.executor.execute(plan)
        timings["stream"] = time.perf_counter() - t0
        for transform in plan.transforms:
            transform.close()
        summary = summarize(plan, stats, totals, timings)
        t0 = time.perf_counter()
        record = getattr(plan.sink, "record_inputs", None)
        if record is not None:
            recorded = record(plan.units, summary["per_input"])
            if recorded is not None:
                summary["per_input"] = recorded
        timings["commit"] = 0.0
        summary["timings"]["total"] = round(time.perf_counter() - started, 4)
        plan.sink.commit(safe_rejects(plan, stats.rejects), manifest(plan, summary))
        timings["commit"] = time.perf_counter() - t0
        summary["timings"].update({k: round(v, 4) for k, v in timings.items()})
        summary["timings"]["total"] = round(time.perf_counter() - started, 4)
        logger.info(
            "run committed",
            stage="commit",
            written=summary["written"],
            rejected=summary["rejected"],
        )
        return summary
    except BaseException as exc:
        error = exc
        if opened:
            try:
                plan.sink.abort()
            except Exception as abort_exc:  # keep the first error; say the second
                logger.error("abort failed", stage="abort", error=str(abort_exc))
        if isinstance(exc, EtlError):
            redact_error(exc, plan.pipeline)
            raise
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise RunError(
            plan.pipeline.redact(f"the run failed: {type(exc).__name__}: {exc}")
        ) from exc
    finally:
        plan.hook.etl_after_run(run=plan.run, summary=summary, error=error)


def check_paths(plan: Plan) -> None:
    """Raise ConfigError for a pipeline whose sources list no inputs at all."""
    if not plan.units:
        raise ConfigError(f"{plan.pipeline.name}: the sources list no inputs")
