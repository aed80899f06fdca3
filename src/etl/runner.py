"""A run: plan -> stream -> commit.

* plan: check the pipeline, build its plugins, fix the output schema, list the work units;
* stream: the executor runs the units through source and transforms into the sink;
* commit: the sink makes the run visible at once, with its rejects and manifest.

A failure before the commit leaves the dataset as it was.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from etl import __version__, log
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
        for index, source in enumerate(sources):
            try:
                for unit in source.units():
                    plan.units.append(
                        WorkUnit(unit.input, unit.data, index)
                        if unit.source_index != index
                        else unit
                    )
            except EtlError:
                raise
            except Exception as exc:
                raise RunError(
                    f"plugin '{source.name}' ({source.section}) could not list its inputs: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
    return plan


@dataclass
class Totals:
    """The driver's running account of a run; becomes the summary."""

    inputs: int = 0
    written: int = 0
    duplicates: int = 0
    #: per unit index: [written, duplicates]
    per_unit: dict[int, list[int]] = field(default_factory=dict)

    def add_write(self, batch: pa.RecordBatch, kept: Any, written: int, duplicates: int) -> None:
        import numpy as np

        self.written += written
        self.duplicates += duplicates
        units = batch.column(INPUT_COLUMN).to_numpy(zero_copy_only=False)
        counts = np.bincount(units)
        if kept is None:
            kept_counts = counts
        else:
            mask = kept.to_numpy(zero_copy_only=False) if hasattr(kept, "to_numpy") else kept
            kept_counts = np.bincount(units[mask], minlength=len(counts))
        for index in np.flatnonzero(counts):
            entry = self.per_unit.setdefault(int(index), [0, 0])
            entry[0] += int(kept_counts[index])
            entry[1] += int(counts[index] - kept_counts[index])

    def merge(self, other: Totals) -> None:
        """Add another account (a worker's, for other units) to this one."""
        self.inputs += other.inputs
        self.written += other.written
        self.duplicates += other.duplicates
        for index, (written, duplicates) in other.per_unit.items():
            entry = self.per_unit.setdefault(index, [0, 0])
            entry[0] += written
            entry[1] += duplicates

    def count_duplicates(self, dropped: dict[int, int]) -> None:
        """Move rows counted as written to duplicates (the driver found them again)."""
        for index, n in dropped.items():
            entry = self.per_unit.setdefault(index, [0, 0])
            entry[0] -= n
            entry[1] += n
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
    inputs = []
    for index, unit in enumerate(plan.units):
        written, dups = totals.per_unit.get(index, [0, 0])
        read = stats.read.get(index, 0)
        rejected = stats.rejected.get(index, 0)
        inputs.append(
            {
                "input": unit.key,
                "source": plan.sources[unit.source_index].name,
                "size": unit.input.size,
                "mtime": unit.input.mtime,
                # what the input gave: articles read plus records the source rejected;
                # records = written + duplicates + dropped + rejected (docs/reliability.md)
                "records": read + rejected - stats.rows_rejected.get(index, 0),
                "read": read,
                "written": written,
                "duplicates": dups,
                "dropped": stats.dropped.get(index, 0),
                "rejected": rejected,
                "complete": index not in stats.retry,
                "sha256": stats.digests.get(index),
            }
        )
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
        "per_input": inputs,
        "timings": {k: round(v, 4) for k, v in timings.items()},
    }


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


def _printable(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value


def manifest(plan: Plan, summary: dict[str, Any]) -> dict[str, Any]:
    """The run manifest: what ran, with what, and what it did (secrets redacted, everywhere:
    input names and error details may hold a value that came from the environment)."""
    p = plan.pipeline
    redact = p.redact if p.secrets else (lambda value: value)
    return redact(
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
            record(plan.units, summary["per_input"])
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
