"""Fault injection for the crash tests (docs/reliability.md).

``ETL_CRASH_AT=<point>`` makes the process ``os._exit(CRASH_EXIT)`` at that named point,
``ETL_FAIL_AT=<point>[:ERRNO[:N]]`` raises ``OSError(ERRNO)`` (default ENOSPC) there (the
first N times only, when N is given),
``ETL_SLOW_AT=<point>:<seconds>`` sleeps there. The points are :data:`FAULT_POINTS` and
:data:`RACE_POINTS`. ``<point>@<n>`` strikes the n-th time a run passes the point only
(``mid-apply@2``: in the commit of a run's second checkpoint).
"""

from __future__ import annotations

import errno
import os
import time
from collections import Counter

CRASH_ENV = "ETL_CRASH_AT"
FAIL_ENV = "ETL_FAIL_AT"
SLOW_ENV = "ETL_SLOW_AT"  # <point>:<seconds>: widen a race window in tests
CRASH_EXIT = 77
#: where ETL_CRASH_AT / ETL_FAIL_AT can strike, in the order a run passes them
FAULT_POINTS = (
    "write",  # a staged data file has rows (the first batch of each file)
    "before-commit-point",  # every staged file closed and fsynced; no COMMIT.json yet
    "commit-point-tmp",  # COMMIT.json.tmp written, not yet renamed
    "after-commit-point",  # COMMIT.json in place; the sink has not committed yet
    "mid-apply",  # the first data file renamed into place, the others not
    "before-manifest",  # every data file in place; no manifest yet
    "after-manifest",  # manifest written; staging not yet removed
    "before-unlock",  # committed and cleaned up; lock still held
)
#: points outside the commit (ETL_SLOW_AT only)
RACE_POINTS = ("break-lock",)  # a run found a dead holder's lock and is about to break it


#: how often this process passed each point in this run (for ``<point>@<n>``)
_passed: Counter[str] = Counter()


def _strikes(spec: str, name: str) -> bool:
    """``spec`` (``point`` or ``point@n``) names this pass of the point ``name``."""
    point, _, nth = spec.partition("@")
    return point == name and (not nth or _passed[name] == int(nth))


def fault_point(name: str) -> None:
    """Test hook: crash or fail here if ``ETL_CRASH_AT`` / ``ETL_FAIL_AT`` names this point."""
    _passed[name] += 1
    crash = os.environ.get(CRASH_ENV)
    if crash and _strikes(crash, name):
        os._exit(CRASH_EXIT)
    slow = os.environ.get(SLOW_ENV)
    if slow and _strikes(slow.partition(":")[0], name):
        time.sleep(float(slow.partition(":")[2] or 1))
    fail = os.environ.get(FAIL_ENV)
    if fail:
        point, _, rest = fail.partition(":")
        code, _, times = rest.partition(":")
        if _strikes(point, name) and _FAILED.get(name, 0) < int(times or 1 << 30):
            _FAILED[name] = _FAILED.get(name, 0) + 1
            number = getattr(errno, code or "ENOSPC", errno.ENOSPC)
            raise OSError(number, os.strerror(number))


#: how many times ETL_FAIL_AT struck each point in this process (``<point>:<ERRNO>:<n>``
#: strikes the first n times only: a fault that passes, like a disk freed)
_FAILED: dict[str, int] = {}


def reset_fault_counts() -> None:
    """Start counting ``ETL_FAIL_AT`` strikes and passes again (each run counts its own)."""
    _FAILED.clear()
    _passed.clear()
