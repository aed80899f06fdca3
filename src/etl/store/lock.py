"""The store's writer lock: one run writes a dataset at a time.

A lock file created with O_EXCL names its holder (host, pid, the pid's start time, run id).
A holder that is a dead process of this host is broken safely (see :meth:`WriterLock._break`).
"""

from __future__ import annotations

import json
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from etl.errors import RunError
from etl.store.faults import fault_point
from etl.store.fsio import fsync_dir

#: seconds after which a ``lock.break`` guard is taken for one a dead breaker left
_GUARD_STALE = 10


def _process_start(pid: int) -> int | None:
    """The start time (clock ticks since boot) of a process, to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return int(stat.rsplit(b")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


class WriterLock:
    """The lock file at ``path``; ``root`` is named in messages."""

    def __init__(self, path: Path, root: Path) -> None:
        self.path = path
        self.root = root

    def acquire(self, run_id: str, *, wait: float = 0.0) -> None:
        """Take the lock, or fail naming its holder; with ``wait`` > 0 retry that long."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {
            "run_id": run_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "pid_start": _process_start(os.getpid()),
            "started_at": datetime.now(UTC).isoformat(),
        }
        deadline = time.monotonic() + wait
        blocked_since: float | None = None  # when a stale lock's guard first kept us out
        while True:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self.read()
                if holder is not None and self._holder_dead(holder):
                    if self._break(holder):
                        continue
                    # another breaker holds the guard (it takes milliseconds), or one died
                    # and left a guard we cannot delete: wait for it, but not forever
                    now = time.monotonic()
                    blocked_since = now if blocked_since is None else blocked_since
                    if now < max(deadline, blocked_since + _GUARD_STALE + 1):
                        continue
                    guard = self.path.with_name("lock.break")
                    raise RunError(
                        f"dataset {self.root}: the lock names a process that is gone, but it "
                        f"cannot be broken: {guard} is in the way",
                        hint=f"delete {guard} (a run that died while breaking the lock left "
                        "it), then run again",
                    ) from None
                if time.monotonic() < deadline:
                    time.sleep(0.2)
                    continue
                who = (
                    f"run {holder.get('run_id')} (host {holder.get('host')}, pid {holder.get('pid')}, "
                    f"started {holder.get('started_at')})"
                    if holder
                    else "another run"
                )
                raise RunError(
                    f"dataset {self.root} is being written by {who}",
                    hint="wait for it to finish, or run with --wait; if that process is gone "
                    f"for good on another host, delete {self.path}",
                ) from None
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
                f.flush()
                os.fsync(f.fileno())
            return

    def read(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            # a lock file being written right now, or one cut short by a crash
            try:
                age = time.time() - self.path.stat().st_mtime
            except OSError:
                return None
            return {"pid": -1} if age > 10 else None

    def release(self) -> None:
        holder = self.read()
        if holder and holder.get("pid") == os.getpid():
            fault_point("before-unlock")
            self.path.unlink(missing_ok=True)

    @staticmethod
    def _holder_dead(holder: dict[str, Any]) -> bool:
        """True if the holder is a process of this host that is gone (or a reused pid)."""
        if holder.get("pid") == -1:
            return True
        if holder.get("host") != socket.gethostname():
            return False
        pid = holder.get("pid")
        if not isinstance(pid, int) or pid <= 0:
            return True
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        started = holder.get("pid_start")
        now = _process_start(pid)
        # the pid lives, but as another process that got the dead holder's number
        return started is not None and now is not None and now != started

    def _break(self, holder: dict[str, Any]) -> bool:
        """Remove a dead holder's lock, unless someone replaced it meanwhile; False when
        the guard kept us from trying (another breaker has it, or a stale one is stuck).

        Breakers take ``lock.break`` (O_EXCL) first, then check that the lock still names
        the dead holder: two processes that both saw the same stale lock cannot both break
        it, and neither can remove a lock that a third process just took.
        """
        fault_point("break-lock")
        guard = self.path.with_name("lock.break")
        try:
            fd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:  # a breaker that died while breaking leaves the guard behind
                if time.time() - guard.stat().st_mtime > _GUARD_STALE:
                    guard.unlink(missing_ok=True)
            except OSError:
                pass
            time.sleep(0.05)
            return False
        try:
            os.close(fd)
            current = self.read()
            if current is not None and all(
                current.get(k) == holder.get(k) for k in ("run_id", "host", "pid", "started_at")
            ):
                self.path.unlink(missing_ok=True)
                fsync_dir(self.path.parent)
        finally:
            guard.unlink(missing_ok=True)
        return True
