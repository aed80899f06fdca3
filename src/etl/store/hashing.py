"""How the store names inputs and recognises their bytes.

The key digest hides an input's name (it may hold a secret) and is SHA-256; the content
hash only tells a touched file from a changed one, so it is XXH3-128: 14 GB/s where SHA-256
does 1.8 (a sixth of a text -> parquet run of 100k files went to hashing). An unprefixed
value is a SHA-256 from an older memory, and is compared as one.
"""

from __future__ import annotations

import hashlib
import os
import stat
from typing import BinaryIO

import xxhash

CONTENT_HASH = "xxh3_128"


def key_digest(key: str) -> str:
    """How the inputs memory names an input (the key itself may hold a secret)."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]


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


#: the content hash a source reports for an input it did not read past a limit (``too
#: large``, a decompression bomb): remember the input by size and mtime, never hash it
NOT_HASHED = ""


def file_content_hash(path: str, like: str | None = None) -> str | None:
    """:func:`content_hash` of a regular file, read in pieces (None if it cannot be read,
    or is a FIFO or a device); with ``like`` an older memory's SHA-256, the file's SHA-256
    to compare with it. At most the size the file had when opened is read."""
    if like is not None and ":" not in like:
        return file_sha256(path)
    hasher = ContentHasher()
    try:
        with _open_regular(path) as f:
            left = os.fstat(f.fileno()).st_size
            while left > 0 and (chunk := f.read(min(1 << 20, left))):
                hasher.update(chunk)
                left -= len(chunk)
    except OSError:
        return None
    return hasher.result()


def file_sha256(path: str) -> str | None:
    try:
        with _open_regular(path) as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return None


def _open_regular(path: str) -> BinaryIO:
    """``path`` opened for reading if it is a regular file, else OSError: a FIFO would block
    the open, a device (``/dev/zero``) would never end."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path} is not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")
