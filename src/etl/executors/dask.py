"""A Dask distributed cluster: the same plan, as futures over chunks of work units.

``address = "tcp://host:8786"`` uses a running cluster; without it a LocalCluster of worker
processes on 127.0.0.1 is started for the run and stopped after it. Before any task every
worker checks that it can build the plugins, open the run's first input and write the
sink's staged files (a preflight; a worker that joins later checks on its first task).
Each task (:mod:`etl.executors.dask_task`) runs source -> transforms for its chunk and writes
staged Parquet files to the sink's filesystem, with the plugins its worker built from the
pipeline for the job's first task there and keeps until the job ends
(:mod:`etl.executors.dask_sessions`; local plugin files travel inside the task, by value);
the driver adopts the files in unit order and commits once. A checkpointed
run executes one job per checkpoint on the same client and cluster, closed by
:meth:`DaskExecutor.close`.

The cluster may change during a run (:mod:`etl.executors.dask_watch`): the tasks in flight
follow the workers present, a retired worker is no loss, and a lost one's tasks run again
elsewhere (``on_worker_loss = "retry"``, the default) or fail the run (``"fail"``).

Dask is optional (``pip install 'etl[dask]'``); nothing of it is imported until a run starts.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from etl import log
from etl.errors import EtlError, MissingDependency, RunError
from etl.executors.api import (
    LANE_CHUNKS,
    ChunkResult,
    DriverLane,
    chunk_bounds,
    chunks,
    parts_alone,
    raise_error,
    unit_sizes,
)
from etl.executors.dask_ask import Answers
from etl.executors.dask_task import (
    close_sessions,
    digest,
    drop_sessions,
    etl_version,
    preflight,
    run_task,
)
from etl.executors.dask_watch import WATCH_INTERVAL, ClusterWatch, running_threads
from etl.executors.processes import DEFAULT_HOLD_BYTES
from etl.plugin import Executor, Option

if TYPE_CHECKING:
    from etl.executors.api import Job
    from etl.stream import StreamStats

INSTALL = "'etl[dask]'"


#: distributed's defaults that cost a CPU-bound run's local cluster a third more CPU (at
#: 100k articles with normalize: 53 s of worker CPU against 43 s): the nanny sets
#: MALLOC_TRIM_THRESHOLD_ for its workers, which also pins glibc's mmap threshold at 128 KiB,
#: so every larger allocation is a fresh mmap that page-faults (57,000 faults in 2 s of a
#: worker against 4,000); and each worker's profiler samples the task thread every 10 ms
#: for a dashboard this cluster does not start. And its workers are forks of one server that
#: imported dask, distributed, numpy and pandas once, instead of each importing them itself
#: (about 1.2 s of CPU per worker, in parallel with the driver's first chunks on 2 cores)
LOCAL_CLUSTER_CONFIG: dict[str, Any] = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.profile.enabled": False,
    "distributed.worker.multiprocessing-method": "forkserver",
}


#: what a local cluster's fork server imports before it forks the workers: what Dask's own
#: server would (``distributed.utils.get_mp_context``), and the worker side of etl
FORK_SERVER_PRELOAD = [
    "distributed",
    *("dask", "msgpack", "cloudpickle", "tornado", "toolz", "numpy", "pandas", "lz4"),
    "etl.run.warm",
    "etl.executors.dask_task",
]


def start_fork_server() -> None:
    """Start the fork server a local cluster's workers fork from, before the driver imports
    pyarrow and discovers the plugins (``etl run``: :func:`etl.executors.early.start_early`).

    Dask starts it itself when the local cluster starts its first worker, after the driver
    imported Dask (0.3 s) and started the scheduler; the server's imports (about a second)
    then stood between the listing's end and the workers' first task. Started here, it
    imports beside the driver's discovery and listing. The server is the process's one
    ``multiprocessing`` fork server, shared with the ``processes`` executor's (it keeps the
    preloads and the environment of whichever started it first).
    """
    import multiprocessing
    from multiprocessing import forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload(FORK_SERVER_PRELOAD)
    forkserver.ensure_running()


class DaskExecutor(Executor):
    """A Dask distributed cluster (an address, or a local cluster on this machine)."""

    name = "dask"
    options = (
        Option(
            "address",
            "str",
            None,
            help="scheduler of a running cluster, e.g. tcp://10.0.0.5:8786 (default: start "
            "a local cluster on 127.0.0.1)",
        ),
        Option("workers", "int", None, help="local cluster: worker processes (default: cores)"),
        Option("threads_per_worker", "int", 1, help="local cluster: threads per worker"),
        Option(
            "hold_bytes",
            "int",
            DEFAULT_HOLD_BYTES,
            help="articles a task holds (Arrow memory) while it asks the driver which ids "
            "are new, so that it writes no known duplicate (0: write at once; the driver "
            "then rewrites the files that hold one)",
        ),
        Option(
            "chunk_size",
            "int",
            0,
            help="work units per task (0: automatic: up to 1000, or 4000 small inputs of at most "
            "16 MB in all, shrinking as the work runs out)",
        ),
        Option(
            "on_worker_loss",
            "str",
            "retry",
            help="a worker that dies mid-run: let Dask run its tasks again elsewhere, or fail "
            "the run (nothing committed); a retired worker is no loss either way",
            choices=("fail", "retry"),
        ),
        Option(
            "driver_helps",
            "bool",
            True,
            help="the driver runs chunks itself while the local cluster starts, instead of "
            "waiting idle (a cluster at an address: never)",
            fingerprint=False,
        ),
        Option(
            "connect_timeout",
            "float",
            30.0,
            help="seconds to reach the scheduler, and to wait for a worker when none is left",
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if importlib.util.find_spec("distributed") is None:
            raise MissingDependency(self.name, "dask[distributed]", INSTALL)
        for option in ("workers", "threads_per_worker"):
            value = getattr(self.opts, option)
            if value is not None and value < 1:
                raise self.error(f"option '{option}' must be at least 1")
        if self.opts.chunk_size < 0:
            raise self.error("option 'chunk_size' must be 0 (automatic) or more")
        if self.opts.hold_bytes < 0:
            raise self.error("option 'hold_bytes' must be 0 or more")
        address = self.opts.address
        if address is not None and "://" not in address:
            self.opts.address = f"tcp://{address}"
        #: the client (and local cluster) of the last job, kept for the next until close()
        self._client: Any = None
        self._cluster: Any = None
        #: the connection prepare() started, beside the listing
        self._starting: Future[tuple[Any, Any]] | None = None

    # cluster

    def prepare(self) -> None:
        """Start the local cluster (or connect to the scheduler) in a thread, while the
        driver lists the units: a local cluster's worker processes start and import
        Dask and etl (2 to 4 s on 2 cores) beside the serial listing."""
        if self._client is None and self._starting is None:
            thread = ThreadPoolExecutor(1, thread_name_prefix="etl-dask-connect")
            self._starting = thread.submit(self._connect)
            thread.shutdown(wait=False)

    def _connected(self) -> tuple[Any, Any]:
        """The client and cluster: those prepare() started, else new ones."""
        starting, self._starting = self._starting, None
        return starting.result() if starting is not None else self._connect()

    def _connect(self) -> tuple[Any, Any]:
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise MissingDependency(self.name, "dask[distributed]", INSTALL) from exc
        if self.opts.address:
            try:
                client = Client(self.opts.address, timeout=self.opts.connect_timeout)
            except (OSError, TimeoutError) as exc:
                raise RunError(
                    f"executor 'dask' ({self.section}): cannot reach the scheduler at "
                    f"{self.opts.address}: {exc}",
                    hint="check the address and that `dask scheduler` is running there",
                ) from exc
            return client, None
        import logging

        failures = 0 if self.opts.on_worker_loss == "fail" else 3
        config = {**LOCAL_CLUSTER_CONFIG, "distributed.scheduler.allowed-failures": failures}
        with dask.config.set(config):
            cluster = LocalCluster(
                n_workers=self.opts.workers or os.cpu_count() or 1,
                threads_per_worker=self.opts.threads_per_worker,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.CRITICAL,  # failures are reported as RunError
                # each worker imports the worker side once as it starts (beside the
                # listing, when prepare() started it), not in its first task
                preload=["etl.run.warm", "etl.executors.dask_preload"],
            )
        return Client(cluster), cluster

    def _workers(self, client: Any) -> dict[str, Any]:
        return client.scheduler_info(n_workers=-1).get("workers", {})

    # run

    def execute(self, job: Job) -> StreamStats:
        units = job.units
        if not units:
            return job.stats()
        progress = job.progress()
        futures: dict[Any, int] = {}
        answers: Answers | None = None
        finished = False
        bounds: list[tuple[int, int]] | None = None
        spec_bytes: bytes | None = None
        received = 0
        try:
            starting = self._starting
            # a local cluster only: the driver of a cluster elsewhere (a laptop driving a
            # cluster beside the data) is no place to read the inputs
            if starting is not None and not self.opts.address and self.opts.driver_helps:
                bounds = self._bounds(job, self._expected_threads(), LANE_CHUNKS)
                todo = chunks(units, bounds)
                received = self._help(job, starting, todo, bounds, progress)
            if self._client is None:  # else kept from the run's last checkpoint
                self._client, self._cluster = self._connected()
            client = self._client
            workers = self._workers(client)
            if not running_threads(workers):
                client.wait_for_workers(1, timeout=self.opts.connect_timeout)
                workers = self._workers(client)
            spec_bytes = job.worker_spec()
            probe = job.probe_unit()
            self._check_workers(client, spec_bytes, probe)
            if bounds is None:
                bounds = self._bounds(job, max(1, running_threads(workers)))
                todo = chunks(units, bounds)
            total = len(bounds)
            logger = log.get_logger(run_id=job.run.run_id, stage="stream")
            logger.info(
                "tasks starting",
                executor=self.name,
                scheduler=client.scheduler.address,
                workers=len(workers),
                chunks=total,
            )
            watch = ClusterWatch(
                workers, self.opts.on_worker_loss, self.opts.connect_timeout, job.target, logger
            )
            task = (spec_bytes, probe, job.run.run_id)
            # the driver's answers to the tasks' questions come from a thread of their own;
            # the ids it reads change only when this thread takes a chunk
            lock = threading.Lock()

            def known(ids: list[str]) -> list[bool] | None:
                with lock:
                    return job.known_ids(ids)

            if self.opts.hold_bytes > 0:
                answers = Answers(client, job.run.run_id, known)
            while received < total:
                # the window follows the workers present (the watch looks every 0.5 s)
                futures.update(self._submit(client, task, todo, watch.window - len(futures)))
                for future in self._finished(futures):
                    number = futures.pop(future)
                    # a free place is filled before the driver adopts (which takes a while)
                    futures.update(self._submit(client, task, todo, watch.window - len(futures)))
                    result = self._result(future)
                    # let go of the task before adopting its files: Dask recomputes a
                    # finished task a client still holds when the worker that holds its
                    # result leaves, and a chunk run again after adoption would stage its
                    # articles a second time
                    future.release()
                    with lock:
                        job.take(result)
                    watch.ran(result.worker)
                    received += 1
                    progress.finished_range(*bounds[number], job.written())
                watch.look(client)
            watch.look(client, final=True)
            self._close_sessions(client, digest(spec_bytes))
            finished = True
            watch.count(job)
            if answers is not None:
                job.summary_counter(
                    f"{self.name}:chunks that asked which ids are new", answers.answered
                )
        except EtlError:
            raise
        except Exception as exc:
            raise RunError(f"the dask cluster failed the run: {type(exc).__name__}: {exc}") from exc
        finally:
            if answers is not None:
                answers.close()
            progress.close(job.written(), ok=finished)
            if futures:
                # the run already failed; a failing cancel must not hide why
                with contextlib.suppress(Exception):
                    client.cancel(list(futures), force=True)
            if not finished and spec_bytes is not None and self._client is not None:
                with contextlib.suppress(Exception):
                    self._client.run(drop_sessions, digest(spec_bytes), on_error="return")
            if not finished:  # else kept for the run's next checkpoint (close() ends it)
                self.close()
        return job.stats()

    def _bounds(self, job: Job, threads: int, lead: int = 0) -> list[tuple[int, int]]:
        sizes = unit_sizes(job.units)
        bounds = chunk_bounds(len(job.units), threads, self.opts.chunk_size, lead, sizes)
        return parts_alone(bounds, job.units)

    def _expected_threads(self) -> int:
        """The threads the local cluster will have."""
        return (self.opts.workers or os.cpu_count() or 1) * self.opts.threads_per_worker

    def _help(
        self,
        job: Job,
        starting: Future[tuple[Any, Any]],
        todo: Any,
        bounds: list[tuple[int, int]],
        progress: Any,
    ) -> int:
        """Run the first chunks here until ``starting`` (the cluster) is done; how many ran."""
        lane = DriverLane(job, self.opts.hold_bytes)
        while not starting.done():
            item = next(todo, None)
            if item is None:
                break
            number, packed = item
            lane.run(number, packed)
            progress.finished_range(*bounds[number], job.written())
        lane.close()
        if lane.ran:
            job.summary_counter(
                f"{self.name}:chunks the driver ran while the cluster started", lane.ran
            )
        return lane.ran

    def close(self) -> None:
        """Close the client, and the local cluster if this executor started one."""
        if self._starting is not None:  # prepared for a run that never executed
            with contextlib.suppress(Exception):
                self._client, self._cluster = self._connected()
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()

    def _check_workers(self, client: Any, spec_bytes: bytes, probe: bytes | None) -> None:
        """Fail before any task if a worker lacks etl or a plugin of the pipeline, cannot
        open the first input (``probe``) or cannot write the sink's staged files."""
        from etl import __version__

        versions = client.run(etl_version, on_error="return")
        for address, version in sorted(versions.items()):
            if isinstance(version, BaseException):
                raise RunError(
                    f"dask worker {address} cannot import etl: {type(version).__name__}: {version}",
                    hint=f"install the same etl on every worker: pip install etl=={__version__}",
                )
        problems = client.run(preflight, spec_bytes, probe, on_error="return")
        for _address, problem in sorted(problems.items()):
            if isinstance(problem, BaseException):
                raise RunError(f"dask worker {_address}: {type(problem).__name__}: {problem}")
            if problem is not None:
                raise_error(problem)

    def _close_sessions(self, client: Any, job: str) -> None:
        """After the job's last chunk: every worker closes the plugins it kept for the job
        (the transforms' ``close``); a failure fails the run, as it would on the driver."""
        closed = client.run(close_sessions, job, on_error="return")
        for _address, problem in sorted(closed.items()):
            # an exception: the call never ran there (a worker leaving as the run ends takes
            # its copy with it, as one that retired mid-run does); a tuple: a close raised
            if problem is not None and not isinstance(problem, BaseException):
                raise_error(problem)

    def _submit(
        self, client: Any, task: tuple[bytes, bytes | None, str], todo: Any, n: int
    ) -> dict[Any, int]:
        """Submit up to ``n`` more chunks of ``todo``; ``task`` is (spec, probe, run id)."""
        hold_bytes = self.opts.hold_bytes
        spec_bytes, probe, run_id = task
        batch = []
        for _ in range(n):
            item = next(todo, None)
            if item is None:
                break
            batch.append(item)
        if not batch:
            return {}
        numbers = [number for number, _ in batch]
        futures = client.map(
            run_task,
            [spec_bytes] * len(batch),
            numbers,
            [units for _, units in batch],
            [probe] * len(batch),
            [run_id] * len(batch),
            [hold_bytes] * len(batch),
            key=[f"etl-{run_id}-chunk-{number}" for number in numbers],
            pure=False,
        )
        return dict(zip(futures, numbers, strict=True))

    def _finished(self, futures: dict[Any, int]) -> list[Any]:
        from distributed import wait

        try:
            done, _ = wait(list(futures), timeout=WATCH_INTERVAL, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return []
        return sorted(done, key=lambda f: futures[f])

    def _result(self, future: Any) -> ChunkResult:
        if future.status == "error":
            exc = future.exception()
            name = type(exc).__name__
            if name == "KilledWorker":
                worker = getattr(getattr(exc, "last_worker", None), "address", "?")
                again = self.opts.on_worker_loss == "retry"
                raise RunError(
                    f"dask worker {worker} died while running {future.key}"
                    + (" (each worker that ran it died)" if again else "")
                    + "; nothing was committed",
                    hint="run the pipeline again: it starts over and commits the whole run"
                    + (
                        " (a chunk that kills every worker it runs on may hold an input that "
                        "needs more memory than a worker has)"
                        if again
                        else ""
                    ),
                )
            raise RunError(f"dask task {future.key} failed: {name}: {exc}")
        if future.status == "cancelled":
            raise RunError(f"dask task {future.key} was cancelled; nothing was committed")
        return future.result()
