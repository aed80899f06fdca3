"""Stream and commit a plan: open the store, run the executor, commit through the store.

The store (at the sink's location) owns the dataset's state: the lock is taken and any run
a crash left half-done is finished or rolled back before the sink opens; the inputs memory
filters the units; the id index seeds the run's id filter; the commit writes the sink's
payload, the rejects, the per-input account, the ids and the manifest in one commit point.
A failure before that point leaves the dataset as it was.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from etl import __version__, log
from etl.accounting import (
    InputRows,
    Totals,
    count_rereads,
    first_inputs,
    input_rows,
    printable,
)
from etl.context import rejects_table
from etl.errors import ConfigError, EtlError, RunError
from etl.plugin import ReplacesRows
from etl.run.events import log_stages
from etl.run.fingerprint import pipeline_fingerprints
from etl.run.job import DriverJob
from etl.run.plan import Plan, redact_error
from etl.store import Store
from etl.store.faults import reset_fault_counts
from etl.store.hashing import key_digest
from etl.stream import StreamStats


def open_store(plan: Plan) -> tuple[Store, str | None]:
    """The store at the sink's location (a temporary one when the sink names none)."""
    location = plan.sink.location()
    temporary = None
    if location is None:
        temporary = tempfile.mkdtemp(prefix="etl-state-")
        location = temporary
    return Store(location), temporary


def run_plan(plan: Plan) -> dict[str, Any]:
    """Stream and commit a built plan; return the summary. The dataset is untouched on error."""
    log.add_secrets(plan.pipeline.secrets)
    reset_fault_counts()
    logger = log.get_logger(run_id=plan.run.run_id)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    error: BaseException | None = None
    summary: dict[str, Any] = {}
    plan.hook.etl_before_run(run=plan.run, pipeline=plan.pipeline)
    sink = plan.sink
    store, temporary = open_store(plan)
    locked = opened = False
    try:
        t0 = time.perf_counter()
        _take_store(plan, store)
        locked = True
        seen, schema_plan = _prepare_store(plan, store)
        sink.open(plan.run, plan.schema)
        opened = True
        for transform in plan.transforms:
            transform.open(plan.run)
        timings["open"] = time.perf_counter() - t0
        logger.info(
            "run started", stage="plan", inputs=len(plan.units), skipped=plan.skipped_inputs
        )
        if plan.stale_inputs:
            logger.warning(
                f"the pipeline changed since {plan.stale_inputs} of the inputs skipped as "
                "unchanged were ingested (its sources, transforms or their options); run "
                "`etl run --reprocess` to read every input again and replace their rows",
                stage="plan",
            )
        t0 = time.perf_counter()
        job = DriverJob(plan, seen)
        plan.executor.execute(job)
        job.count(plan.executor.name)
        timings["stream"] = time.perf_counter() - t0
        for transform in plan.transforms:
            transform.close()
        summary = summarize(plan, job.stats(), job.totals, timings)
        t0 = time.perf_counter()
        summary["per_input"] = account = store.memory.account(
            plan.units, summary["per_input"], plan.fingerprints
        )
        count_rereads(summary, account, store.memory.table().column("key"))
        log_stages(plan, summary, logger)
        # inputs a failure that may pass (a fault in code, I/O, a fetch) left to read again
        summary["inputs_to_retry"] = int(
            (~account.table.column("complete").to_numpy(zero_copy_only=False)).sum()
        )
        summary["timings"]["total"] = round(time.perf_counter() - started, 4)
        _commit(plan, store, job, summary, schema_plan)
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
        if locked and not isinstance(exc, CommitNotFinished):
            _abort(plan, store, opened, logger)
        if isinstance(exc, EtlError):
            redact_error(exc, plan.pipeline)
            raise
        if isinstance(exc, KeyboardInterrupt):
            raise
        if isinstance(exc, OSError):
            raise store_error(plan, store, exc, "writing") from exc
        raise RunError(
            plan.pipeline.redact(f"the run failed: {type(exc).__name__}: {exc}")
        ) from exc
    finally:
        if locked:
            store.release_lock()
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
        plan.hook.etl_after_run(run=plan.run, summary=summary, error=error)


def _take_store(plan: Plan, store: Store) -> None:
    """Make the store's folder and take its lock; a clear error when that cannot be done."""
    if store.root.exists() and not store.root.is_dir():
        raise plan.sink.error(f"{store.root} exists and is not a folder")
    inside, outer = store.layout.other_datasets()
    if inside or outer:
        other = (
            f"holds another dataset, {inside[0]}" if inside else f"lies inside the dataset {outer}"
        )
        raise plan.sink.error(
            f"the dataset folder {store.root} {other}: one would read, replace or overwrite "
            "the other's files",
            hint="give each dataset its own folder, side by side (out/news, out/feeds)",
        )
    try:
        store.root.mkdir(parents=True, exist_ok=True)
        store.acquire_lock(plan.run.run_id, wait=float(plan.run.extra.get("wait", 0.0)))
    except OSError as exc:
        raise store_error(plan, store, exc, "taking the writer lock") from exc


def _prepare_store(plan: Plan, store: Store) -> tuple[set[str], Any]:
    """Finish earlier runs, check the mode and schema, filter units; the ids to skip."""
    from etl.evolution import plan_schema

    sink = plan.sink
    mode = sink.mode()
    _check_replacing(plan, mode)
    try:
        store.recover(_finisher(plan))
        if mode == "error" and store.exists():
            raise ConfigError(
                f"plugin '{sink.name}' ({sink.section}): the dataset {store.root} already "
                "exists and mode is 'error'",
                hint='use mode = "append" or "overwrite", or another path',
            )
        schema_plan = plan_schema(
            store.root, plan.schema, mode=mode, plugin=sink.name, section=sink.section
        )
        plan.skipped_inputs = plan.stale_inputs = plan.replaced_rows = 0
        plan.fingerprints = pipeline_fingerprints(plan)
        appending = mode in ("append", "merge")
        if appending and not (plan.run.full or plan.run.reprocess):
            before = len(plan.units)
            plan.units, plan.stale_inputs = store.memory.sort(plan.units, plan.fingerprints)
            plan.skipped_inputs = before - len(plan.units)
        seen = store.ids() if appending else set()
        if appending and plan.run.reprocess:
            keys = pa.array(sorted({key_digest(u.key) for u in plan.units}), pa.string())
            seen -= set(_ids_of_inputs(plan, store, keys).column("id").to_pylist())
        if mode == "overwrite" and store.exists():
            plan.replaced_rows = len(store.ids())
    except OSError as exc:
        raise store_error(plan, store, exc, "opening") from exc
    return seen, schema_plan


def _check_replacing(plan: Plan, mode: str) -> None:
    """Merge mode and ``--reprocess`` need a sink that can replace committed rows."""
    sink = plan.sink
    replacing = mode == "merge" or (plan.run.reprocess and mode != "overwrite")
    if replacing and not isinstance(sink, ReplacesRows):
        what = 'mode = "merge"' if mode == "merge" else "etl run --reprocess"
        raise ConfigError(
            f"plugin '{sink.name}' ({sink.section}): {what} needs a sink that can replace "
            f"the rows it committed, and '{sink.name}' cannot (it does not implement "
            "ReplacesRows)",
            hint='use mode = "append", or "overwrite" to replace the whole dataset',
        )


def _ids_of_inputs(plan: Plan, store: Store, keys: Any) -> pa.Table:
    """The committed ids (and their inputs) that came from the inputs whose key digests
    are ``keys`` (what ``--reprocess`` replaces)."""
    found = store.index.of_inputs(keys)
    if found is None:
        raise ConfigError(
            f"plugin '{plan.sink.name}' ({plan.sink.section}): the dataset {plan.target()} "
            "holds runs from before etl kept the input of each article, so --reprocess "
            "cannot tell which rows to replace",
            hint="run once with --set sink.mode=overwrite (it replaces everything); later "
            "runs can use --reprocess",
        )
    return found


def _stage_replacements(plan: Plan, store: Store, job: DriverJob, account: Any) -> pa.Array | None:
    """Have the sink stage the removal of the committed rows this run replaces; their ids.

    ``--reprocess``: the rows of the inputs read again, except those of an input whose
    reading failed part way that were not written again (a failure must not hide them).
    Merge mode: the rows whose key a row of this run has.
    """
    sink = plan.sink
    removed: list[pa.Array] = []
    if plan.run.reprocess and sink.mode() != "overwrite":
        table = account.table
        old = _ids_of_inputs(plan, store, table.column("key"))
        failed = table.column("key").filter(pc.invert(table.column("complete")))
        kept = pc.and_(
            pc.is_in(old.column("input"), value_set=failed),
            pc.invert(pc.is_in(old.column("id"), value_set=job.ids())),
        )
        removed.append(sink.stage_replace("id", old.column("id").filter(pc.invert(kept))))
    if job.key is not None:
        removed.append(sink.stage_replace(job.key, job.keys()))
    removed = [r.combine_chunks() if isinstance(r, pa.ChunkedArray) else r for r in removed]
    return pa.concat_arrays([r.cast(pa.string()) for r in removed]) if removed else None


def _finisher(plan: Plan) -> Any:
    """Finishes a sink's part of a commit found in the store (after a crash)."""
    sink = plan.sink

    def finish(name: str, payload: dict[str, Any]) -> None:
        if name != sink.name:
            raise RunError(
                f"the dataset {plan.target()} holds a run committed by the sink '{name}' "
                f"that was not finished; this pipeline's sink is '{sink.name}'",
                hint=f"run the pipeline that wrote it (sink '{name}') once to finish it",
            )
        return sink.commit(payload)

    return finish


def _commit(
    plan: Plan, store: Store, job: DriverJob, summary: dict[str, Any], schema_plan: Any
) -> None:
    from etl.evolution import schema_document

    sink = plan.sink
    run_id = plan.run.run_id
    try:
        removed = _stage_replacements(plan, store, job, summary["per_input"])
        if removed is not None:
            summary["replaced"] = len(removed)
        account = summary["per_input"].table
        id_inputs = account.column("key").take(pa.array(job.id_units(), pa.int64()))
        counts = ("run_id", "read", "written", "duplicates", "dropped", "rejected")
        payload = sink.prepare(
            {**{k: summary[k] for k in counts}, "schema_change": schema_plan.change}
        )
        store.commit(
            run_id,
            sink=(sink.name, payload),
            finish_sink=_finisher(plan),
            manifest=manifest(plan, summary, sink.mode()),
            rejects=safe_rejects(plan, job.stats().rejects),
            account=summary["per_input"],
            ids=job.ids(),
            id_inputs=id_inputs,
            removed_ids=removed,
            schema_document=schema_document(schema_plan, run_id),
            replace=sink.mode() == "overwrite",
        )
    except OSError as exc:
        if not store.committed_point(run_id):
            raise store_error(plan, store, exc, "committing") from exc
        # past the commit point the run is committed: finish it now if the cause passed
        # (a full disk freed by the failed attempt's own temporary files), so that the
        # message below is only given when the dataset does need `etl recover`
        try:
            store.apply(run_id, _finisher(plan))
        except OSError as again:
            raise CommitNotFinished(
                f"the run was committed but could not be finished in {plan.target()}: "
                f"{again.strerror or again}",
                hint=f"fix the cause, then run `etl recover {plan.target()}` (any next run "
                "does it too) to finish it",
            ) from again
        log.get_logger(run_id=run_id).warning(
            "finishing the commit failed once and was done again",
            stage="commit",
            error=exc.strerror or str(exc),
        )


class CommitNotFinished(RunError):
    """A run past its commit point that could not be finished (twice): ``etl recover``."""


def _abort(plan: Plan, store: Store, opened: bool, logger: Any) -> None:
    """Undo a failed run: the sink drops its staging, the store its own; a run past its
    commit point is finished instead (or left for the next run to finish)."""
    run_id = plan.run.run_id
    if store.committed_point(run_id):
        try:
            store.apply(run_id, _finisher(plan))
        except Exception as exc:  # the next run (or etl recover) finishes it
            logger.error("finishing the commit failed", stage="abort", error=str(exc))
        return
    if opened:
        try:
            plan.sink.abort()
        except Exception as exc:  # keep the first error; say the second
            logger.error("abort failed", stage="abort", error=str(exc))
    store.abort(run_id)


def store_error(plan: Plan, store: Store, exc: OSError, doing: str) -> RunError:
    """A filesystem failure while writing the dataset, with what to do about it."""
    why = exc.strerror or str(exc)
    hint = {
        errno.ENOSPC: "free some space on that filesystem, or point [sink] path elsewhere",
        errno.EDQUOT: "raise the disk quota, or point [sink] path elsewhere",
        errno.EACCES: "check that this user may write into the dataset folder",
        errno.EPERM: "check that this user may write into the dataset folder",
        errno.EROFS: "that filesystem is mounted read-only; point [sink] path elsewhere",
    }.get(exc.errno or 0, "check the dataset folder and its filesystem")
    sink = plan.sink
    return RunError(
        f"plugin '{sink.name}' ({sink.section}): cannot write the dataset {store.root} "
        f"({doing}): {why}; nothing of this run was committed",
        hint=hint,
    )


def summarize(
    plan: Plan, stats: StreamStats, totals: Totals, timings: dict[str, float]
) -> dict[str, Any]:
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
        "replaced": plan.replaced_rows,
        "inputs_other_pipeline": plan.stale_inputs,
        "rejects_by_reason": dict(reasons.most_common()),
        # input names may hold a value that came from the environment
        "rejects_first": plan.pipeline.redact(first_inputs(stats.rejects)),
        "plugin_seconds": {k: round(v, 4) for k, v in stats.seconds.items()},
        "counters": dict(stats.counters),
        "transforms": {k: {"in": v[0], "out": v[1]} for k, v in stats.transform_rows.items()},
        "per_input": input_rows(plan.units, [s.name for s in plan.sources], stats, totals),
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
        return rejects_table([{k: printable(v) for k, v in row.items()} for row in rows])


def _user() -> str | None:
    """Who ran it (for `etl runs`); None where the system cannot say."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def manifest(plan: Plan, summary: dict[str, Any], mode: str) -> dict[str, Any]:
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
            "user": _user(),
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
            "summary": {k: v for k, v in summary.items() if k != "per_input"},
            "dataset": str(plan.sink.location() or ""),
            "sink_mode": mode,
        }
    )
    rows = summary.get("per_input")
    if p.secrets and isinstance(rows, InputRows):
        table = rows.table
        names = pa.array(p.redact(table.column("input").to_pylist()), pa.string())
        summary["per_input"] = InputRows(table.set_column(0, "input", names))
    return result
