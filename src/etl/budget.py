"""A time budget for a block of Python code that cannot be asked to stop.

Extraction libraries (trafilatura on a 20 MB page: minutes) take no deadline of their own.
``with Budget(seconds):`` interrupts them: past the budget, :class:`OverBudget` is raised in
the thread that runs the block, wherever its Python code is.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any


class OverBudget(BaseException):
    """Raised in the thread whose time :class:`Budget` ran out (a BaseException, so that the
    ``except Exception`` of the code it interrupts does not swallow it)."""


class Budget:
    """``with Budget(seconds):`` raises :class:`OverBudget` in this thread once ``seconds``
    have passed, wherever its Python code is (extraction libraries cannot be asked to stop).

    A timer thread sets an asynchronous exception on the thread (CPython's
    ``PyThreadState_SetAsyncExc``): it works in any thread, the main one or an executor's
    worker, where a SIGALRM would not. It lands at the next Python instruction, so a long
    call into C (one lxml parse) ends first. Elsewhere than CPython: no budget.
    """

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._state = "idle"
        self._timer: threading.Timer | None = None

    def __enter__(self) -> Budget:
        if self.seconds is not None and _set_async_exc is not None:
            self._thread = threading.get_ident()
            self._state = "running"
            self._timer = threading.Timer(self.seconds, self._expire)
            self._timer.daemon = True
            self._timer.start()
        return self

    def _expire(self) -> None:
        with self._lock:
            if self._state == "running":
                self._state = "expired"
                _set_async_exc(ctypes.c_ulong(self._thread), ctypes.py_object(OverBudget))

    def __exit__(self, *exc: Any) -> None:
        if self._timer is None:
            return
        self._timer.cancel()
        with self._lock:
            expired, self._state = self._state == "expired", "done"
            if expired:  # not delivered yet (the code ended first): take it back
                _set_async_exc(ctypes.c_ulong(self._thread), None)


_set_async_exc = getattr(getattr(ctypes, "pythonapi", None), "PyThreadState_SetAsyncExc", None)
