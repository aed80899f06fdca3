"""The store's filesystem seam: a dataset in a local folder, or on any fsspec filesystem.

A store's paths are :class:`pathlib.Path` for a local dataset (every operation exactly as
before: ``os.replace``, ``fsync``, ``O_EXCL``) or :class:`ObjectPath` for a dataset at a URL
(``s3://``, ``gs://``, ``az://``, ``memory://``): the part of pathlib's API the store uses,
over an fsspec filesystem. What pathlib has no word for goes through :func:`fs_of`, a
:class:`StoreFS` for the path:

* ``replace``: ``os.replace`` locally; on an object store a copy then a delete (no rename
  exists there), idempotent: a source that is gone with its destination there is done;
* ``create_exclusive``: ``O_CREAT | O_EXCL`` locally; a conditional PUT (``If-None-Match:
  *``) on S3, a create-only write elsewhere: the lock's one atomic step;
* ``write_atomic``: a temporary file, fsync and ``os.replace`` locally; one PUT on an object
  store (an object is replaced whole or not at all);
* ``fsync``: a no-op on an object store (a PUT that returned is durable).

See docs/design.md ("Datasets on object stores").
"""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import inspect
import os
import posixpath
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from types import SimpleNamespace
from typing import Any, Protocol

from etl.storage import filesystem, is_url


class ObjectPath:
    """A path on an fsspec filesystem, with the part of pathlib's API the store uses.

    Args:
        fs: the fsspec filesystem.
        path: the path inside it, without the protocol (``bucket/out``).
        protocol: the URL's scheme (``s3``), for :meth:`__str__`.
    """

    def __init__(self, fs: Any, path: str, protocol: str) -> None:
        self.fs = fs
        self.path = path.rstrip("/")
        self.protocol = protocol

    # pure path operations

    def __str__(self) -> str:
        # fsspec roots memory:// paths at "/": memory://bucket/out, not memory:///bucket/out
        path = self.path.lstrip("/") if self.protocol == "memory" else self.path
        return f"{self.protocol}://{path}"

    def __repr__(self) -> str:
        return f"ObjectPath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectPath) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __lt__(self, other: ObjectPath) -> bool:
        return str(self) < str(other)

    def _at(self, path: str) -> ObjectPath:
        return ObjectPath(self.fs, path, self.protocol)

    def __truediv__(self, rel: str | PurePosixPath) -> ObjectPath:
        return self._at(posixpath.join(self.path, str(rel)))

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)

    @property
    def parent(self) -> ObjectPath:
        return self._at(posixpath.dirname(self.path) or self.path)

    @property
    def parents(self) -> list[ObjectPath]:
        found, here = [], self
        while here.parent != here:
            here = here.parent
            found.append(here)
        return found

    def with_name(self, name: str) -> ObjectPath:
        return self.parent / name

    def relative_to(self, other: ObjectPath) -> PurePosixPath:
        return PurePosixPath(self.path).relative_to(other.path)

    def resolve(self) -> ObjectPath:
        return self

    # what is there

    def exists(self) -> bool:
        return bool(self.fs.exists(self.path))

    def is_file(self) -> bool:
        return bool(self.fs.isfile(self.path))

    def is_dir(self) -> bool:
        self.fs.invalidate_cache(self.path)
        return bool(self.fs.isdir(self.path))

    def iterdir(self) -> Iterator[ObjectPath]:
        self.fs.invalidate_cache(self.path)
        try:
            entries = self.fs.ls(self.path, detail=False)
        except FileNotFoundError:
            return iter(())
        return iter(sorted(self._at(e.rstrip("/")) for e in entries if e.rstrip("/") != self.path))

    def glob(self, pattern: str) -> Iterator[ObjectPath]:
        if "/" in pattern or "**" in pattern:
            self.fs.invalidate_cache(self.path)
            found = self.fs.glob(posixpath.join(self.path, pattern))
            return iter(sorted(self._at(p) for p in found))
        # a pattern of names in this folder: one listing (fsspec's glob asks three or four
        # times whether the folder exists first)
        return iter(p for p in self.iterdir() if fnmatch.fnmatchcase(p.name, pattern))

    def find(self) -> list[ObjectPath]:
        """Every file below this path (an object store has no folders, only keys)."""
        self.fs.invalidate_cache(self.path)
        try:
            return sorted(self._at(p) for p in self.fs.find(self.path))
        except FileNotFoundError:
            return []

    def stat(self) -> SimpleNamespace:
        """``st_mtime`` (the object's last modification, by the server's clock) and
        ``st_size``."""
        try:
            info = self.fs.info(self.path)
            modified = info.get("LastModified") or self.fs.modified(self.path)
        except FileNotFoundError as exc:
            raise FileNotFoundError(str(self)) from exc
        return SimpleNamespace(st_mtime=modified.timestamp(), st_size=info.get("size"))

    # reading and writing

    def read_bytes(self) -> bytes:
        return bytes(self.fs.cat_file(self.path, **_whole_read(self.fs)))

    def read_many(self, paths: list[ObjectPath]) -> list[bytes]:
        """The content of each of ``paths`` (on this path's filesystem), fetched together."""
        if not paths:
            return []
        found = self.fs.cat([p.path for p in paths], on_error="raise", **_whole_read(self.fs))
        return [bytes(found[p.path]) for p in paths]

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def write_bytes(self, data: bytes) -> None:
        self.fs.pipe_file(self.path, data)

    def write_text(self, text: str, encoding: str = "utf-8") -> None:
        self.write_bytes(text.encode(encoding))

    def open(self, mode: str = "rb") -> Any:
        return self.fs.open(self.path, mode)

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        """Nothing to make: an object store's folders are the keys' prefixes."""

    def rmdir(self) -> None:
        """Nothing to remove (see :meth:`mkdir`)."""

    def unlink(self, missing_ok: bool = False) -> None:
        try:
            self.fs.rm_file(self.path)
        except FileNotFoundError:
            if not missing_ok:
                raise


StorePath = Path | ObjectPath


def store_path(
    root: str | os.PathLike[str] | ObjectPath, options: Mapping[str, Any] | None = None
) -> StorePath:
    """The root of a store: a :class:`Path`, or an :class:`ObjectPath` for a URL (its
    filesystem made with ``options``, a section's ``storage_options``)."""
    if isinstance(root, ObjectPath | Path):
        return root
    text = os.fspath(root)
    if not is_url(text) or text.startswith("file://"):
        return Path(text.removeprefix("file://"))
    # listings are never cached: other processes (workers, another run) write the store
    fs, path = filesystem(text, {"use_listings_cache": False, **(options or {})}, plugin="store")
    protocol = text.split("://", 1)[0].lower()
    return ObjectPath(fs, path, protocol)


def arrow(path: StorePath) -> tuple[Any, Any]:
    """``(where, filesystem)`` for pyarrow's readers and writers: a local path as it is
    (filesystem None), an object's path with a pyarrow filesystem over its fsspec one."""
    if not isinstance(path, ObjectPath):
        return path, None
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    return path.path, PyFileSystem(FSSpecHandler(path.fs))


class StoreFS(Protocol):
    """What the store does that pathlib cannot say the same way on every filesystem."""

    def replace(self, source: Any, target: Any) -> None:
        """Put ``source`` at ``target`` (replacing it), then remove ``source``."""

    def create_exclusive(self, path: Any, data: bytes) -> bool:
        """Create ``path`` holding ``data`` unless it exists; False if it did."""

    def write_atomic(self, path: Any, pieces: Iterable[str]) -> None:
        """Write ``path`` so that it holds the old content or the whole new one."""

    def fsync_file(self, path: Any) -> None: ...

    def fsync_files(self, paths: list[Any]) -> None:
        """``fsync_file`` of each (an object store checks they are there, by listing each
        folder once rather than asking for each object)."""

    def fsync_dir(self, path: Any) -> None: ...

    def rmtree(self, path: Any) -> None:
        """Remove ``path`` and everything below it; nothing if it is not there."""

    def touch_if(self, path: Any, renewed: Callable[[bytes], bytes | None]) -> bool:
        """Set ``path``'s modification time to now (by the clock of its server) if
        ``renewed(content)`` gives bytes; False when it gives None, or the object changed
        meanwhile (where the store can tell: an S3 PUT conditional on the ETag that was
        read). An object store gets the bytes ``renewed`` gives as the new content, so that
        each renewal has another ETag; a local file keeps its bytes."""

    def remove_if(self, path: Any, still: Callable[[bytes], bool]) -> bool:
        """Remove ``path`` if its content satisfies ``still``; False when it does not, it
        is not there, or it changed meanwhile (where the store can tell: an S3 DELETE
        conditional on the ETag that was read)."""


class LocalFS:
    """A local folder (or a POSIX mount): today's behaviour, exactly."""

    def replace(self, source: Path, target: Path) -> None:
        os.replace(source, target)

    def create_exclusive(self, path: Path, data: bytes) -> bool:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            if data:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        return True

    def write_atomic(self, path: Path, pieces: Iterable[str]) -> None:
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for piece in pieces:
                f.write(piece)
            f.flush()
            os.fsync(f.fileno())
        from etl.store.faults import fault_point

        if path.name == "COMMIT.json":
            fault_point("commit-point-tmp")
        os.replace(tmp, path)
        self.fsync_dir(path.parent)

    def fsync_file(self, path: Path) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def fsync_files(self, paths: list[Path]) -> None:
        for path in paths:
            self.fsync_file(path)

    def fsync_dir(self, path: Path) -> None:
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

    def rmtree(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)

    def touch_if(self, path: Path, renewed: Callable[[bytes], bytes | None]) -> bool:
        # no conditional write on a POSIX folder: read, check, touch. The server's clock
        # sets the mtime (on NFS too): one clock for every host. The bytes stay: writing
        # them (a new file renamed over the lock) could replace a lock another run took
        if renewed(path.read_bytes()) is None:
            return False
        os.utime(path)
        return True

    def remove_if(self, path: Path, still: Callable[[bytes], bool]) -> bool:
        # no conditional delete on a POSIX folder: read, check, unlink
        try:
            if not still(path.read_bytes()):
                return False
            path.unlink()
        except FileNotFoundError:
            return False
        self.fsync_dir(path.parent)
        return True


class ObjectFS:
    """An fsspec filesystem: no renames, no fsync; one PUT is atomic."""

    def replace(self, source: ObjectPath, target: ObjectPath) -> None:
        fs = source.fs
        try:
            try:
                # one object to one key: not copy(), which first lists both keys to see
                # whether either is a folder (two requests more per file on S3)
                fs.cp_file(source.path, target.path)
            except NotImplementedError:
                fs.copy(source.path, target.path)
        except FileNotFoundError:
            if fs.exists(target.path):
                return  # an earlier attempt copied it and deleted the source
            raise
        source.unlink(missing_ok=True)

    def create_exclusive(self, path: ObjectPath, data: bytes) -> bool:
        try:
            if path.protocol in ("s3", "s3a"):
                # If-None-Match: * (the server refuses the PUT when the key exists)
                path.fs.pipe_file(path.path, data, mode="create")
            else:
                with path.fs.open(path.path, "xb") as f:
                    f.write(data)
        except FileExistsError:
            return False
        return True

    def write_atomic(self, path: ObjectPath, pieces: Iterable[str]) -> None:
        data = "".join(pieces).encode("utf-8")
        from etl.store.faults import fault_point

        if path.name == "COMMIT.json":
            fault_point("commit-point-tmp")  # where a local commit has its .tmp file
        path.write_bytes(data)

    def fsync_file(self, path: ObjectPath) -> None:
        # nothing to flush (a PUT that returned is durable), but what a local fsync also
        # proves must hold: the staged object is there, before a commit point names it
        if not path.fs.exists(path.path):
            raise FileNotFoundError(2, "no such object", str(path))

    def fsync_files(self, paths: list[ObjectPath]) -> None:
        folders: dict[ObjectPath, list[ObjectPath]] = {}
        for path in paths:
            folders.setdefault(path.parent, []).append(path)
        for folder, group in folders.items():
            fs = folder.fs
            try:
                # refresh: a listing cached before the objects were written says nothing
                there = {fs._strip_protocol(p) for p in fs.ls(folder.path, False, refresh=True)}
            except FileNotFoundError:
                there = set()
            for path in group:
                if fs._strip_protocol(path.path) not in there:
                    raise FileNotFoundError(2, "no such object", str(path))

    def fsync_dir(self, path: ObjectPath) -> None:
        pass

    def rmtree(self, path: ObjectPath) -> None:
        keys = [item.path for item in path.find()]
        if keys:
            with contextlib.suppress(FileNotFoundError):
                path.fs.rm(keys)  # one request per thousand keys on S3 (DeleteObjects)

    def touch_if(self, path: ObjectPath, renewed: Callable[[bytes], bytes | None]) -> bool:
        # a PUT of the renewed bytes: the object's LastModified is the server's clock. On
        # S3 the PUT is conditional on the ETag read before the content (If-Match): an
        # object replaced after that read (another run broke the lock and took it) is never
        # overwritten with this content; the server refuses the PUT instead.
        etag = _etag(path)
        data = renewed(path.read_bytes())
        if data is None:
            return False
        if etag is not None:
            try:
                path.fs.pipe_file(path.path, data, IfMatch=etag)
                return True
            except OSError as exc:
                if _precondition_failed(exc):  # 412: it changed since the ETag was read
                    return False
                # an S3-compatible server without conditional PUTs: the plain re-PUT below
        path.write_bytes(data)
        return True

    def remove_if(self, path: ObjectPath, still: Callable[[bytes], bool]) -> bool:
        # on S3 a DELETE conditional on the ETag read before the content: an object
        # renewed or replaced after that read is kept
        try:
            etag = _etag(path)
            if not still(path.read_bytes()):
                return False
        except FileNotFoundError:
            return False
        if etag is not None:
            from fsspec.asyn import sync

            bucket, key, _ = path.fs.split_path(path.path)
            try:
                sync(
                    path.fs.loop,
                    path.fs._call_s3,
                    "delete_object",
                    Bucket=bucket,
                    Key=key,
                    IfMatch=etag,
                )
                path.fs.invalidate_cache(path.path)
                return True
            except Exception as exc:
                if _precondition_failed(exc) or _is_missing(exc):
                    path.fs.invalidate_cache(path.path)
                    return False
                # a server (or botocore) without conditional deletes: the plain DELETE below
        path.unlink(missing_ok=True)
        return True


def _etag(path: ObjectPath) -> str | None:
    """The ETag of an S3 object, read now (None on other stores)."""
    if path.protocol not in ("s3", "s3a"):
        return None
    return path.fs.info(path.path, refresh=True).get("ETag")


def _is_missing(exc: BaseException) -> bool:
    """Whether botocore's error says the key is not there (404, NoSuchKey)."""
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey") or isinstance(exc, FileNotFoundError)


def _precondition_failed(exc: BaseException) -> bool:
    """Whether the error is S3's 412 Precondition Failed (botocore's, or s3fs's with
    botocore's as its cause)."""
    response = getattr(exc, "response", None) or getattr(exc.__cause__, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    return code in ("PreconditionFailed", "412") or "pre-condition" in str(exc)


LOCAL = LocalFS()
OBJECT = ObjectFS()


def fs_of(path: StorePath) -> StoreFS:
    """The :class:`StoreFS` for ``path``."""
    return OBJECT if isinstance(path, ObjectPath) else LOCAL


def _whole_read(fs: Any) -> dict[str, Any]:
    """Options of ``cat_file`` for a whole object in one request: s3fs first asks for the
    size (a HEAD) to choose a concurrent download, which the store's small files never
    need."""
    return {"max_concurrency": 1} if _takes_concurrency(type(fs)) else {}


@functools.cache
def _takes_concurrency(kind: type) -> bool:
    cat_file = getattr(kind, "_cat_file", None)  # async filesystems only
    return cat_file is not None and "max_concurrency" in inspect.signature(cat_file).parameters
