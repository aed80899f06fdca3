"""Durable file writes: fsync of files and folders, atomic JSON; Parquet files read whole
(on any store filesystem: see :mod:`etl.store.fs`)."""

from __future__ import annotations

import json
from typing import Any

from etl.store.fs import ObjectPath, StorePath, fs_of

COMMIT_FILE = "COMMIT.json"


def fsync_file(path: StorePath) -> None:
    fs_of(path).fsync_file(path)


def fsync_files(paths: list[StorePath]) -> None:
    """``fsync_file`` of each path (all on one store); on an object store, a listing of
    each folder checks they are there."""
    if paths:
        fs_of(paths[0]).fsync_files(paths)


def fsync_dir(path: StorePath) -> None:
    fs_of(path).fsync_dir(path)


def json_text(data: Any) -> str:
    """``data`` as compact ASCII JSON.

    ASCII: input names may hold lone surrogates (undecodable bytes of a file name). One
    json.dumps without indent: the C encoder (json.dump or an indent would take the
    pure-Python one, seconds for a large list).
    """
    return json.dumps(data, default=_json_default, ensure_ascii=True, separators=(",", ":"))


def _json_default(value: Any) -> Any:
    from etl.accounting import InputRows

    if isinstance(value, InputRows):
        return value.rows()
    return str(value)


def write_json_atomic(
    path: StorePath, data: Any, text: str | tuple[str, ...] | None = None
) -> None:
    """Write JSON so that ``path`` holds either the old content or the whole new one.

    ``text``: ``data`` already encoded (by :func:`json_text`), or its pieces in order.
    """
    pieces = (json_text(data),) if text is None else (text,) if isinstance(text, str) else text
    fs_of(path).write_atomic(path, pieces)


def read_parquet(path: StorePath, **kwargs: Any) -> Any:
    """``pyarrow.parquet.read_table`` of a store's file, on its filesystem.

    An object is fetched whole with one GET: the store reads whole files (the memory, the
    id index, a file a merge rewrites), where pyarrow's reader would ask for the size, the
    footer and then the rest, and twice more whether it is a file.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if isinstance(path, ObjectPath):
        return pq.read_table(pa.BufferReader(path.read_bytes()), **kwargs)
    return pq.read_table(path, **kwargs)
