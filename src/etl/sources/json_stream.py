"""Streaming JSON for the ``jsonl`` source: where a read is, what format a file holds, and
one JSON value at a time from a multi-line document or a top-level array."""

from __future__ import annotations

import codecs
import io
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from etl.sources.jsonl_fast import _Hasher

_CHUNK = 1 << 20
_SNIPPET = 200
LINE_SUFFIXES = (".jsonl", ".ndjson", ".jsonlines", ".jl")


class Position:
    """How far a read got: the line (for rejects) and how many records it saw."""

    def __init__(self) -> None:
        self.line = 0
        self.records = 0


def _ascii_compatible(encoding: str) -> bool:
    try:
        return "{[\n".encode(encoding) == b"{[\n"
    except (UnicodeError, LookupError):
        return False


def sniff_format(stream: io.BufferedReader, encoding: str, name: str) -> str:
    """'json' for an array or a multi-line document, else 'jsonl' (peeks, reads nothing)."""
    raw = stream.peek(_CHUNK)[:_CHUNK]
    head = raw.decode(encoding, "replace")
    stripped = head.lstrip("\ufeff \t\r\n")
    if stripped.startswith("["):
        return "json"
    if name.endswith(LINE_SUFFIXES):
        return "jsonl"
    first, newline, _ = stripped.partition("\n")
    if not newline and len(raw) >= _CHUNK:
        return "jsonl"  # a first line longer than the peek: lines
    try:
        json.loads(first)
        return "jsonl"
    except ValueError:
        return "json" if (first.strip().startswith("{") or not first.strip()) else "jsonl"


def _skip_line(stream: Any, hasher: _Hasher | None = None) -> int:
    skipped = 0
    while True:
        chunk = stream.readline(_CHUNK)
        if hasher is not None:
            hasher.update(chunk)
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n" if isinstance(chunk, bytes) else "\n"):
            return skipped


def _snippet(line: bytes | str) -> str:
    text = line.strip()[:_SNIPPET]
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return text + ("…" if len(line.strip()) > _SNIPPET else "")


class JsonStreamError(Exception):
    def __init__(self, reason: str, line: int, detail: str) -> None:
        super().__init__(f"{reason} at line {line}: {detail}")
        self.reason = reason
        self.line = line
        self.detail = detail


class JsonValues:
    """The JSON values of a stream, one at a time: a top-level array's items, or the
    documents one after the other (pretty-printed, concatenated, or one per line).

    Yields ``(value, line, item)``: the line the value starts on, and its 1-based index in
    a top-level array (0 outside one). Raises :class:`JsonStreamError` at a malformed value.
    """

    def __init__(self, stream: io.BufferedReader, encoding: str, max_value_bytes: int) -> None:
        self.stream = stream
        self.decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        self.json = json.JSONDecoder()
        self.max_value = max_value_bytes
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.line = 1  # the line of self.pos

    def _fill(self, size: int = _CHUNK) -> bool:
        """Read more; False at the end of the input."""
        if self.eof:
            return False
        data = self.stream.read(size)
        self.eof = not data
        text = self.decoder.decode(data, final=self.eof)
        self.buf = self.buf[self.pos :] + text
        self.pos = 0
        return bool(data) or bool(text)

    def _advance(self, new_pos: int) -> None:
        self.line += self.buf.count("\n", self.pos, new_pos)
        self.pos = new_pos

    def _skip_ws(self) -> str:
        """The next non-whitespace character ('' at the end), not consumed."""
        while True:
            buf, pos, n = self.buf, self.pos, len(self.buf)
            while pos < n and buf[pos] in " \t\r\n":
                pos += 1
            self._advance(pos)
            if pos < n:
                return buf[pos]
            if not self._fill():
                return ""

    def _value(self) -> Any:
        size = _CHUNK
        while True:
            try:
                value, end = self.json.raw_decode(self.buf, self.pos)
            except RecursionError:
                raise JsonStreamError(
                    "malformed JSON",
                    self.line,
                    "nested too deeply; the rest of the file is skipped",
                ) from None
            except json.JSONDecodeError as exc:
                if not self.eof and len(self.buf) - self.pos <= self.max_value:
                    self._fill(size)  # the value may go on past what is buffered
                    size = min(size * 2, 64 * _CHUNK)
                    continue
                line = self.line + self.buf.count("\n", self.pos, exc.pos)
                if len(self.buf) - self.pos > self.max_value:
                    raise JsonStreamError(
                        "record too large",
                        self.line,
                        f"a value over max_record_bytes {self.max_value}; the rest is skipped",
                    ) from None
                raise JsonStreamError(
                    "malformed JSON",
                    line,
                    f"{exc.msg} (line {line} column {exc.colno}); the rest of the file is skipped",
                ) from None
            if end == len(self.buf) and not self.eof and self._fill(size):
                continue  # a number or literal may be cut at the buffer's end
            self._advance(end)
            return value

    def __iter__(self) -> Iterator[tuple[Any, int, int]]:
        first = True
        while True:
            char = self._skip_ws()
            if not char:
                return
            if first and char == "[":
                first = False
                self._advance(self.pos + 1)
                yield from self._array()
                continue
            first = False
            line = self.line
            yield self._value(), line, 0

    def _array(self) -> Iterator[tuple[Any, int, int]]:
        item = 0
        if self._skip_ws() == "]":
            self._advance(self.pos + 1)
            return
        while True:
            item += 1
            line = self.line
            yield self._value(), line, item
            char = self._skip_ws()
            if char == ",":
                self._advance(self.pos + 1)
                self._skip_ws()
            elif char == "]":
                self._advance(self.pos + 1)
                return
            else:
                found = repr(char) if char else "the end"
                raise JsonStreamError(
                    "malformed JSON",
                    self.line,
                    f"expected ',' or ']' after array item {item}, found {found}; "
                    "the rest of the file is skipped",
                )
