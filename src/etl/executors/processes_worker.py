"""The worker side of the ``processes`` executor: what runs in each worker process, and
the messages the driver sends it (the driver's side is :mod:`etl.executors.processes`)."""

from __future__ import annotations

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
    # (the ids of a big chunk): each would wait for the other to read. Answers go to their
    # own queue: a chunk is finished after the next one is taken (see _run_job).
    mail = _Mail(conn)
    threading.Thread(target=mail.take, name="etl-worker-inbox", daemon=True).start()
    spec: bytes | None = spec_bytes
    while spec is not None:
        if not _run_job(mail, spec, name, where, hold_bytes):
            return
        message = mail.inbox.get()  # the next job, or None: the driver is done with this worker
        spec = message.spec if isinstance(message, NextJob) else None


class _Mail:
    """A worker's pipe; what comes in, sorted into two queues."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.answers: queue.SimpleQueue[Any] = queue.SimpleQueue()
        #: answers taken off the queue while waiting for another chunk's
        self._early: dict[int, list[bool] | None] = {}

    def take(self) -> None:
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                message = None
            if message is None:  # the driver is gone: whoever waits learns it
                self.answers.put(None)
                self.inbox.put(None)
                return
            (self.answers if isinstance(message, IdsAnswer) else self.inbox).put(message)

    def send(self, message: Any) -> None:
        self.conn.send(message)

    def asker(self, number: int, name: str) -> Callable[..., Callable[[], list[bool] | None]]:
        """The question of chunk ``number``: sent at once; returns what waits for its answer."""

        def ask(ids: list[str], noted: Any = None) -> Callable[[], list[bool] | None]:
            self.send(ChunkIds(number, name, ids, noted))
            return lambda: self._answer(number)

        return ask

    def _answer(self, number: int) -> list[bool] | None:
        # the driver answers in unit order: a chunk this worker took after this one, but
        # numbered before it (a lost worker's chunk, run again), is answered first
        while number not in self._early:
            message = self.answers.get()
            if message is None:
                self.answers.put(None)
                raise RunError("the driver closed the connection")
            self._early[message.chunk] = message.keep
        return self._early.pop(number)


def _run_job(mail: _Mail, spec_bytes: bytes, name: str, where: str, hold_bytes: int) -> bool:
    """Run one job's chunks until the driver says it is done; False if the worker must end
    (it failed, or the driver is gone).

    A chunk is finished (the driver's answer taken, its files written, its result sent)
    after the next chunk is read, if the next one is there: the driver answers in unit
    order, so a question waits for the other workers' earlier chunks, and a worker that
    waited for its answer at once sat idle for a quarter of a 100k-article run. (A second
    thread that finished chunks while the next one was read made the run slower: the
    reading thread gives up the GIL at every file it opens, and waited for it each time.)
    """
    try:
        session = open_worker(spec_bytes, where, name)
    except BaseException as exc:
        mail.send(failed(-1, name, exc, where))
        return False

    def finish(number: int, finishing: Callable[[], Any]) -> bool:
        try:
            result = finishing()
        except BaseException as exc:
            result = failed(number, name, exc, where)
        try:
            mail.send(result)
        except OSError:  # the driver is gone
            return False
        return result.error is None

    last: tuple[int, Callable[[], Any]] | None = None  # read, to be finished
    while True:
        try:
            message = mail.inbox.get_nowait()
        except queue.Empty:  # no next chunk yet (or the job's last): finish this one now
            if last is not None and not finish(*last):
                return False
            last = None
            message = mail.inbox.get()
        if message is None:
            return False
        if isinstance(message, JobDone):
            break
        number, units = message
        try:
            ask = mail.asker(number, name) if session.can_ask else None
            started = session.start_chunk(number, units, ask, hold_bytes)
        except BaseException as exc:
            if last is None or finish(*last):
                mail.send(failed(number, name, exc, where))
            return False
        if last is not None and not finish(*last):
            return False
        last = (number, started)
    if last is not None and not finish(*last):
        return False
    session.close()
    mail.send("closed")
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
