"""How the store names inputs and recognises their bytes.

The key digest hides an input's name (it may hold a secret) and is SHA-256; the content
hash only tells a touched file from a changed one, so it is XXH3-128: 14 GB/s where SHA-256
does 1.8 (a sixth of a text -> parquet run of 100k files went to hashing). An unprefixed
value is a SHA-256 from an older memory, and is compared as one.
"""

from __future__ import annotations

import hashlib

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
