"""The store's writer lock: one run writes a dataset at a time.

A lock file created with O_EXCL names its holder (host, pid, the pid's start time, run id)
and its lease (seconds). While it holds the lock, the holder renews the lease: a heartbeat
thread touches the file every quarter of the lease (its mtime is the last renewal, set by
the file's server). A holder that is a dead process of this host is broken at once; a
holder on another host is broken once its lease has run out (no renewal for a whole lease:
the process or its host is gone), safely (see :meth:`WriterLock._break`). Before its commit
point a run checks that the lock still names it (:meth:`WriterLock.check`), so a run that
stalled past its lease and lost the lock commits nothing.

On an object store (:mod:`etl.store.fs`) the lock is an object: created by a conditional PUT
(``If-None-Match: *``), renewed by a PUT with its ``renewals`` count raised (on S3
conditional on the ETag read with it, ``If-Match``, so a renewal never overwrites a lock
another run took meanwhile), its age the object's LastModified. A breaker's DELETE is
conditional on the ETag too: a lock renewed after the breaker looked at it is kept.
"""

from __future__ import annotations

import json
import os
import socket
import time
from datetime import UTC, datetime
from typing import Any, TypeGuard

from etl.errors import RunError
from etl.store.faults import fault_point
from etl.store.fs import StorePath, fs_of

#: seconds after which a ``lock.break`` guard is taken for one a dead breaker left
_GUARD_STALE = 10
#: the lease a lock is taken with: seconds without a renewal after which another host may
#: break it (``ETL_LOCK_LEASE`` sets another; clocks of hosts sharing a dataset must agree
#: to within a small part of it)
LEASE_ENV = "ETL_LOCK_LEASE"
DEFAULT_LEASE = 60.0


def lease_seconds() -> float:
    """The lease new locks are taken with (``ETL_LOCK_LEASE``, else 60 s)."""
    try:
        value = float(os.environ.get(LEASE_ENV, "") or DEFAULT_LEASE)
    except ValueError:
        return DEFAULT_LEASE
    return value if value > 0 else DEFAULT_LEASE


def _process_start(pid: int) -> int | None:
    """The start time (clock ticks since boot) of a process, to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return int(stat.rsplit(b")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


class WriterLock:
    """The lock file at ``path``; ``root`` is named in messages.

    On an object store the lock is an object created by a conditional PUT (``If-None-Match:
    *``), renewed by a PUT of a raised renewal count (conditional on S3, as a breaker's
    removal is); its age is the object's LastModified, the server's clock.

    Args:
        path: the lock file (``_etl/lock``).
        root: the dataset's root, for messages.
    """

    def __init__(self, path: StorePath, root: StorePath) -> None:
        self.path = path
        self.root = root
        self._fs = fs_of(path)
        #: what this process wrote into the lock it holds (None: it holds none)
        self.held: dict[str, Any] | None = None
        self._beat: _Heartbeat | None = None

    def acquire(self, run_id: str, *, wait: float = 0.0) -> None:
        """Take the lock, or fail naming its holder; with ``wait`` > 0 retry that long."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {
            "run_id": run_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "pid_start": _process_start(os.getpid()),
            "started_at": datetime.now(UTC).isoformat(),
            "lease": lease_seconds(),
        }
        deadline = time.monotonic() + wait
        blocked_since: float | None = None  # when a stale lock's guard first kept us out
        while True:
            if not self._fs.create_exclusive(self.path, json.dumps(me).encode()):
                holder = self.read()
                if holder is not None and self._holder_dead(holder):
                    if self._break(holder):
                        continue
                    # another breaker holds the guard (it takes milliseconds), or one died
                    # and left a guard we cannot delete: wait for it, but not forever, and
                    # not past the wait at all once the guard is stale and still there
                    now = time.monotonic()
                    blocked_since = now if blocked_since is None else blocked_since
                    patience = deadline if self._guard_stuck() else blocked_since + _GUARD_STALE + 1
                    if now < max(deadline, patience):
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
                    f"dataset {self.root} is being written by {who}{self._lease_text(holder)}",
                    hint="wait for it to finish, or run with --wait; if that process is gone "
                    f"for good, `etl unlock {self.root}` removes its lock",
                ) from None
            self.held = me
            self._beat = _Heartbeat(self, float(me["lease"]))
            return

    def _lease_text(self, holder: dict[str, Any] | None) -> str:
        """``; lease renewed 3 s ago, runs out in 57 s`` (nothing for a lock without one)."""
        age = self.age()
        lease = holder.get("lease") if holder else None
        if age is None or not isinstance(lease, int | float):
            return ""
        return f"; lease renewed {age:.0f} s ago, runs out in {max(lease - age, 0):.0f} s"

    def age(self) -> float | None:
        """Seconds since the lock was last renewed (None: no lock)."""
        try:
            return max(time.time() - self.path.stat().st_mtime, 0.0)
        except OSError:
            return None

    def check(self) -> None:
        """Raise RunError unless the lock still names this process's run (a run that stalled
        past its lease may have lost it to another host's run)."""
        if self.held is None:
            return
        current = self.read()
        if not _same(current, self.held):
            raise RunError(
                f"dataset {self.root}: this run lost its writer lock (it was not renewed for "
                f"its whole lease of {self.held['lease']:g} s, and "
                + ("another run took it" if current else "it was removed")
                + "); nothing of this run was committed",
                hint="run again; if the machine was suspended or overloaded, set a longer "
                f"lease with {LEASE_ENV}",
            )

    def read(self) -> dict[str, Any] | None:
        try:
            data = self.path.read_bytes()
        except OSError:
            return None
        return self._parse(data)

    def _parse(self, data: bytes) -> dict[str, Any] | None:
        try:
            holder = json.loads(data)
        except ValueError:
            holder = None
        if isinstance(holder, dict):
            return holder
        # a lock file being written right now, or one cut short by a crash
        try:
            age = time.time() - self.path.stat().st_mtime
        except OSError:
            return None
        return {"pid": -1} if age > 10 else None

    def release(self) -> None:
        if self._beat is not None:
            self._beat.stop()
            self._beat = None
        holder = self.read()
        if holder and holder.get("pid") == os.getpid():
            fault_point("before-unlock")
            self.path.unlink(missing_ok=True)
        self.held = None

    def renew(self) -> bool:
        """Renew the lease (touch the lock) if the lock still names this run; False when it
        does not (then it is left alone: it is another run's now)."""
        held = self.held
        if held is None:
            return False

        def renewed(data: bytes) -> bytes | None:
            try:
                current = json.loads(data)
            except ValueError:
                return None
            if not isinstance(current, dict) or not _same(current, held):
                return None
            # counted, so that each renewal is another object on S3 (another ETag): a
            # breaker's conditional DELETE then fails for a lock renewed after its look
            renewals = current.get("renewals", 0)
            count = renewals + 1 if isinstance(renewals, int) else 1
            return json.dumps({**current, "renewals": count}).encode()

        try:
            return self._fs.touch_if(self.path, renewed)
        except OSError:
            return False

    def expired(self, holder: dict[str, Any]) -> bool:
        """True if ``holder`` took its lock with a lease that has run out."""
        lease = holder.get("lease")
        age = self.age()
        return isinstance(lease, int | float) and age is not None and age > lease

    def _holder_dead(self, holder: dict[str, Any]) -> bool:
        """True if the holder is a process of this host that is gone (or a reused pid), or a
        process elsewhere whose lease ran out."""
        if holder.get("pid") == -1:
            return True
        if holder.get("host") != socket.gethostname():
            return self.expired(holder)
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
        if not self._fs.create_exclusive(guard, b""):
            try:  # a breaker that died while breaking leaves the guard behind
                if time.time() - guard.stat().st_mtime > _GUARD_STALE:
                    guard.unlink(missing_ok=True)
            except OSError:
                pass
            time.sleep(0.05)
            return False

        def still_dead(data: bytes) -> bool:
            current = self._parse(data)
            # the same holder, and (for another host's) still not renewed meanwhile
            return _same(current, holder) and (
                current.get("host") == socket.gethostname() or self.expired(current)
            )

        try:
            # on S3 the DELETE is conditional on the ETag read before that look: a lock
            # renewed (or taken) after it is kept
            self._fs.remove_if(self.path, still_dead)
        finally:
            guard.unlink(missing_ok=True)
        return True

    def _guard_stuck(self) -> bool:
        """Whether a ``lock.break`` guard is older than a breaker ever holds one: its
        breaker died, and :meth:`_break` could not delete it."""
        try:
            return time.time() - self.path.with_name("lock.break").stat().st_mtime > _GUARD_STALE
        except OSError:
            return False

    def break_stale(self) -> dict[str, Any] | None:
        """Remove the lock if its holder is gone (see :meth:`_holder_dead`); return the
        holder removed, or None when there was no lock or it was not stale."""
        holder = self.read()
        if holder is None or not self._holder_dead(holder):
            return None
        return holder if self._break(holder) and self.read() is None else None

    def force(self, holder: dict[str, Any]) -> bool:
        """Remove ``holder``'s lock whatever its lease says (``etl unlock --force``), unless
        another run took it meanwhile; True if it is gone."""
        guard = self.path.with_name("lock.break")
        if not self._fs.create_exclusive(guard, b""):
            return False
        try:
            self._fs.remove_if(self.path, lambda data: _same(self._parse(data), holder))
        finally:
            guard.unlink(missing_ok=True)
        return self.read() is None


def _same(current: dict[str, Any] | None, holder: dict[str, Any]) -> TypeGuard[dict[str, Any]]:
    """Whether a lock's content names the same holder."""
    return current is not None and all(
        current.get(k) == holder.get(k) for k in ("run_id", "host", "pid", "started_at")
    )


class _Heartbeat:
    """Renews a held lock's lease every quarter of it, in a daemon thread, until stopped
    (or until the lock no longer names the run: then :meth:`WriterLock.check` fails the
    commit)."""

    def __init__(self, lock: WriterLock, lease: float) -> None:
        import threading

        self._lock = lock
        self._every = lease / 4
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="etl-lock-lease", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            if not self._lock.renew():
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
