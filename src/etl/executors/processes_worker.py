"""The worker side of the ``processes`` executor: what runs in each worker process, and
the messages the driver sends it (the driver's side is :mod:`etl.executors.processes`)."""

from __future__ import annotations

import collections
import os
import queue
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from etl.errors import RunError
from etl.executors.api import ChunkIds, failed, open_worker


def worker_main(conn: Connection, spec_bytes: bytes, name: str, hold_bytes: int) -> None:
    """A worker process: build the plugins, then run chunks until told the job is done;
    then the next job's plugins (a checkpointed run's next slice), until the driver is done."""
    # Ctrl-C reaches the whole process group; the driver decides and stops the workers
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    where = f"worker process {name} (pid {os.getpid()})"
    # A thread takes every message off the pipe as it comes, so the driver never blocks
    # sending a chunk to this worker while this worker blocks sending it a large message
    # (the ids of a big chunk): each would wait for the other to read.
    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def take_messages() -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                message = None
            inbox.put(message)
            if message is None:
                return

    threading.Thread(target=take_messages, name="etl-worker-inbox", daemon=True).start()
    spec: bytes | None = spec_bytes
    while spec is not None:
        if not _run_job(conn, inbox, spec, name, where, hold_bytes):
            return
        message = inbox.get()  # the next job, or None: the driver is done with this worker
        spec = message.spec if isinstance(message, NextJob) else None


def _run_job(
    conn: Connection,
    inbox: queue.SimpleQueue[Any],
    spec_bytes: bytes,
    name: str,
    where: str,
    hold_bytes: int,
) -> bool:
    """Run one job's chunks until the driver says it is done; False if the worker must end
    (it failed, or the driver is gone)."""
    try:
        session = open_worker(spec_bytes, where, name)
    except BaseException as exc:
        conn.send(failed(-1, name, exc, where))
        return False
    # chunks the driver sent while this worker waited for an answer
    queued: collections.deque[Any] = collections.deque()

    def asker(number: int) -> Callable[..., list[bool] | None]:
        def ask(ids: list[str], noted: Any = None) -> list[bool] | None:
            conn.send(ChunkIds(number, name, ids, noted))
            while True:
                message = inbox.get()
                if isinstance(message, IdsAnswer) and message.chunk == number:
                    return message.keep
                if message is None:  # the driver is gone
                    raise RunError("the driver closed the connection")
                queued.append(message)

        return ask

    # ask the driver which ids are new before writing, so it never rewrites a file for a
    # duplicate (it did for nearly every file of a news corpus)
    while True:
        message = queued.popleft() if queued else inbox.get()
        if message is None:
            return False
        if isinstance(message, JobDone):
            break
        number, units = message
        try:
            ask = asker(number) if session.can_ask else None
            result = session.run_chunk(number, units, ask, hold_bytes)
        except BaseException as exc:
            conn.send(failed(number, name, exc, where))
            return False
        conn.send(result)
    session.close()
    conn.send("closed")
    return True


@dataclass
class JobDone:
    """The driver to a worker: no more chunks for this job; close it and wait for the next."""


@dataclass
class NextJob:
    """The driver to a worker that closed its job: build the plugins of the next one."""

    spec: bytes


@dataclass
class IdsAnswer:
    """The driver's answer to a worker's ChunkIds: which ids to write (None: all)."""

    chunk: int
    keep: list[bool] | None
