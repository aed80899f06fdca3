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
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from etl import __version__, log
from etl.accounting import (
    InputRows,
    Totals,
    count_rereads,
    first_inputs,
    input_rows,
)
from etl.errors import ConfigError, EtlError, RunError
from etl.rejects import Rejects
from etl.run import interrupt
from etl.run.checkpoint import (
    Slices,
    check_checkpoint_modes,
    checkpoints_append,
    part_of,
    say_checkpoints,
    so_far,
    total,
)
from etl.run.events import log_stages
from etl.run.fingerprint import pipeline_fingerprints
from etl.run.job import DriverJob
from etl.run.limits import check_rejects
from etl.run.plan import Plan, redact_error
from etl.run.replacing import check_replacing, ids_of_inputs, stage_replacements
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
    return Store(location, plan.sink.storage_options() if temporary is None else None), temporary


def run_plan(plan: Plan) -> dict[str, Any]:
    """Stream and commit a built plan; return the summary.

    On error the dataset is as it was, but for the checkpoints the run committed (with
    ``[run] checkpoint`` the units run in slices, each committed as it ends; see
    :mod:`etl.run.checkpoint`). Ctrl-C and SIGTERM raise :class:`~etl.errors.Interrupted`,
    which says what was committed.
    """
    log.add_secrets(plan.pipeline.secrets)
    reset_fault_counts()
    logger = log.get_logger(run_id=plan.run.run_id)
    started = time.perf_counter()
    error: BaseException | None = None
    summary: dict[str, Any] = {}
    plan.hook.etl_before_run(run=plan.run, pipeline=plan.pipeline)
    store, temporary = open_store(plan)
    locked = False
    #: summaries of the checkpoints committed so far (one for a run without checkpoints)
    committed: list[dict[str, Any]] = []
    try:
        t0 = time.perf_counter()
        _take_store(plan, store)
        locked = True
        seen, schema_plan = _prepare_store(plan, store)
        slices = Slices(len(plan.units), plan.pipeline.checkpoint)
        for transform in plan.transforms:
            transform.open(plan.run)
        opened = time.perf_counter() - t0
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
        keys_seen: set[Any] = set()  # merge mode: the first row of a key wins, run-wide
        for number, (start, stop) in enumerate(slices, 1):
            if number > 1:  # the first checkpoint replaced (overwrite) or created (error)
                checkpoints_append(plan)
                schema_plan = _plan_schema(plan, store)
            last = stop == len(plan.units)
            part = part_of(plan, number, start, stop, last)
            t0 = time.perf_counter()
            job = DriverJob(part, seen, keys_seen)
            _run_part(part, job, store, schema_plan, committed, opened if number == 1 else 0)
            slices.took(time.perf_counter() - t0)
        summary = total(plan, committed, started)
        log_stages(plan, summary, logger)
        logger.info(
            "run committed",
            stage="commit",
            written=summary["written"],
            rejected=summary["rejected"],
            checkpoints=len(committed),
        )
        return summary
    except BaseException as exc:
        error = exc
        if isinstance(exc, KeyboardInterrupt):
            raise interrupt.interrupted(exc, committed, plan.target()) from exc
        if isinstance(exc, EtlError):
            failure = exc
        elif isinstance(exc, OSError):
            failure = store_error(plan, store, exc, "writing")
        else:
            failure = RunError(f"the run failed: {type(exc).__name__}: {exc}")
        redact_error(say_checkpoints(failure, committed), plan.pipeline)
        if failure is exc:
            raise
        raise failure from exc
    finally:
        _close_executor(plan, logger)
        if locked:
            store.release_lock()
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
        plan.hook.etl_after_run(run=plan.run, summary=summary, error=error)


def _run_part(
    part: Plan,
    job: DriverJob,
    store: Store,
    schema_plan: Any,
    committed: list[dict[str, Any]],
    opened: float,
) -> None:
    """Run one slice of the units (all of them without checkpoints) and commit it.

    Its summary joins ``committed`` once its commit point is written (with ``pending``
    while the commit is not finished: the next run or ``etl recover`` finishes it). On
    error before that point its staging is dropped. The last slice closes the transforms
    before it commits (a failing ``close`` fails the commit, as without checkpoints).
    """
    logger = log.get_logger(run_id=part.run.run_id)
    sink = part.sink
    timings: dict[str, float] = {"open": opened}
    summary: dict[str, Any] = {}
    sink_open = False
    try:
        t0 = time.perf_counter()
        sink.open(part.run, part.schema)
        sink_open = True
        timings["open"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        part.executor.execute(job)
        job.finish()
        job.count(part.executor.name)
        timings["stream"] = time.perf_counter() - t0
        if part.run.extra.get("checkpoint", {"last": True})["last"]:
            for transform in part.transforms:
                transform.close()
        summary = summarize(part, job.stats(), job.totals, timings)
        if "checkpoint" in part.run.extra:
            summary["checkpoint"] = part.run.extra["checkpoint"]
        # too many rejects in the run so far: roll this slice back
        check_rejects(part, so_far(committed, summary), job.stats().rejects)
        t0 = time.perf_counter()
        summary["per_input"] = account = store.memory.account(
            part.units, summary["per_input"], part.fingerprints
        )
        # an overwrite replaces what the dataset held: a duplicate is the corpus's own, never
        # an article read again, whichever inputs the dataset had ingested before
        known = store.memory.table().column("key")
        count_rereads(
            summary, account, known.slice(0, 0) if part.sink.mode() == "overwrite" else known
        )
        # inputs a failure that may pass (a fault in code, I/O, a fetch) left to read again
        summary["inputs_to_retry"] = int(
            (~account.table.column("complete").to_numpy(zero_copy_only=False)).sum()
        )
        summary["timings"]["total"] = round(sum(timings.values()), 4)
        _commit(part, store, job, summary, schema_plan)
        timings["commit"] = time.perf_counter() - t0
        summary["timings"].update({k: round(v, 4) for k, v in timings.items()})
        summary["timings"]["total"] = round(sum(timings.values()), 4)
        committed.append(summary)
        if "checkpoint" in summary:
            logger.info("checkpoint committed", stage="commit", inputs=len(part.units))
    except BaseException as exc:
        run_id = part.run.run_id
        # past the commit point the slice is committed (its commit perhaps finished already:
        # an interrupt can come after the last step); before it, it is rolled back
        past = store.committed(run_id)
        if not isinstance(exc, CommitNotFinished) and (not past or store.committed_point(run_id)):
            _abort(part, store, sink_open, logger)
        if past and not any(done is summary for done in committed):
            summary["pending"] = store.committed_point(run_id)  # the next run finishes it
            committed.append(summary)
        if past and not store.committed_point(run_id):
            store.abort(run_id)  # stopped while the finished commit removed its staging
        raise


def _close_executor(plan: Plan, logger: Any) -> None:
    """Stop what the executor kept between jobs (its workers, between checkpoints); a
    failure to do so is logged, never raised over the run's outcome."""
    try:
        plan.executor.close()
    except Exception as exc:
        logger.error("stopping the executor failed", stage="close", error=str(exc))


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
    sink = plan.sink
    mode = sink.mode()
    check_replacing(plan, mode)
    check_checkpoint_modes(plan)
    try:
        store.recover(_finisher(plan))
        if mode == "error" and store.exists():
            raise ConfigError(
                f"plugin '{sink.name}' ({sink.section}): the dataset {store.root} already "
                "exists and mode is 'error'",
                hint='use mode = "append" or "overwrite", or another path',
            )
        schema_plan = _plan_schema(plan, store)
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
            seen -= set(ids_of_inputs(plan, store, keys).column("id").to_pylist())
        if mode == "overwrite" and store.exists():
            plan.replaced_rows = len(store.ids())
    except OSError as exc:
        raise store_error(plan, store, exc, "opening") from exc
    return seen, schema_plan


def _plan_schema(plan: Plan, store: Store) -> Any:
    """What this run (or checkpoint) does to the dataset's schema; refuses unsafe changes."""
    from etl.evolution import plan_schema

    sink = plan.sink
    return plan_schema(
        store.root, plan.schema, mode=sink.mode(), plugin=sink.name, section=sink.section
    )


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
        removed = stage_replacements(plan, store, job, summary["per_input"])
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
    reasons = stats.rejects.reasons  # counted as they came: the rows are on disk
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
        "rejects_first": plan.pipeline.redact(first_inputs(stats.rejects.first_of_each_reason(3))),
        "plugin_seconds": {k: round(v, 4) for k, v in stats.seconds.items()},
        "counters": dict(stats.counters),
        "transforms": {k: {"in": v[0], "out": v[1]} for k, v in stats.transform_rows.items()},
        "per_input": input_rows(plan.units, [s.name for s in plan.sources], stats, totals),
        "timings": {k: round(v, 4) for k, v in timings.items()},
    }


def safe_rejects(plan: Plan, rows: Rejects | list[dict[str, Any]]) -> pa.Table:
    """The rejects table, secrets redacted and undecodable characters (lone surrogates of
    odd file names) replaced, so that writing it can never fail the commit. The rows come
    from disk (:class:`etl.rejects.Rejects`): only this table holds them all in memory."""
    rejects = rows if isinstance(rows, Rejects) else Rejects(rows)
    return rejects.table(plan.pipeline.secrets)


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
