"""A ``processes`` worker's pipe (etl.executors.processes_worker._Mail): its questions go out
at once, and each chunk takes its own answer, whatever order the answers come in."""

from __future__ import annotations

import multiprocessing
import threading

import pytest

from etl.errors import RunError
from etl.executors.api import ChunkIds
from etl.executors.processes_worker import IdsAnswer, _Mail


@pytest.fixture
def pipe():
    driver, worker = multiprocessing.Pipe()
    mail = _Mail(worker)
    threading.Thread(target=mail.take, daemon=True).start()
    yield driver, mail
    driver.close()


def test_a_chunk_read_later_but_numbered_earlier_is_answered_first(pipe):
    """A worker that holds chunk 5 (asked, not yet finished) is given chunk 3 of a lost
    worker, run again: it reads 3 and asks, then finishes 5. The driver answers in unit
    order, 3 before 5; chunk 5 must still get its own answer (it got 3's, and the worker
    failed the run, when answers were taken in the order they came)."""
    driver, mail = pipe
    wait_5 = mail.asker(5, "w1")(["id-a"])
    wait_3 = mail.asker(3, "w1")(["id-b", "id-c"])
    asked = [driver.recv(), driver.recv()]
    assert [(q.chunk, q.ids) for q in asked] == [(5, ["id-a"]), (3, ["id-b", "id-c"])]
    assert all(isinstance(q, ChunkIds) and q.worker == "w1" for q in asked)
    driver.send(IdsAnswer(3, [True, False]))
    driver.send(IdsAnswer(5, None))
    assert wait_5() is None
    assert wait_3() == [True, False]


def test_a_worker_waiting_for_an_answer_learns_that_the_driver_is_gone(pipe):
    driver, mail = pipe
    wait = mail.asker(0, "w1")(["id-a"])
    driver.recv()
    driver.close()
    with pytest.raises(RunError, match="driver closed the connection"):
        wait()
    assert mail.inbox.get(timeout=5) is None  # the main loop learns it too
