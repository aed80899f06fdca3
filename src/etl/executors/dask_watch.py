"""What the dask executor's driver knows of the cluster while a run goes: an elastic cluster.

Workers may join and leave during a run. :class:`ClusterWatch` looks at the scheduler every
:data:`WATCH_INTERVAL` seconds and

* sizes the window (the tasks the driver keeps in flight) to the workers present, so a
  worker that joins is given chunks at once and one that leaves is not waited for;
* tells a retired worker (``client.retire_workers``, a worker closed gracefully, an
  autoscaler scaling down: Dask moved its results elsewhere first and re-runs the tasks it
  was running without counting them as failed) from a lost one (killed, crashed, cut off),
  from the scheduler's own record of the removal; only a lost worker is a failure, and only
  with ``on_worker_loss = "fail"``;
* fails the run when no worker is left for ``connect_timeout`` seconds (else a run whose
  cluster went away would wait for ever);
* counts the chunks each worker ran, and the workers that joined, retired or were lost, for
  the run summary (``etl run -v``) and the manifest's counters.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from etl.errors import RunError

if TYPE_CHECKING:
    from etl.executors.api import Job

#: how often the driver looks at the cluster (seconds)
WATCH_INTERVAL = 0.5
#: tasks in flight per worker thread: one running, one ready to start when it finishes
TASKS_PER_THREAD = 2


def running_threads(workers: dict[str, Any]) -> int:
    """Threads of the workers that take tasks (not those closing gracefully or paused)."""
    return sum(
        int(info.get("nthreads", 1))
        for info in workers.values()
        if info.get("status", "running") == "running"
    )


def window(workers: dict[str, Any]) -> int:
    """The tasks to keep in flight for ``workers``: two per thread, at least two."""
    return max(2, TASKS_PER_THREAD * running_threads(workers))


def retired(client: Any, address: str) -> bool:
    """Did the scheduler remove the worker at ``address`` as expected (a retirement)?

    The scheduler logs every removal (``remove-worker``, with ``expected`` true when the
    worker was retired or closed gracefully, false when it died or was cut off). A removal
    it has no record of is taken for a loss.
    """
    try:
        events = client.get_events(address)
    except Exception:  # an old scheduler, a lost connection: assume the worse
        return False
    for _, message in reversed(list(events)):
        if isinstance(message, dict) and message.get("action") == "remove-worker":
            return bool(message.get("expected"))
    return False


class ClusterWatch:
    """The driver's view of the cluster during one job.

    Args:
        workers: the scheduler's workers when the job starts (address -> info).
        on_worker_loss: ``"retry"`` (Dask re-runs a lost worker's tasks) or ``"fail"``.
        timeout: seconds the run waits with no worker before it fails.
        target: what the run writes to, for messages.
        logger: where joins and departures are logged.
    """

    def __init__(
        self,
        workers: dict[str, Any],
        on_worker_loss: str,
        timeout: float,
        target: str,
        logger: Any,
    ) -> None:
        self.present = set(workers)
        self.window = window(workers)
        self.on_worker_loss = on_worker_loss
        self.timeout = timeout
        self.target = target
        self.logger = logger
        self.joined = self.retired = self.lost = 0
        #: chunks run, by worker name
        self.chunks: Counter[str] = Counter()
        self._next = time.monotonic() + WATCH_INTERVAL
        self._empty_since: float | None = None

    def ran(self, worker: str) -> None:
        """A chunk that ``worker`` ran was taken in."""
        self.chunks[worker] += 1

    def look(self, client: Any, final: bool = False) -> None:
        """Look at the cluster (at most every :data:`WATCH_INTERVAL` seconds): joins,
        departures, the window; raise :class:`RunError` for a loss the run cannot take.

        ``final``: once more after the job's last result, at once, so that a worker that
        left during the last interval is counted; a loss then costs the run nothing."""
        now = time.monotonic()
        if now < self._next and not final:
            return
        workers = client.scheduler_info(n_workers=-1).get("workers", {})
        current = set(workers)
        for address in sorted(current - self.present):
            self.joined += 1
            self.logger.info("dask worker joined", worker=address)
        for address in sorted(self.present - current):
            if retired(client, address):
                self.retired += 1
                self.logger.info("dask worker retired", worker=address)
                continue
            self.lost += 1
            if self.on_worker_loss == "fail" and not final:
                raise RunError(
                    f"dask worker {address} left the cluster while running this run's tasks; "
                    f"nothing was committed to {self.target}",
                    hint="run the pipeline again: it starts over and commits the whole run "
                    '(or leave on_worker_loss at "retry" to let Dask re-run lost tasks)',
                )
            self.logger.warning(
                "dask worker lost; Dask runs its tasks again elsewhere", worker=address
            )
        self.present = current
        self.window = window(workers)
        self._check_not_empty(workers, now)
        self._next = time.monotonic() + WATCH_INTERVAL

    def _check_not_empty(self, workers: dict[str, Any], now: float) -> None:
        if running_threads(workers):
            self._empty_since = None
            return
        if self._empty_since is None:
            self._empty_since = now
        elif now - self._empty_since > self.timeout:
            raise RunError(
                f"no dask worker has been there to run tasks for {self.timeout:g} s; nothing "
                f"was committed to {self.target}",
                hint="start workers (dask worker <scheduler address>) and run the pipeline "
                "again; connect_timeout sets how long a run waits for one",
            )

    def count(self, job: Job) -> None:
        """Put the counts in the run summary (shown with -v, kept in the manifest)."""
        for worker, n in sorted(self.chunks.items()):
            job.summary_counter(f"dask:chunks run on worker {worker}", n)
        job.summary_counter("dask:workers joined", self.joined)
        job.summary_counter("dask:workers retired", self.retired)
        job.summary_counter("dask:workers lost", self.lost)
