"""The plugins a Dask worker process built for a job, kept between the job's tasks.

A task used to rebuild the job's plugins (the plugin manager with its scan of installed entry
points, each plugin, the transforms' ``open``) and close them again after its chunk: about
15 ms a chunk, 4% of a worker's time at 100k articles, and against docs/plugins.md (a
transform's ``open`` and ``close`` run once, before the first batch and after the last). Now a
worker process keeps them, as a ``processes`` worker does: a task takes a free session of its
job (opening one when none is free: one per thread running the job's tasks at once), runs its
chunk in it and gives it back. The driver closes them all after the job's last chunk
(:func:`close`); a failed run drops them (:func:`drop`). A session whose task failed is not
given back: its plugins may have stopped half-way through a batch.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from etl.executors.api import WorkerSession, failed, open_worker

#: jobs whose sessions a worker keeps; beyond it the oldest job's go (closed): a job whose
#: driver died never closes them
MAX_JOBS = 4

_LOCK = threading.Lock()
#: free sessions by job (the digest of its spec), the most recently used job last
_FREE: OrderedDict[str, list[WorkerSession]] = OrderedDict()
#: jobs already closed or dropped: a session given back for one of them (by a task Dask ran
#: twice, still running when the driver closed the job) is closed, not kept
_ENDED: deque[str] = deque(maxlen=64)


@contextmanager
def session(spec_bytes: bytes, job: str, where: str, name: str) -> Iterator[WorkerSession]:
    """A session of ``job`` (``spec_bytes``' digest) for one task; ``name`` goes into the
    names of the files it writes (the task's attempt)."""
    with _LOCK:
        free = _FREE.get(job)
        held = free.pop() if free else None
    if held is None:
        held = open_worker(spec_bytes, where, name)
    held.name = name
    yield held  # a task that raises does not give it back
    stale: list[WorkerSession] = []
    with _LOCK:
        if job in _ENDED:
            stale.append(held)
        else:
            _FREE.setdefault(job, []).append(held)
            _FREE.move_to_end(job)
            while len(_FREE) > MAX_JOBS:
                stale += _FREE.popitem(last=False)[1]
    for old in stale:
        with suppress(Exception):
            old.close()


def _take(job: str) -> list[WorkerSession]:
    with _LOCK:
        _ENDED.append(job)
        return _FREE.pop(job, [])


def close(job: str, dask_worker: Any = None) -> tuple[str, str, str | None, str] | None:
    """On every worker after the job's last chunk (``client.run``): close its sessions (the
    transforms' ``close``); the first error, as :func:`~etl.executors.api.failed` gives it."""
    error = None
    for held in _take(job):
        try:
            held.close()
        except BaseException as exc:
            if error is None:
                label = f"dask worker {dask_worker.address}" if dask_worker else "dask worker"
                error = failed(-1, "", exc, label).error
    return error


def drop(job: str) -> None:
    """On every worker of a failed run: let go of the job's sessions, without closing them
    (a failed run does not close its transforms)."""
    _take(job)
