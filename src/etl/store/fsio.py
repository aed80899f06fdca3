"""Durable file writes: fsync of files and folders, atomic JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from etl.store.faults import fault_point

COMMIT_FILE = "COMMIT.json"


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
    pure-Python one, seconds for a large list).
    """
    return json.dumps(data, default=_json_default, ensure_ascii=True, separators=(",", ":"))


def _json_default(value: Any) -> Any:
    from etl.accounting import InputRows

    if isinstance(value, InputRows):
        return value.rows()
    return str(value)


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
