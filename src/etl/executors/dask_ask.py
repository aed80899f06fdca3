"""Dask workers ask the driver which ids are new before they write, as processes workers do.

A Dask task cannot wait for its turn the way a processes worker does (the driver answers
chunk k only once every earlier chunk is in): a task that waits holds a worker thread, and
the chunk it waits for may be queued behind it on that thread (after a worker was lost, or
work stealing moved it). So the answer here is given at once and is a hint: the ids the
dataset holds and those of the chunks the driver has taken so far, which the worker drops
before writing (with the ids repeated within its chunk). The driver still checks each
chunk's files when it takes them, in unit order (``ChunkResult.decided`` stays False), and
rewrites a file only for a duplicate whose first copy was in a chunk running at the same
time. Before, it rewrote nearly every file of a news corpus (issue 17: 26 of 27).

Questions travel through Dask queues on the scheduler: one the driver reads, named after the
run, and one per task attempt for its answer. A worker that gets no answer within
``ASK_TIMEOUT`` seconds writes everything, as before. A task whose driver is gone (killed:
the scheduler let go of the task, which runs on as Dask cannot stop a running task) writes
nothing: it learns so while it waits for the answer, and ends at once, where it used to wait
``ASK_TIMEOUT`` and then write files into the dead run's staging, after the next run had
rolled that run back (and while the next run's tasks waited for its worker thread).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

#: seconds a worker waits for the driver's answer (it comes in milliseconds)
ASK_TIMEOUT = 10.0
#: seconds between two looks for the answer; between them the task checks its run is on
_POLL = 0.25


class RunAbandoned(Exception):
    """The task's run was given up (its driver is gone): it writes nothing."""


def _abandoned() -> bool:
    """Has the scheduler let go of the task this thread runs (its client, the driver, left)?"""
    try:
        from distributed import get_worker
        from distributed.worker import thread_state

        task = get_worker().state.tasks.get(thread_state.key)
    except Exception:  # not in a Dask task
        return False
    return task is None or task.state == "cancelled"


def _questions(run_id: str) -> str:
    return f"etl-{run_id}-questions"


def asker(run_id: str, attempt: str) -> Callable[[list[str]], list[bool] | None]:
    """The question a task asks (on a worker): which of these ids to write (None: all)."""

    def ask(ids: list[str]) -> list[bool] | None:
        from distributed import Queue

        queues = []
        try:
            # the answer's queue first: the scheduler drops a queue (and what it holds)
            # when no client refers to it, and the driver lets go of it once it answered
            queues.append(reply := Queue(f"etl-{run_id}-answer-{attempt}"))
            queues.append(questions := Queue(_questions(run_id)))
            questions.put((reply.name, ids), timeout=ASK_TIMEOUT)
            deadline = time.monotonic() + ASK_TIMEOUT
            while True:
                try:
                    return reply.get(timeout=_POLL)
                except Exception:  # no answer yet
                    if _abandoned():
                        break
                    if time.monotonic() >= deadline:
                        return None
        except Exception:  # no answer: write everything; the driver checks at adoption
            return None
        finally:
            for queue in queues:
                _release(queue)
        raise RunAbandoned("the driver of this run is gone: nothing written")

    return ask


def _release(queue: Any) -> None:
    """Let go of a queue on the scheduler (it goes when no client holds it)."""
    with contextlib.suppress(Exception):
        queue.close()


class Answers:
    """The driver's side: a thread that answers each question as it comes.

    Args:
        client: the run's Dask client.
        run_id: the run (names the question queue).
        known: which of some ids are new so far (:meth:`~etl.executors.api.Job.known_ids`).
    """

    def __init__(
        self, client: Any, run_id: str, known: Callable[[list[str]], list[bool] | None]
    ) -> None:
        from distributed import Queue

        self._client = client
        self._known = known
        self._questions = Queue(_questions(run_id), client=client)
        self._stop = threading.Event()
        #: questions answered (for the run summary)
        self.answered = 0
        self._thread = threading.Thread(target=self._serve, name="etl-dask-answers", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        from distributed import Queue

        while not self._stop.is_set():
            try:
                question = self._questions.get(timeout=0.2)
            except TimeoutError:
                continue
            except Exception:
                if self._client.status in ("closing", "closed"):
                    return  # the run is over
                time.sleep(0.1)  # a passing failure: the tasks wait ASK_TIMEOUT at most
                continue
            if question is None:  # close() wakes the thread
                return
            reply, ids = question
            answer = None
            try:
                answer = Queue(reply, client=self._client)
                answer.put(self._known(ids))
                self.answered += 1
            except Exception:  # the worker writes everything; the driver checks it
                continue
            finally:
                if answer is not None:
                    _release(answer)

    def close(self) -> None:
        self._stop.set()
        # wake the thread from its wait for a question (else close took up to its 0.2 s
        # timeout: 0.18 s at the end of a 100k run, with nothing else to do)
        with contextlib.suppress(Exception):
            self._questions.put(None, timeout=1)
        self._thread.join(timeout=5)
        _release(self._questions)
