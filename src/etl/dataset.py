"""The dataset on disk: layout, lock, staging, atomic commit and recovery.

Layout of a dataset folder::

    part-<run>-<n>.parquet              data (or key=value/ folders when partitioned)
    _etl/runs/<run>.json                one manifest per committed run
    _etl/rejects/<run>.rejects.pq       rejects of each run (Parquet; not matched by *.parquet)
    _etl/staging/<run>/                 files of a run in flight (never *.parquet names)
    _etl/lock                           who is writing now

Commit protocol (so that a kill at any moment loses or doubles nothing):

1. data files are written under ``_etl/staging/<run>/`` with names readers ignore;
2. ``_etl/staging/<run>/COMMIT.json`` is written (atomically, fsynced): the list of renames,
   the files to delete (overwrite mode), the rejects and the manifest. This is the commit point;
3. files are renamed into place; the manifest goes to ``_etl/runs/``; staging is removed.

Before writing, a new run (or ``etl recover``) finishes any staged run that has a COMMIT.json
(roll forward) and deletes any that has none (roll back).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from etl.errors import RunError

META_DIR = "_etl"
DATA_SUFFIX = ".parquet"
STAGED_SUFFIX = ".staged"
REJECTS_SUFFIX = ".rejects.pq"
COMMIT_FILE = "COMMIT.json"


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that ``path`` holds either the old content or the whole new one."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, default=str, ensure_ascii=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


@dataclass
class Dataset:
    """A dataset folder and its ``_etl`` metadata."""

    root: Path

    @property
    def meta(self) -> Path:
        return self.root / META_DIR

    @property
    def runs_dir(self) -> Path:
        return self.meta / "runs"

    @property
    def rejects_dir(self) -> Path:
        return self.meta / "rejects"

    @property
    def staging_root(self) -> Path:
        return self.meta / "staging"

    def staging(self, run_id: str) -> Path:
        return self.staging_root / run_id

    def exists(self) -> bool:
        return (
            self.runs_dir.is_dir() and any(self.runs_dir.glob("*.json")) or any(self.data_files())
        )

    def data_files(self) -> list[Path]:
        """Committed data files, in a stable order."""
        if not self.root.is_dir():
            return []
        found = []
        for dirpath, dirs, files in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if d != META_DIR and not d.startswith("."))
            found.extend(Path(dirpath) / f for f in sorted(files) if f.endswith(DATA_SUFFIX))
        return found

    def manifests(self) -> list[dict[str, Any]]:
        """Manifests of committed runs, oldest first."""
        if not self.runs_dir.is_dir():
            return []
        out = []
        for path in sorted(self.runs_dir.glob("*.json")):
            try:
                out.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
        return out

    def rejects_files(self) -> list[Path]:
        return (
            sorted(self.rejects_dir.glob(f"*{REJECTS_SUFFIX}")) if self.rejects_dir.is_dir() else []
        )

    # lock

    def acquire_lock(self, run_id: str, *, wait: float = 0.0) -> None:
        """Take the dataset's writer lock, or fail naming its holder.

        A lock whose holder is a dead process on this host is broken. With ``wait`` > 0,
        retry for that many seconds before failing.
        """
        self.meta.mkdir(parents=True, exist_ok=True)
        path = self.meta / "lock"
        me = {
            "run_id": run_id,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": datetime.now(UTC).isoformat(),
        }
        deadline = time.monotonic() + wait
        while True:
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._read_lock(path)
                if holder is not None and self._holder_dead(holder):
                    self._break_lock(path, holder)
                    continue
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
                    f"for good on another host, delete {path}",
                ) from None
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
                f.flush()
                os.fsync(f.fileno())
            self._lock_run = run_id
            return

    @staticmethod
    def _read_lock(path: Path) -> dict[str, Any] | None:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            # a lock file being written right now, or one cut short by a crash
            try:
                age = time.time() - path.stat().st_mtime
            except OSError:
                return None
            return {"pid": -1} if age > 10 else None

    @staticmethod
    def _holder_dead(holder: dict[str, Any]) -> bool:
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
        return False

    def _break_lock(self, path: Path, holder: dict[str, Any]) -> None:
        # rename first so that two processes breaking the same stale lock cannot both win
        stale = path.with_name(f"lock.stale.{os.getpid()}")
        try:
            os.replace(path, stale)
        except FileNotFoundError:
            return
        stale.unlink(missing_ok=True)

    def release_lock(self) -> None:
        path = self.meta / "lock"
        holder = self._read_lock(path)
        if holder and holder.get("pid") == os.getpid():
            path.unlink(missing_ok=True)

    # commit and recovery

    def commit(self, run_id: str, plan: dict[str, Any]) -> None:
        """Write the commit point for a staged run, then apply it.

        ``plan`` holds ``renames`` ([staged, final] relative to the dataset root),
        ``deletes`` (relative paths of data files to remove), ``rejects`` (staged rejects
        file or None) and ``manifest``.
        """
        staging = self.staging(run_id)
        write_json_atomic(staging / COMMIT_FILE, plan)
        self.apply(run_id)

    def apply(self, run_id: str) -> None:
        """Apply (or finish applying) a staged run's COMMIT.json; idempotent."""
        staging = self.staging(run_id)
        plan = json.loads((staging / COMMIT_FILE).read_text(encoding="utf-8"))
        for rel in plan.get("deletes", []):
            (self.root / rel).unlink(missing_ok=True)
        for staged_rel, final_rel in plan.get("renames", []):
            staged, final = self.root / staged_rel, self.root / final_rel
            if staged.exists():
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged, final)
        if plan.get("rejects"):
            staged = self.root / plan["rejects"]
            if staged.exists():
                self.rejects_dir.mkdir(parents=True, exist_ok=True)
                os.replace(staged, self.rejects_dir / f"{run_id}{REJECTS_SUFFIX}")
        for directory in {(self.root / f).parent for _, f in plan.get("renames", [])}:
            fsync_dir(directory)
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.runs_dir / f"{run_id}.json", plan["manifest"])
        shutil.rmtree(staging, ignore_errors=True)
        self._prune_empty_dirs(plan.get("deletes", []))

    def _prune_empty_dirs(self, deleted: list[str]) -> None:
        for rel in deleted:
            parent = (self.root / rel).parent
            while parent != self.root and parent.is_dir():
                try:
                    parent.rmdir()
                except OSError:
                    break
                parent = parent.parent

    def recover(self) -> list[tuple[str, str]]:
        """Finish or roll back every staged run; return (run_id, "committed"|"rolled back")."""
        done: list[tuple[str, str]] = []
        if not self.staging_root.is_dir():
            return done
        for staging in sorted(self.staging_root.iterdir()):
            if not staging.is_dir():
                continue
            if (staging / COMMIT_FILE).is_file():
                try:
                    self.apply(staging.name)
                except ValueError:
                    # COMMIT.json is written atomically; an unreadable one was never complete
                    shutil.rmtree(staging, ignore_errors=True)
                    done.append((staging.name, "rolled back"))
                    continue
                done.append((staging.name, "committed"))
            else:
                shutil.rmtree(staging, ignore_errors=True)
                done.append((staging.name, "rolled back"))
        return done
