"""The bundled ``jsonl`` source: JSON Lines, one-object-per-file JSON and JSON arrays.

Each JSON object is an article; ``fields`` says which key fills which column (defaults cover
the common exports: news-please, newspaper4k, Dolma...). Files are streamed: JSON Lines one
line at a time, JSON documents (a top-level array, or objects one after the other) one value
at a time, so a file never sits in memory as Python objects. A malformed line is a reject
with its line number and the rest of the file is read; in a multi-line JSON document a
malformed value ends the file (there is no line to resume at), and that is a reject too.

UTF-8 JSON Lines with top-level keys (the common case) take a fast path: the file is read in
chunks of whole lines (``jsonl_fast.FAST_CHUNK`` bytes), each parsed by ``pyarrow.json`` and mapped
to article columns with Arrow kernels. A chunk that is not plainly clean (anything the
per-line path would reject, or read differently) is read by the per-line path instead, so
both give the same rows and the same rejects; see :class:`_FastLines`.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import json
import os
import posixpath
import urllib.parse
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from etl.decode import sniff_bom
from etl.hookspecs import hookimpl
from etl.inputs import InputError, open_local, sniff_compression
from etl.inputs import strip_compression_suffix as _strip_compression
from etl.plugin import Option, Part, SplitsInputs, WorkUnit
from etl.sources.json_stream import (
    JsonStreamError,
    JsonValues,
    Position,
    _ascii_compatible,
    _skip_line,
    _snippet,
    sniff_format,
)
from etl.sources.jsonl_fast import _FastLines, _Hasher
from etl.sources.records import (
    DATE_ORDER_OPTION,
    RecordBatcher,
    RecordSource,
)
from etl.sources.split import line_parts, open_range

if TYPE_CHECKING:
    from etl.context import Context

DEFAULT_MAX_RECORD_BYTES = 64 * 1024 * 1024
#: bytes read at a time by the fast path (a chunk is cut at its last newline)
#: the fast path is used at all (tests turn it off to compare with the per-line path)
FAST = True

FIELDS_HELP = (
    'article column -> input key, dotted for nesting, e.g. { text = "body", published_at = '
    '"meta.date" }; columns: text title uri published_at publisher authors language'
)


def input_name(key: str) -> str:
    """The file name of a path or URL, without a compression suffix."""
    path = urllib.parse.urlsplit(key).path if "://" in key else key
    return _strip_compression(posixpath.basename(path.replace("\\", "/"))).lower()


class JsonlSource(RecordSource, SplitsInputs):
    """JSON Lines, JSON files and JSON arrays; one article per object, keys mapped by `fields`."""

    name = "jsonl"
    default_include = ["*.jsonl", "*.ndjson", "*.jsonlines", "*.jl", "*.json"]
    # paths, include, max_bytes (no limit by default), retries, timeout: from FileSource
    options = (
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
        DATE_ORDER_OPTION,
        Option(
            "max_record_bytes",
            "int",
            DEFAULT_MAX_RECORD_BYTES,
            min=1,
            help="a longer line or JSON value is rejected, the rest is read",
        ),
    )

    def read(self, unit: WorkUnit, ctx: Context) -> Iterator[pa.RecordBatch]:
        batcher = RecordBatcher(
            self.fields,
            ctx,
            keep_extra=self.opts.keep_extra,
            date_order=self.opts.date_order,
            check=self.key_check,
        )
        position = Position()
        part = unit.part
        first_line = part.first_line if part is not None else 0
        try:
            with self._open(unit) as stream:
                # a part (split only when the whole file is UTF-8 JSON Lines) starts mid-file:
                # nothing to sniff there
                encoding = "utf-8-sig" if part is not None else self._encoding(stream)
                fmt = "jsonl" if part is not None else self.opts.format
                if fmt == "auto":
                    fmt = sniff_format(stream, encoding, input_name(unit.key))
                if fmt == "jsonl" and self._fast_ok(encoding):
                    fast = _FastLines(
                        self.fields,
                        self.opts.max_record_bytes,
                        ctx,
                        position,
                        date_order=self.opts.date_order,
                    )
                    hasher = _Hasher.for_input(unit) if part is None else None
                    try:
                        yield from fast.read(stream, batcher, self._lines, hasher, first_line)
                    finally:
                        digest = hasher.result() if hasher is not None else None
                        if digest is not None:  # the sink need not read the file again
                            ctx.digests[unit.key] = digest
                else:
                    records = (
                        self._lines(stream, encoding, ctx, position, first_line)
                        if fmt == "jsonl"
                        else self._documents(stream, encoding, ctx, position)
                    )
                    for record, location in records:
                        batcher.add(record, location)
                        if len(batcher) >= ctx.batch_size:
                            yield batcher.flush()
        except InputError as exc:
            where = f"line {position.line + 1}" if position.line > first_line else None
            ctx.reject(exc.reason, location=where, detail=exc.detail)
        batch = batcher.flush()
        if batch is not None:
            yield batch
        # a first input (or part) shorter than a batch: check `fields` against its records
        self.key_check.finish(unit.key)
        if part is not None:
            # the content hash the split took of the whole file, given by its last part
            # when the file is still as listed (else the inputs memory hashes it again)
            digest = split_digest(unit)
            if digest is not None:
                ctx.digests[unit.key] = digest
            return  # a part may hold no record: the framework checks the whole input
        if position.records == 0 and not ctx.rejects:
            ctx.reject("empty file", detail="no JSON value in the input")

    # splitting (SplitsInputs)

    def split(self, unit: WorkUnit, parts_hint: int) -> list[WorkUnit]:
        """Byte-range parts of a big local, uncompressed UTF-8 JSON Lines file, cut at line
        starts; any other input stays whole (see :mod:`etl.sources.split`)."""
        ref = unit.input
        max_bytes = self.opts.max_bytes
        if (
            parts_hint < 2
            or unit.part is not None
            or ref.size is None
            or ref.problem is not None
            or "://" in ref.key
            or (max_bytes is not None and ref.size > max_bytes)  # rejected whole, unread
            or self.opts.format == "json"
        ):
            return [unit]
        try:
            with open_local(ref.key) as f:
                if sniff_compression(f.peek(8)[:8]) is not None:
                    return [unit]  # a compressed stream has no byte to start a part at
                encoding = self._encoding(f)
                if encoding != "utf-8-sig" or (
                    self.opts.format == "auto"
                    and sniff_format(f, encoding, input_name(ref.key)) != "jsonl"
                ):
                    return [unit]
            cuts = line_parts(ref.key, ref.size, parts_hint)
        except (InputError, OSError):
            return [unit]  # reading it whole rejects it as before
        if len(cuts.starts) < 2 or cuts.size != ref.size:
            return [unit]
        ends = [*cuts.starts[1:], cuts.size]
        count = len(cuts.starts)
        return [
            WorkUnit(
                ref,
                # the last part hands the whole file's content hash to the inputs memory
                {"content_hash": cuts.digest} if i == count - 1 else None,
                unit.source_index,
                Part(i, count, start, end, lines),
            )
            for i, (start, end, lines) in enumerate(zip(cuts.starts, ends, cuts.lines, strict=True))
        ]

    @contextlib.contextmanager
    def _open(self, unit: WorkUnit) -> Iterator[io.BufferedReader]:
        """The unit's stream: its byte range for a part, else the whole input."""
        part = unit.part
        if part is None:
            with self.open_input(unit) as stream:
                yield stream
        else:
            with open_range(unit.key, part.start, part.end) as stream:
                yield stream

    def _encoding(self, stream: io.BufferedReader) -> str:
        """The option's encoding, unless a UTF-16/32 byte-order mark says otherwise."""
        bom = sniff_bom(stream.peek(4)[:4])
        if bom is not None and bom[0].startswith(("utf-16", "utf-32")):
            return bom[0][:6]  # "utf-16"/"utf-32" read the mark and drop it
        name = codecs.lookup(self.opts.encoding).name
        return "utf-8-sig" if name in ("utf-8", "utf-8-sig") else name

    def _fast_ok(self, encoding: str) -> bool:
        """UTF-8, no ``keep_extra``, top-level keys only and some key for the text."""
        return (
            FAST
            and encoding == "utf-8-sig"
            and not self.opts.keep_extra
            and bool(self.fields.keys["text"])
            and not any("." in key for keys in self.fields.keys.values() for key in keys)
        )

    def _lines(
        self,
        stream: io.BufferedReader | io.BytesIO,
        encoding: str,
        ctx: Context,
        position: Position,
        first_line: int = 0,
    ) -> Iterator[tuple[Any, str]]:
        limit = self.opts.max_record_bytes
        lineno = first_line
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


def split_digest(unit: WorkUnit) -> str | None:
    """The content hash a split took of the whole input, from its last part, if the file is
    still as it was listed (size and mtime): else None, and the inputs memory decides."""
    data = unit.data
    if not isinstance(data, dict) or "content_hash" not in data:
        return None
    try:
        st = os.stat(unit.key)
    except OSError:
        return None
    if st.st_size != unit.input.size or st.st_mtime != unit.input.mtime:
        return None
    return data["content_hash"]


@hookimpl
def etl_register_plugins(register):
    register(JsonlSource)
