"""Finding inputs: paths, directories (recursive) and globs, expanded to InputRefs.

Later issues add compressed files and URLs here, so every file source gets them at once.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from etl.errors import ConfigError
from etl.plugin import InputRef

_GLOB_CHARS = set("*?[")


def expand_paths(
    paths: Sequence[str], *, plugin: str, section: str, include: Sequence[str] = ("*",)
) -> Iterator[InputRef]:
    """Every file that ``paths`` names, in a stable order, each once.

    A directory is searched recursively for files matching ``include`` (hidden files and
    folders skipped). A path or glob that matches nothing is a configuration error.
    """
    seen: set[str] = set()
    for pattern in paths:
        matched = False
        for path in _expand_one(pattern, include):
            matched = True
            if path in seen:
                continue
            seen.add(path)
            try:
                st = os.stat(path)
                yield InputRef(path, st.st_size, st.st_mtime)
            except OSError:
                # exists in the listing but cannot be stat'ed: the source rejects it on read
                yield InputRef(path)
        if not matched:
            raise ConfigError(
                f"plugin '{plugin}' ({section}): paths: nothing matches '{pattern}'",
                hint="check the path; relative paths are relative to the pipeline file's folder",
            )


def _expand_one(pattern: str, include: Sequence[str]) -> Iterator[str]:
    if any(c in pattern for c in _GLOB_CHARS):
        for match in sorted(glob.glob(pattern, recursive=True)):
            if os.path.isdir(match):
                yield from _walk(match, include)
            else:
                yield os.path.abspath(match)
    elif os.path.isdir(pattern):
        yield from _walk(pattern, include)
    elif os.path.lexists(pattern):
        yield os.path.abspath(pattern)


def _walk(directory: str, include: Sequence[str]) -> Iterator[str]:
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            if any(Path(name).match(p) for p in include):
                yield os.path.abspath(os.path.join(root, name))


class InputError(Exception):
    """An input could not be read; ``reason`` is the reject reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# magic bytes of the compressions every file source reads transparently
_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


def sniff_compression(head: bytes) -> str | None:
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


def read_input_bytes(ref: InputRef, *, max_bytes: int) -> bytes:
    """The whole (decompressed) content of a local input, at most ``max_bytes``.

    Compression is found by magic bytes, whatever the file is called. More than
    ``max_bytes`` after decompression (a decompression bomb included) raises InputError
    without reading further.
    """
    import bz2
    import gzip
    import lzma

    try:
        with open(ref.key, "rb") as raw:
            head = raw.read(8)
            raw.seek(0)
            kind = sniff_compression(head)
            if kind is None:
                if ref.size is not None and ref.size > max_bytes:
                    raise InputError("too large", f"{ref.size} bytes > max_bytes {max_bytes}")
                data = raw.read(max_bytes + 1)
            else:
                if kind == "gzip":
                    stream = gzip.GzipFile(fileobj=raw)
                elif kind == "bz2":
                    stream = bz2.BZ2File(raw)
                elif kind == "xz":
                    stream = lzma.LZMAFile(raw)
                else:
                    try:
                        import zstandard
                    except ImportError:
                        raise InputError(
                            "unsupported compression", "zstd input needs: pip install zstandard"
                        ) from None
                    stream = zstandard.ZstdDecompressor().stream_reader(raw)
                try:
                    data = stream.read(max_bytes + 1)
                except (OSError, EOFError, lzma.LZMAError, ValueError) as exc:
                    raise InputError(f"corrupt {kind} data", str(exc)) from None
    except OSError as exc:
        raise InputError("unreadable", f"{type(exc).__name__}: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise InputError("too large", f"more than max_bytes {max_bytes} (decompressed)")
    return data
