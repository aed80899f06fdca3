"""The plugins a Dask worker process built for a job, kept between the job's tasks.

A task used to rebuild the job's plugins (the plugin manager with its scan of installed entry
points, each plugin, the transforms' ``open``) and close them again after its chunk: about
15 ms a chunk, 4% of a worker's time at 100k articles, and against docs/plugins.md (a
transform's ``open`` and ``close`` run once, before the first batch and after the last). Now a
worker process keeps them, as a ``processes`` worker does: a task takes a free session of its
job (opening one when none is free: one per thread running the job's tasks at once), runs its
chunk in it and gives it back. After the job's last chunk the driver has every worker close
them (:func:`etl.executors.dask_task.close_sessions`); a failed run drops them. A session
whose task failed is not given back: its plugins may have stopped half-way through a batch.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from etl.executors.api import WorkerSession, open_worker

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


def end(job: str) -> list[WorkerSession]:
    """The job is over on this worker: its free sessions, for the caller to close or drop."""
    with _LOCK:
        _ENDED.append(job)
        return _FREE.pop(job, [])
