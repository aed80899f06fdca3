"""What runs on a Dask worker for the dask executor (the driver's side is
:mod:`etl.executors.dask`): the preflight, one task per chunk of work units, and the close
of the plugins the worker kept for the job (:mod:`etl.executors.dask_sessions`)."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from etl.executors import dask_sessions as sessions
from etl.executors.api import ChunkResult, check_worker, failed
from etl.executors.dask_ask import asker

#: the specs (by digest) this worker process passed the preflight of: a worker checks once
#: per run, whether it was there at the start (client.run) or joined later (its first task)
_CHECKED: set[str] = set()


def where(worker: Any = None) -> tuple[str, str]:
    """(the worker as errors name it, its name)."""
    if worker is None:
        from distributed import get_worker

        worker = get_worker()
    name = str(worker.name)
    label = f"dask worker {worker.address}" + (f" (name {name})" if name != worker.address else "")
    return label, name


def digest(spec_bytes: bytes) -> str:
    """The job a spec is (the key of a worker's checks and kept sessions)."""
    return hashlib.sha256(spec_bytes).hexdigest()


def preflight(
    spec_bytes: bytes, probe: bytes | None, dask_worker: Any = None
) -> tuple[str, str, str | None, str] | None:
    """Run on every worker before any task: can it build the plan's plugins, open the
    first input (``probe``, packed) and write the sink's staged files?"""
    label, _ = where(dask_worker)
    try:
        check_worker(spec_bytes, label, probe)
    except BaseException as exc:
        return failed(-1, "", exc, label).error
    _CHECKED.add(digest(spec_bytes))
    return None


def run_task(
    spec_bytes: bytes,
    number: int,
    units: bytes,
    probe: bytes | None,
    run_id: str = "",
    hold_bytes: int = 0,
) -> ChunkResult:
    """One Dask task: a chunk of work units through source and transforms into staged files
    (holding up to ``hold_bytes`` of its articles while it asks the driver which are new)."""
    label, name = where()
    try:
        job = digest(spec_bytes)
        if job not in _CHECKED:  # a worker that joined after the run's preflight
            check_worker(spec_bytes, label, probe)
            _CHECKED.add(job)
        # each attempt names its files with a token of its own: Dask may run a chunk again
        # (its worker died or was cut off, maybe still writing), on a worker of the same
        # name (a nanny restarts it under its old name); no attempt may touch the files of
        # another, least of all ones the driver adopted
        attempt = f"dask-{name}-{secrets.token_hex(4)}"
        with sessions.session(spec_bytes, job, label, attempt) as session:
            # a hint, answered at once: not for a chunk whose notes the driver must decide
            # on in unit order (it gets them with the result, and decides when it takes it)
            hint = session.can_ask and not session.asks_with_notes and hold_bytes > 0
            ask = asker(run_id, attempt) if hint else None
            result = session.run_chunk(number, units, ask, hold_bytes, hint=True)
        result.worker = name
        return result
    except BaseException as exc:
        return failed(number, name, exc, label)


def close_sessions(job: str, dask_worker: Any = None) -> tuple[str, str, str | None, str] | None:
    """On every worker after the job's last chunk (``client.run``): close the sessions it
    kept for the job (the transforms' ``close``); the first error, as :func:`failed` gives
    it."""
    error = None
    for held in sessions.end(job):
        try:
            held.close()
        except BaseException as exc:
            if error is None:
                error = failed(-1, "", exc, where(dask_worker)[0]).error
    return error


def drop_sessions(job: str) -> None:
    """On every worker of a failed run: let go of the job's sessions, without closing them
    (a failed run does not close its transforms)."""
    sessions.end(job)


def etl_version() -> str:
    """The etl version a worker has (the driver checks it matches)."""
    from etl import __version__

    return __version__
