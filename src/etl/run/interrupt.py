"""Ctrl-C and SIGTERM stop a run the same way, and say what it committed.

``etl run`` wraps the run in :func:`stop_on_signals`: SIGINT and SIGTERM then raise
:class:`~etl.errors.Interrupted` in the main thread, which the runner handles as Ctrl-C
(the slice under way is dropped, or finished if it passed its commit point; the lock is
released, the staging removed). SIGTERM matters because it is what ``kill``, systemd,
Kubernetes and CI send: without a handler Python dies of it at once, leaving the lock and
the staging for the next run. :func:`interrupted` words what stays.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from etl.errors import Interrupted

#: the signals a run stops on
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _handler(signum: int, frame: FrameType | None) -> None:
    name = signal.Signals(signum).name
    raise Interrupted(_how(name), name)


def _how(name: str) -> str:
    return "interrupted" if name == "SIGINT" else f"terminated by {name}"


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """While the body runs, SIGINT and SIGTERM raise :class:`~etl.errors.Interrupted`.

    Only in the main thread (Python runs signal handlers there and nowhere else); elsewhere
    the body runs with the handlers it had. The previous handlers are put back after.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, _handler) for number in SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def interrupted(
    exc: KeyboardInterrupt, committed: list[dict[str, Any]], target: str
) -> Interrupted:
    """What an interrupt left, from the summaries of the commits the run reached.

    ``committed``: one per commit point written, in order; the last has ``pending`` when
    its commit could not be finished (the next run or ``etl recover`` does it). Nothing;
    the run (committed after its commit point); a commit the next run finishes; or, for a
    checkpointed run, the checkpoints committed and the rest left for the next run.
    """
    name = exc.signal_name if isinstance(exc, Interrupted) else "SIGINT"
    how = _how(name)
    if not committed:
        return Interrupted(f"{how}; nothing was committed", name)
    last = committed[-1]
    checkpoint = last.get("checkpoint")
    rest = "" if checkpoint is None or checkpoint["last"] else ", then reads the rest"
    if last.get("pending"):
        which = f"checkpoint {checkpoint['number']} " if checkpoint else "the run "
        return Interrupted(
            f"{how} during the commit: {which}is committed, and the next run (or "
            f"`etl recover {target}`) finishes it{rest}",
            name,
        )
    if not rest:
        return Interrupted(f"{how} after the commit point: the run was committed", name)
    n = len(committed)
    return Interrupted(
        f"{how}; {n} checkpoint{'s' if n != 1 else ''} committed (the last: run "
        f"{last['run_id']}), the rest will be read next run",
        name,
    )
