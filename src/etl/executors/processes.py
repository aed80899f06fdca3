"""All cores of one machine: work units spread over worker processes.

Each worker process rebuilds the plugins from the pipeline once, then takes chunks of work
units from the driver over its own pipe (at most ``prefetch`` chunks waiting per worker, so
memory stays flat however many units there are), runs source -> transforms and writes staged
Parquet files into the sink's staging folder. The driver adopts the files in unit order and
the sink commits them once, as one run. A worker that dies is replaced and its chunks run
again (``on_worker_loss = "retry"``, the default; a chunk lost twice fails the run, nothing
committed).
A checkpointed run executes one job per checkpoint: the workers stay for the next job (they
rebuild the plugins from its spec) until :meth:`ProcessesExecutor.close`.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import signal
import threading
from multiprocessing.connection import wait
from typing import TYPE_CHECKING, Any

from etl import log
from etl.errors import RunError
from etl.executors.api import (
    ChunkIds,
    chunk_bounds,
    chunks,
    pack_units,
    parts_alone,
    unit_sizes,
)
from etl.executors.processes_worker import IdsAnswer, JobDone, NextJob, worker_main
from etl.plugin import Executor, Option

#: big inputs are split into parts of this many bytes (sources that split inputs only)
DEFAULT_SPLIT_BYTES = 32 * 1024 * 1024

#: a worker holds up to this much of a chunk's articles (Arrow memory) while the driver says
#: which ids are new; a chunk of 1,000 news articles is about 5 MB
DEFAULT_HOLD_BYTES = 64 * 1024 * 1024

if TYPE_CHECKING:
    from etl.executors.api import Answer, Job
    from etl.stream import StreamStats


class _Worker:
    def __init__(self, ctx: Any, spec_bytes: bytes, name: str, hold_bytes: int) -> None:
        self.name = name
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=worker_main,
            args=(child, spec_bytes, name, hold_bytes),
            name=f"etl-{name}",
            daemon=True,
        )
        self.process.start()
        child.close()
        self.pending: list[int] = []
        #: pending chunks the worker has read (it asked which ids are new): it reads the
        #: next one while it waits for the answer, so each frees a place in the queue
        self.asked: set[int] = set()
        self.stopping = False
        self.closed = False

    def next_job(self, spec_bytes: bytes) -> None:
        """Give a worker that closed its last job the next one (a run's next checkpoint)."""
        self.conn.send(NextJob(spec_bytes))
        self.pending, self.stopping, self.closed = [], False, False
        self.asked = set()

    def describe_death(self) -> str:
        code = self.process.exitcode
        if code is not None and code < 0:
            try:
                how = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        return f"worker process {self.name} (pid {self.process.pid}) {how}"

    def stop(self) -> None:
        """End the worker: one that closed its job exits when told no job follows."""
        if self.closed and self.process.is_alive():
            self.conn.send(None)
            self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.conn.close()


def _context(method: str) -> Any:
    """The multiprocessing context; a fork server preloads :mod:`etl.run.warm` (named, not
    imported: this process never needs it, and executors import no runner module).

    The fork server is started once per driver process (the first run that needs it) and
    stays until the driver exits; it does not see environment changes made after it
    started.
    """
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(["etl.run.warm"])
    return ctx


def start_fork_server(start_method: Any = "forkserver") -> None:
    """Start the fork server (once per process) if workers start by ``forkserver``.

    ``etl run`` calls this as soon as it has read a pipeline file whose executor is
    ``processes`` (:func:`etl.executors.early.start_early`): before the driver imports
    pyarrow and discovers the plugins (0.3 s), which the server then imports beside it on
    the other core. :meth:`ProcessesExecutor.prepare` calls it again (nothing to do then).
    """
    if start_method != "forkserver":
        return
    from multiprocessing import forkserver

    _context(start_method)
    forkserver.ensure_running()


def _warm_pyarrow() -> None:
    """Make the driver's first Arrow array now: pyarrow imports pandas on it (0.2 s), which
    otherwise falls mid-run (the first worker's ids, while every worker waits for an
    answer) or into the run's serial end (the summary). Run in a thread while the driver
    lists the units and waits for the fork server's imports (a blocking read): on a small
    run the second core is idle then; on a big one it moves into the listing."""
    import pyarrow as pa

    pa.array([b""], pa.binary())


class _Chunks:
    """The chunks still to send: those of a lost worker first, then the rest in order."""

    def __init__(self, fresh: Any, bounds: list[tuple[int, int]], units: Any) -> None:
        self._fresh = fresh
        self._bounds = bounds
        self._units = units
        self._again: collections.deque[int] = collections.deque()
        #: chunks sent again after their worker died
        self.retried: set[int] = set()

    def again(self, numbers: list[int]) -> None:
        self._again.extend(sorted(numbers))
        self.retried.update(numbers)

    def __iter__(self) -> _Chunks:
        return self

    def __next__(self) -> tuple[int, bytes]:
        if self._again:
            number = self._again.popleft()
            start, stop = self._bounds[number]
            return number, pack_units(self._units, start, stop)
        return next(self._fresh)


class ProcessesExecutor(Executor):
    """All cores of this machine: work units spread over worker processes."""

    name = "processes"
    options = (
        Option("workers", "int", None, help="worker processes (default: the number of cores)"),
        Option(
            "chunk_size",
            "int",
            0,
            help="work units per task (0: automatic: up to 1000, or 4000 small inputs of at most "
            "16 MB in all, shrinking as the work runs out)",
        ),
        Option(
            "prefetch",
            "int",
            1,
            help="chunks queued for a worker beyond the one it reads (more hides latency)",
        ),
        Option(
            "hold_bytes",
            "int",
            DEFAULT_HOLD_BYTES,
            help="articles a worker holds per chunk while the driver says which ids are new "
            "(0: write at once; the driver then rewrites files that hold a duplicate)",
        ),
        Option(
            "split_bytes",
            "int",
            DEFAULT_SPLIT_BYTES,
            min=0,
            help="inputs larger than this are split into parts of about this size, read by "
            "different workers (sources that can split, such as jsonl; 0: never split)",
            fingerprint=False,
        ),
        Option(
            "on_worker_loss",
            "str",
            "retry",
            help="a worker that dies (killed, out of memory): retry runs its chunks again on "
            "a new worker (once each); fail stops the run, nothing committed",
            choices=("fail", "retry"),
            fingerprint=False,
        ),
        Option(
            "start_method",
            "str",
            "forkserver",
            help="how workers start: forkserver (forks of one server that imported the "
            "framework once) or spawn (each imports it; fork is unsafe with threads)",
            choices=("spawn", "forkserver"),
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.opts.workers is not None and self.opts.workers < 1:
            raise self.error("option 'workers' must be at least 1")
        if self.opts.chunk_size < 0:
            raise self.error("option 'chunk_size' must be 0 (automatic) or more")
        if self.opts.prefetch < 1:
            raise self.error("option 'prefetch' must be at least 1")
        if self.opts.hold_bytes < 0:
            raise self.error("option 'hold_bytes' must be 0 or more")
        #: the workers of the last job, kept for the next one until close()
        self._pool: list[_Worker] = []
        self._started = 0
        self._warming: threading.Thread | None = None

    def split_bytes(self) -> int:
        """Parts of ``split_bytes`` when more than one worker runs (else 0: no split)."""
        workers = self.opts.workers or os.cpu_count() or 1
        return self.opts.split_bytes if workers > 1 else 0

    def prepare(self) -> None:
        """Start the fork server now, before the driver lists the units: it imports the
        framework in its own process while the driver lists (a serial step), so the
        workers fork from a ready server when the run starts. Meanwhile the driver warms
        its own pyarrow (:func:`_warm_pyarrow`) in a thread that :meth:`execute` joins,
        however the workers start."""
        start_fork_server(self.opts.start_method)
        self._warming = threading.Thread(target=_warm_pyarrow, name="etl-warm-pyarrow")
        self._warming.start()

    def _warmed(self) -> None:
        warming, self._warming = self._warming, None
        if warming is not None:
            warming.join()

    def execute(self, job: Job) -> StreamStats:
        self._warmed()
        units = job.units
        workers = self.opts.workers or os.cpu_count() or 1
        sizes = unit_sizes(units)
        bounds = chunk_bounds(len(units), workers, self.opts.chunk_size, sizes=sizes)
        bounds = parts_alone(bounds, units)
        total_chunks = len(bounds)
        if not total_chunks:
            return job.stats()
        workers = min(workers, total_chunks)
        spec_bytes = job.worker_spec()
        ctx = _context(self.opts.start_method)
        progress = job.progress()
        log.get_logger(run_id=job.run.run_id, stage="stream").info(
            "workers starting", executor=self.name, workers=workers, chunks=total_chunks
        )
        todo = _Chunks(chunks(units, bounds), bounds, units)
        finished = False
        try:
            pool = self._take_pool(ctx, spec_bytes, workers)
            for depth in range(1, self.opts.prefetch + 2):  # round robin, so all start
                for worker in pool:
                    self._feed(worker, todo, depth)
            received = 0
            while received < total_chunks or not all(w.closed for w in pool):
                waitables: dict[Any, _Worker] = {}
                for worker in pool:
                    if not worker.closed:
                        waitables[worker.conn] = worker
                        waitables[worker.process.sentinel] = worker
                for ready in wait(list(waitables)):
                    worker = waitables[ready]
                    if worker.closed or worker not in pool:
                        continue
                    if ready is worker.conn or worker.conn.poll():
                        try:
                            message = worker.conn.recv()
                        except (EOFError, OSError):
                            self._lost(worker, job, todo, ctx, spec_bytes)
                            continue
                        if message == "closed":
                            worker.closed = True
                            continue
                        if isinstance(message, ChunkIds):
                            worker.asked.add(message.chunk)
                            self._feed(worker, todo)  # read while it waits for the answer
                            answers = job.ask(message.chunk, message.ids, message.noted)
                            self._answer(pool, answers)
                            continue
                        if message.error is None:
                            # the next chunk first, so the worker never waits on the driver
                            worker.pending.remove(message.chunk)
                            worker.asked.discard(message.chunk)
                            self._feed(worker, todo)
                        # raises the worker's error, if it sent one
                        self._answer(pool, job.take(message))
                        received += 1
                        start, stop = bounds[message.chunk]
                        progress.finished_range(start, stop, job.written())
                    elif not worker.process.is_alive():
                        self._lost(worker, job, todo, ctx, spec_bytes)
            finished = True
        finally:
            progress.close(job.written(), ok=finished)
            if not finished:  # else kept for the run's next checkpoint (close() stops them)
                self.close()
        return job.stats()

    def _take_pool(self, ctx: Any, spec_bytes: bytes, workers: int) -> list[_Worker]:
        """The workers that ran the last job (of this run: its last checkpoint), given this
        one, and new ones up to ``workers``: a checkpointed run starts its workers once."""
        # built in self._pool, so that close() stops every worker started, come what may
        last, self._pool = self._pool, []
        for worker in last:
            if worker.closed and worker.process.is_alive():
                worker.next_job(spec_bytes)
                self._pool.append(worker)
            else:
                worker.stop()
        while len(self._pool) < workers:
            self._started += 1
            name = f"{self._started}"
            self._pool.append(_Worker(ctx, spec_bytes, name, self.opts.hold_bytes))
        return self._pool

    def close(self) -> None:
        """Stop the workers kept after the run's last job."""
        self._warmed()
        pool, self._pool = self._pool, []
        for worker in pool:
            worker.stop()

    def _feed(self, worker: _Worker, todo: Any, depth: int | None = None) -> None:
        """Keep ``prefetch`` chunks queued for the worker beside the one it reads (a chunk
        it asked about is read); stop it when none are left."""
        # beyond the chunk it reads: a worker finishes a chunk once its next one is there
        depth = depth or self.opts.prefetch + 1
        while not worker.stopping and len(worker.pending) - len(worker.asked) < depth:
            item = next(todo, None)
            if item is None:
                if not worker.pending:
                    worker.conn.send(JobDone())
                    worker.stopping = True
                return
            worker.conn.send(item)
            worker.pending.append(item[0])

    @staticmethod
    def _answer(pool: list[_Worker], answers: list[Answer]) -> None:
        """Send each answer to the worker that holds the chunk."""
        for chunk, keep in answers:
            for worker in pool:
                if chunk in worker.pending:
                    worker.conn.send(IdsAnswer(chunk, keep))
                    break

    def _lost(self, worker: _Worker, job: Job, todo: _Chunks, ctx: Any, spec: bytes) -> None:
        """A worker died: its chunks run again on a new worker (``on_worker_loss =
        "retry"``, once per chunk), or the run fails (``"fail"``, or a chunk lost twice)."""
        worker.process.join(timeout=5)
        again = self.opts.on_worker_loss == "retry"
        twice = [c for c in worker.pending if c in todo.retried]
        if not again or twice:
            raise RunError(
                f"{worker.describe_death()} while running this run's inputs"
                + (f" (chunk {twice[0]}: each worker that ran it died)" if twice else "")
                + f"; nothing was committed to {job.target}",
                hint="run the pipeline again: it starts over and commits the whole run"
                + (
                    " (a chunk that kills every worker it runs on may hold an input that "
                    "needs more memory than a worker has)"
                    if twice
                    else ""
                ),
            )
        log.get_logger(run_id=job.run.run_id, stage="stream").warning(
            "worker lost; its chunks run again",
            worker=worker.describe_death(),
            chunks=list(worker.pending),
        )
        job.summary_counter(f"{self.name}:workers lost", 1)
        todo.again(worker.pending)
        worker.pending = []
        worker.stop()
        self._pool.remove(worker)
        self._started += 1
        fresh = _Worker(ctx, spec, f"{self._started}", self.opts.hold_bytes)
        self._pool.append(fresh)
        self._feed(fresh, todo)
