"""The bundled ``jsonl`` source: JSON Lines, one-object-per-file JSON and JSON arrays.

Each JSON object is an article; ``fields`` says which key fills which column (defaults cover
the common exports: news-please, newspaper4k, Dolma...). Files are streamed: JSON Lines one
line at a time, JSON documents (a top-level array, or objects one after the other) one value
at a time, so a file never sits in memory as Python objects. A malformed line is a reject
with its line number and the rest of the file is read; in a multi-line JSON document a
malformed value ends the file (there is no line to resume at), and that is a reject too.
"""

from __future__ import annotations

import codecs
import io
import json
import posixpath
import urllib.parse
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from etl.builtin.records import RecordBatcher, RecordSource
from etl.decode import sniff_bom
from etl.hookspecs import hookimpl
from etl.inputs import REMOTE_OPTIONS, InputError, open_input, remote_kwargs
from etl.inputs import strip_compression_suffix as _strip_compression
from etl.plugin import Option, WorkUnit

if TYPE_CHECKING:
    import pyarrow as pa

    from etl.context import Context

DEFAULT_MAX_RECORD_BYTES = 64 * 1024 * 1024
LINE_SUFFIXES = (".jsonl", ".ndjson", ".jsonlines", ".jl")
_CHUNK = 1 << 20
_SNIPPET = 200

FIELDS_HELP = (
    'article column -> input key, dotted for nesting, e.g. { text = "body", published_at = '
    '"meta.date" }; columns: text title uri published_at publisher authors language'
)


def input_name(key: str) -> str:
    """The file name of a path or URL, without a compression suffix."""
    path = urllib.parse.urlsplit(key).path if "://" in key else key
    return _strip_compression(posixpath.basename(path.replace("\\", "/"))).lower()


class JsonlSource(RecordSource):
    """JSON Lines, JSON files and JSON arrays; one article per object, keys mapped by `fields`."""

    name = "jsonl"
    options = (
        Option(
            "paths", "paths", required=True, help="files, directories (recursive), globs or URLs"
        ),
        Option(
            "include",
            "list",
            ["*.jsonl", "*.ndjson", "*.jsonlines", "*.jl", "*.json"],
            help="file name patterns to take from directories (compressed ones match too)",
        ),
        Option("fields", "dict", {}, help=FIELDS_HELP),
        Option(
            "format",
            "str",
            "auto",
            choices=("auto", "jsonl", "json"),
            help="'jsonl' (one object per line), 'json' (documents or an array) or 'auto'",
        ),
        Option(
            "keep_extra", "bool", False, help="keep the other top-level keys in metadata (as text)"
        ),
        Option("encoding", "str", "utf-8", help="text encoding of the input"),
        Option("max_bytes", "int", None, help="larger inputs are rejected (decompressed size)"),
        Option(
            "max_record_bytes",
            "int",
            DEFAULT_MAX_RECORD_BYTES,
            help="a longer line or JSON value is rejected, the rest is read",
        ),
        *REMOTE_OPTIONS,
    )

    def read(self, unit: WorkUnit, ctx: Context) -> Iterator[pa.RecordBatch]:
        batcher = RecordBatcher(self.fields, ctx, keep_extra=self.opts.keep_extra)
        position = Position()
        try:
            with open_input(
                unit.input, max_bytes=self.opts.max_bytes, **remote_kwargs(self.opts)
            ) as stream:
                encoding = self._encoding(stream)
                fmt = self.opts.format
                if fmt == "auto":
                    fmt = sniff_format(stream, encoding, input_name(unit.key))
                records = (
                    self._lines(stream, encoding, ctx, position)
                    if fmt == "jsonl"
                    else self._documents(stream, encoding, ctx, position)
                )
                for record, location in records:
                    batcher.add(record, location)
                    if len(batcher) >= ctx.batch_size:
                        yield batcher.flush()
        except InputError as exc:
            where = f"line {position.line + 1}" if position.line else None
            ctx.reject(exc.reason, location=where, detail=exc.detail)
        batch = batcher.flush()
        if batch is not None:
            yield batch
        if position.records == 0 and not ctx.rejects:
            ctx.reject("empty file", detail="no JSON value in the input")

    def _encoding(self, stream: io.BufferedReader) -> str:
        """The option's encoding, unless a UTF-16/32 byte-order mark says otherwise."""
        bom = sniff_bom(stream.peek(4)[:4])
        if bom is not None and bom[0].startswith(("utf-16", "utf-32")):
            return bom[0][:6]  # "utf-16"/"utf-32" read the mark and drop it
        name = codecs.lookup(self.opts.encoding).name
        return "utf-8-sig" if name in ("utf-8", "utf-8-sig") else name

    def _lines(
        self, stream: io.BufferedReader, encoding: str, ctx: Context, position: Position
    ) -> Iterator[tuple[Any, str]]:
        limit = self.opts.max_record_bytes
        lineno = 0
        utf8 = encoding == "utf-8-sig"
        source: Any = stream
        newline: Any = b"\n"
        if not utf8 and not _ascii_compatible(
            encoding
        ):  # UTF-16/32: lines are found in decoded text
            source = io.TextIOWrapper(stream, encoding=encoding, newline=None)
            newline = "\n"
        while True:
            try:
                line = source.readline(limit + 1)
            except UnicodeDecodeError as exc:
                position.records += 1
                ctx.reject(
                    f"not valid {encoding}",
                    location=f"line {lineno + 1}",
                    detail=f"{exc}; the rest of the file is skipped",
                )
                return
            if not line:
                return
            lineno += 1
            position.line = lineno
            if len(line) > limit and not line.endswith(newline):
                skipped = len(line) + _skip_line(source)
                position.records += 1
                ctx.reject(
                    "record too large",
                    location=f"line {lineno}",
                    detail=f"{skipped} bytes > max_record_bytes {limit}",
                )
                continue
            if not line.strip():
                continue
            position.records += 1
            try:
                if utf8 or isinstance(line, str):
                    value = json.loads(line)  # bytes: json finds UTF-8 and skips a BOM
                else:
                    value = json.loads(line.decode(encoding))
            except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
                message = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
                ctx.reject(
                    "malformed JSON",
                    location=f"line {lineno}",
                    detail=f"{message}: {_snippet(line)}",
                )
                continue
            if isinstance(value, list):
                for item_no, item in enumerate(value, 1):
                    yield item, f"line {lineno} item {item_no}"
            else:
                yield value, f"line {lineno}"

    def _documents(
        self, stream: io.BufferedReader, encoding: str, ctx: Context, position: Position
    ) -> Iterator[tuple[Any, str]]:
        values = JsonValues(stream, encoding, self.opts.max_record_bytes)
        try:
            for value, line, item in values:
                position.line = line
                position.records += 1
                yield value, (f"line {line} item {item}" if item else f"line {line}")
        except JsonStreamError as exc:
            position.records += 1
            ctx.reject(exc.reason, location=f"line {exc.line}", detail=exc.detail)
        except UnicodeDecodeError as exc:
            position.records += 1
            ctx.reject(
                f"not valid {encoding.replace('-sig', '')}",
                location=f"line {values.line}",
                detail=f"{exc}; the rest of the file is skipped",
            )


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


def _skip_line(stream: Any) -> int:
    skipped = 0
    while True:
        chunk = stream.readline(_CHUNK)
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


@hookimpl
def etl_register_plugins(register):
    register(JsonlSource)
