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

Staged files are fsynced before the commit point, so a file renamed into place is complete.
``_etl/inputs.pq`` is the dataset's memory of ingested inputs (one row per input, rewritten
whole by each commit, so reading it costs one small file however many runs there were).

Fault injection for tests (see docs/reliability.md): ``ETL_CRASH_AT=<point>`` makes the
process ``os._exit(CRASH_EXIT)`` at that named point, ``ETL_FAIL_AT=<point>[:ERRNO]`` raises
``OSError(ERRNO)`` (default ENOSPC) there, ``ETL_SLOW_AT=<point>:<seconds>`` sleeps there. The
points are listed in :data:`FAULT_POINTS` and :data:`RACE_POINTS`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import xxhash

from etl.errors import RunError

META_DIR = "_etl"
DATA_SUFFIX = ".parquet"
STAGED_SUFFIX = ".staged"
REJECTS_SUFFIX = ".rejects.pq"
COMMIT_FILE = "COMMIT.json"
INPUTS_FILE = "inputs.pq"
#: a run's per-input account (etl.accounting), beside its manifest in _etl/runs
RUN_INPUTS_SUFFIX = ".inputs.pq"

CRASH_ENV = "ETL_CRASH_AT"
FAIL_ENV = "ETL_FAIL_AT"
SLOW_ENV = "ETL_SLOW_AT"  # <point>:<seconds>: widen a race window in tests
CRASH_EXIT = 77
#: where ETL_CRASH_AT / ETL_FAIL_AT can strike, in the order a run passes them
FAULT_POINTS = (
    "write",  # a staged data file has rows (the first batch of each file)
    "before-commit-point",  # every staged file closed and fsynced; no COMMIT.json yet
    "commit-point-tmp",  # COMMIT.json.tmp written, not yet renamed
    "after-commit-point",  # COMMIT.json in place; nothing renamed yet
    "mid-apply",  # the first data file renamed into place, the others not
    "before-manifest",  # every data file in place; no manifest yet
    "after-manifest",  # manifest written; staging not yet removed
    "before-unlock",  # committed and cleaned up; lock still held
)
#: points outside the commit (ETL_SLOW_AT only)
RACE_POINTS = ("break-lock",)  # a run found a dead holder's lock and is about to break it


def fault_point(name: str) -> None:
    """Test hook: crash or fail here if ``ETL_CRASH_AT`` / ``ETL_FAIL_AT`` names this point."""
    crash = os.environ.get(CRASH_ENV)
    if crash and crash == name:
        os._exit(CRASH_EXIT)
    slow = os.environ.get(SLOW_ENV)
    if slow and slow.partition(":")[0] == name:
        time.sleep(float(slow.partition(":")[2] or 1))
    fail = os.environ.get(FAIL_ENV)
    if fail:
        point, _, code = fail.partition(":")
        if point == name:
            number = getattr(errno, code or "ENOSPC", errno.ENOSPC)
            raise OSError(number, os.strerror(number))


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def key_digest(key: str) -> str:
    """How the inputs memory names an input (the key itself may hold a secret)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


#: the content hash of inputs: XXH3-128, prefixed with its name. Not cryptographic: it
#: tells a touched file from a changed one (a 2^-128 chance of mistaking them), at 14 GB/s
#: where SHA-256 does 1.8 (a sixth of a text -> parquet run of 100k files went to hashing).
#: An unprefixed value is a SHA-256 from an older memory, and is compared as one.
CONTENT_HASH = "xxh3_128"


def content_hash(data: bytes) -> str:
    """The inputs memory's hash of an input's bytes."""
    return f"{CONTENT_HASH}:{xxhash.xxh3_128_hexdigest(data)}"


class ContentHasher:
    """:func:`content_hash` of bytes that come in pieces."""

    def __init__(self) -> None:
        self._digest = xxhash.xxh3_128()

    def update(self, data: bytes) -> None:
        self._digest.update(data)

    def result(self) -> str:
        return f"{CONTENT_HASH}:{self._digest.hexdigest()}"


def file_content_hash(path: str, like: str | None = None) -> str | None:
    """:func:`content_hash` of a file, read in pieces (None if it cannot be read); with
    ``like`` an older memory's SHA-256, the file's SHA-256 to compare with it."""
    if like is not None and ":" not in like:
        return file_sha256(path)
    hasher = ContentHasher()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                hasher.update(chunk)
    except OSError:
        return None
    return hasher.result()


def file_sha256(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return None


def _memory_schema() -> Any:
    """The inputs memory's columns: what earlier runs ingested, by key digest."""
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("key", pa.string()),
            pa.field("input", pa.string()),
            pa.field("size", pa.int64()),
            pa.field("mtime", pa.float64()),
            pa.field("content_hash", pa.string()),
            pa.field("run_id", pa.string()),
        ]
    )


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


def json_text(data: Any) -> str:
    """``data`` as compact ASCII JSON.

    ASCII: input names may hold lone surrogates (undecodable bytes of a file name). One
    json.dumps without indent: the C encoder (json.dump or an indent would take the
    pure-Python one, seconds for the per-input list of 100k files).
    """
    return json.dumps(data, default=_json_default, ensure_ascii=True, separators=(",", ":"))


def _json_default(value: Any) -> Any:
    rows = getattr(value, "rows", None)  # etl.accounting.InputRows: its list of dicts
    return rows() if callable(rows) else str(value)


def write_json_atomic(path: Path, data: Any, text: str | tuple[str, ...] | None = None) -> None:
    """Write JSON so that ``path`` holds either the old content or the whole new one.

    ``text``: ``data`` already encoded (by :func:`json_text`), or its pieces in order.
    """
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for piece in (
            (json_text(data),) if text is None else (text,) if isinstance(text, str) else text
        ):
            f.write(piece)
        f.flush()
        os.fsync(f.fileno())
    if path.name == COMMIT_FILE:
        fault_point("commit-point-tmp")
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _process_start(pid: int) -> int | None:
    """The start time (clock ticks since boot) of a process, to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        return int(stat.rsplit(b")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


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

    def ids(self) -> set[str]:
        """The ids of every committed article (one column read)."""
        import pyarrow.dataset as pads

        files = self.data_files()
        if not files:
            return set()
        table = pads.dataset([str(f) for f in files], format="parquet").to_table(columns=["id"])
        return set(table.column("id").to_pylist())

    def manifests(self) -> list[dict[str, Any]]:
        """Manifests of committed runs, in commit order (runs commit one at a time, under the
        lock; ids of runs from before ids carried microseconds sort by start second only)."""
        if not self.runs_dir.is_dir():
            return []
        out = []
        for path in sorted(self.runs_dir.glob("*.json")):
            try:
                out.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
        out.sort(key=lambda m: str(m.get("finished_at") or ""))
        return out

    def rejects_files(self) -> list[Path]:
        return (
            sorted(self.rejects_dir.glob(f"*{REJECTS_SUFFIX}")) if self.rejects_dir.is_dir() else []
        )

    # memory of ingested inputs

    @property
    def inputs_path(self) -> Path:
        return self.meta / INPUTS_FILE

    def remembered_inputs(self) -> dict[str, tuple[Any, Any, Any]]:
        """What earlier runs ingested: ``{key_digest: (size, mtime, content_hash)}``.

        Read from ``_etl/inputs.pq``; a dataset without one (older, or the file lost) gets
        it rebuilt from the run manifests, where each run lists its inputs.
        """
        if self.inputs_path.is_file():
            table = self._read_memory()
            if table is not None:
                columns = ("key", "size", "mtime", "content_hash")
                cols = [table.column(c).to_pylist() for c in columns]
                return {k: (sz, mt, h) for k, sz, mt, h in zip(*cols, strict=True)}
        return {
            row["key"]: (row["size"], row["mtime"], row["content_hash"])
            for row in self._inputs_from_manifests()
        }

    def _read_memory(self) -> Any:
        """``_etl/inputs.pq`` as a table of the memory's schema (None if unreadable); an
        older memory's ``sha256`` column is its content hash."""
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(self.inputs_path)
            if "content_hash" not in table.schema.names and "sha256" in table.schema.names:
                names = ["content_hash" if n == "sha256" else n for n in table.schema.names]
                table = table.rename_columns(names)
            return table.select(_memory_schema().names).cast(_memory_schema())
        except Exception:  # unreadable memory: the caller falls back to the manifests
            return None

    def run_inputs(self, manifest: dict[str, Any]) -> list[dict[str, Any]]:
        """A committed run's per-input account, one dict per input (see docs/reliability.md).

        Read from ``_etl/runs/<run>.inputs.pq``; manifests written before that file existed
        hold the list themselves (``summary.per_input``).
        """
        import pyarrow.parquet as pq

        summary = manifest.get("summary", {})
        name = summary.get("inputs_file")
        if not name:
            return list(summary.get("per_input", []))
        try:
            return pq.read_table(self.runs_dir / Path(name).name).to_pylist()
        except (OSError, ValueError):
            return []

    def _inputs_from_manifests(self) -> list[dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}
        for manifest in self.manifests():
            if manifest.get("sink_mode") == "overwrite":
                rows = {}
            for entry in self.run_inputs(manifest):
                if not entry.get("remembered", True) or entry.get("size") is None:
                    continue
                key = entry.get("key") or key_digest(entry["input"])
                rows[key] = {
                    "key": key,
                    "input": entry["input"],
                    "size": entry.get("size"),
                    "mtime": entry.get("mtime"),
                    # runs before the content hash had SHA-256 (compared as one)
                    "content_hash": entry.get("content_hash") or entry.get("sha256"),
                    "run_id": manifest.get("run_id"),
                }
        return list(rows.values())

    def stage_inputs(self, run_id: str, entries: Any, *, replace: bool) -> str:
        """Write the inputs memory as it will be after this run into the run's staging.

        Returns its path relative to the root, for the commit plan. ``entries`` is a table
        (or None) with key, input, size, mtime, content_hash of this run's remembered inputs;
        ``replace`` forgets every earlier input (overwrite mode).
        """
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        columns = ["key", "input", "size", "mtime", "content_hash"]
        if entries is None:
            new = _memory_schema().empty_table()
        else:
            new = entries.select(columns)
            new = new.append_column("run_id", pa.repeat(pa.scalar(run_id), new.num_rows))
            new = new.cast(_memory_schema())
        table = new
        if not replace:
            old = self._read_memory() if self.inputs_path.is_file() else None
            if old is None:
                found = self._inputs_from_manifests()
                old = pa.Table.from_pylist(found, schema=_memory_schema())
            if old.num_rows:
                # an input read again replaces what was remembered of it
                old = old.filter(pc.invert(pc.is_in(old.column("key"), value_set=new["key"])))
                table = pa.concat_tables([old, new])
        staged = self.staging(run_id) / f"inputs{STAGED_SUFFIX}"
        # paths, keys and hashes are distinct: a dictionary only for the run ids
        pq.write_table(table, staged, compression="zstd", use_dictionary=["run_id"])
        return str(staged.relative_to(self.root))

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
            "pid_start": _process_start(os.getpid()),
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

    def _break_lock(self, path: Path, holder: dict[str, Any]) -> None:
        """Remove a dead holder's lock, unless someone replaced it meanwhile.

        Breakers take ``lock.break`` (O_EXCL) first, then check that the lock still names
        the dead holder: two processes that both saw the same stale lock cannot both break
        it, and neither can remove a lock that a third process just took.
        """
        fault_point("break-lock")
        guard = path.with_name("lock.break")
        try:
            fd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:  # a breaker that died while breaking leaves the guard behind
                if time.time() - guard.stat().st_mtime > 10:
                    guard.unlink(missing_ok=True)
            except OSError:
                pass
            time.sleep(0.05)
            return
        try:
            os.close(fd)
            current = self._read_lock(path)
            if current is not None and all(
                current.get(k) == holder.get(k) for k in ("run_id", "host", "pid", "started_at")
            ):
                path.unlink(missing_ok=True)
                fsync_dir(path.parent)
        finally:
            guard.unlink(missing_ok=True)

    def release_lock(self) -> None:
        path = self.meta / "lock"
        holder = self._read_lock(path)
        if holder and holder.get("pid") == os.getpid():
            fault_point("before-unlock")
            path.unlink(missing_ok=True)

    # commit and recovery

    def commit(self, run_id: str, plan: dict[str, Any]) -> None:
        """Write the commit point for a staged run, then apply it.

        ``plan`` holds ``renames`` ([staged, final] relative to the dataset root),
        ``deletes`` (relative paths of data files to remove), ``rejects`` (staged rejects
        file or None) and ``manifest``.
        """
        staging = self.staging(run_id)
        for rel in [s for s, _ in plan.get("renames", [])] + [
            plan.get("rejects"),
            plan.get("inputs"),
            plan.get("run_inputs"),
        ]:
            if rel:
                fsync_file(self.root / rel)
        for directory in {(self.root / s).parent for s, _ in plan.get("renames", [])}:
            fsync_dir(directory)
        fsync_dir(staging)
        fault_point("before-commit-point")
        # the manifest (large: one entry per input) is encoded once, for COMMIT.json and
        # for the run's manifest file, and not read back
        manifest_text = json_text(plan.get("manifest"))
        rest = {k: v for k, v in plan.items() if k != "manifest"}
        rest_text = json_text(rest)
        pieces = (rest_text[:-1], "," if rest else "", '"manifest":', manifest_text, "}")
        write_json_atomic(staging / COMMIT_FILE, plan, text=pieces)
        fault_point("after-commit-point")
        self.apply(run_id, _written=(json.loads(rest_text), manifest_text))

    def apply(self, run_id: str, _written: tuple[dict[str, Any], str] | None = None) -> None:
        """Apply (or finish applying) a staged run's COMMIT.json; idempotent."""
        staging = self.staging(run_id)
        if _written is not None:  # just written by commit: its plan and manifest text
            plan, manifest_text = _written
        else:
            plan = json.loads((staging / COMMIT_FILE).read_text(encoding="utf-8"))
            manifest_text = None
        for rel in plan.get("deletes", []):
            self._inside(rel).unlink(missing_ok=True)
        for n, (staged_rel, final_rel) in enumerate(plan.get("renames", [])):
            staged, final = self._inside(staged_rel), self._inside(final_rel)
            if staged.exists():
                if not final.parent.is_dir():
                    final.parent.mkdir(parents=True, exist_ok=True)
                    fsync_dir(final.parent.parent)
                os.replace(staged, final)
            if n == 0:
                fault_point("mid-apply")
        if plan.get("rejects"):
            staged = self.root / plan["rejects"]
            if staged.exists():
                self.rejects_dir.mkdir(parents=True, exist_ok=True)
                os.replace(staged, self.rejects_dir / f"{run_id}{REJECTS_SUFFIX}")
        if plan.get("inputs"):
            staged = self.root / plan["inputs"]
            if staged.exists():
                os.replace(staged, self.inputs_path)
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        if plan.get("run_inputs"):
            # before the manifest: a manifest that names its inputs file finds it
            staged = self.root / plan["run_inputs"]
            if staged.exists():
                os.replace(staged, self.runs_dir / f"{run_id}{RUN_INPUTS_SUFFIX}")
        for directory in {(self.root / f).parent for _, f in plan.get("renames", [])}:
            fsync_dir(directory)
        fsync_dir(self.rejects_dir)
        fsync_dir(self.meta)
        fault_point("before-manifest")
        if manifest_text is None:
            write_json_atomic(self.runs_dir / f"{run_id}.json", plan["manifest"])
        else:
            write_json_atomic(self.runs_dir / f"{run_id}.json", None, text=manifest_text)
        fault_point("after-manifest")
        shutil.rmtree(staging, ignore_errors=True)
        fsync_dir(self.staging_root)
        self._prune_empty_dirs(plan.get("deletes", []))

    def _inside(self, rel: str) -> Path:
        """``rel`` under the dataset root; a RunError if it would lead anywhere else."""
        path = self.root / rel
        if (
            "\0" in rel
            or os.path.isabs(rel)
            or ".." in Path(rel).parts
            or not os.path.normpath(path).startswith(os.path.normpath(self.root) + os.sep)
        ):
            raise RunError(f"refusing to write outside the dataset {self.root}: {rel!r}")
        return path

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
