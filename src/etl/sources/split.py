"""Byte-range parts of one big line-oriented file, for sources that split inputs.

:func:`line_parts` finds where to cut a local file into about ``parts`` pieces, each
starting at a line start, with the number of lines before each cut (so a part numbers its
lines as the whole file would) and the content hash of the file (so the inputs memory need
not read it again after the run). :func:`open_range` opens one such piece as a stream.

One pass over the file, on the driver: a numpy count of newlines and an XXH3 hash run at
memory speed, a small share of what parsing the same bytes costs on the workers (see
docs/performance.md). A line-oriented format whose records may hold a newline (CSV with
quoted fields) cannot use these cuts as they are: see docs/design.md.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from etl.inputs import InputError, open_local
from etl.store import ContentHasher

#: bytes read at a time while looking for the cuts
_BLOCK = 8 << 20


@dataclass(frozen=True)
class Cuts:
    """Where to cut a file: ``starts[i]`` is the first byte of part ``i`` (``starts[0]`` is
    0), ``lines[i]`` the lines before it; ``digest`` the content hash of ``size`` bytes."""

    starts: list[int]
    lines: list[int]
    size: int
    digest: str


def line_parts(path: str, size: int, parts: int) -> Cuts:
    """Cut the first ``size`` bytes of a local file into about ``parts`` pieces of whole lines.

    A cut is the first line start at or after ``size * k / parts``; a line longer than a
    part swallows the cuts inside it, so there may be fewer parts (at least one).

    Raises:
        InputError: the file cannot be opened (the source keeps the input whole, and reading
            it then rejects it as before).
        OSError: a read failed.
    """
    targets = [size * k // parts for k in range(1, parts)]
    starts, lines = [0], [0]
    hasher = ContentHasher()
    newlines = 0  # newlines before ``offset``
    offset = 0
    pending = 0  # the next target to place
    # one buffer read into again and again: a fresh 8 MB bytes object per read cost page
    # faults (system time) on every block
    block = bytearray(min(_BLOCK, max(size, 1)))
    view = memoryview(block)
    with open_local(path) as f:
        while offset < size:
            n = f.readinto(view[: min(len(block), size - offset)])
            if not n:
                break
            hasher.update(view[:n])
            end = offset + n
            # a cut at line start b >= target means a newline at b - 1 >= target - 1
            while pending < len(targets):
                target = max(targets[pending], starts[-1] + 1)
                at = max(target - 1 - offset, 0)
                if target - 1 >= end:
                    break
                found = block.find(b"\n", at, n)
                if found < 0:
                    break  # in a later block
                cut = offset + found + 1
                before = newlines + _count(block, found + 1)
                pending += 1
                if cut < size and cut > starts[-1]:
                    starts.append(cut)
                    lines.append(before)
            newlines += _count(block, n)
            offset = end
    return Cuts(starts, lines, offset, hasher.result())


def _count(block: bytearray, stop: int) -> int:
    """Newlines in ``block[:stop]`` (numpy: several times faster than ``bytes.count``)."""
    return int(np.count_nonzero(np.frombuffer(block, np.uint8, stop) == 10))


class _Range(io.RawIOBase):
    """Bytes ``[start, end)`` of an open file; read errors become :class:`InputError`."""

    def __init__(self, f: Any, start: int, end: int) -> None:
        self._f = f
        self._left = end - start
        f.seek(start)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._left <= 0:
            return 0
        view = memoryview(b)[: self._left]
        try:
            n = self._f.readinto(view) or 0
        except (OSError, ValueError) as exc:
            raise InputError("read failed", f"{type(exc).__name__}: {exc}") from None
        self._left -= n
        return n

    def close(self) -> None:
        self._f.close()
        super().close()


@contextmanager
def open_range(path: str, start: int, end: int) -> Iterator[io.BufferedReader]:
    """A buffered stream of bytes ``[start, end)`` of a local file.

    Raises:
        InputError: the file cannot be opened, or a read fails.
    """
    f = open_local(path)
    try:
        stream = io.BufferedReader(_Range(f, start, end), buffer_size=1 << 20)
    except OSError as exc:
        f.close()
        raise InputError("read failed", f"{type(exc).__name__}: {exc}") from None
    with stream:
        yield stream
