"""The bundled ``jsonl`` source: JSON Lines, one-object-per-file JSON and JSON arrays.

Each JSON object is an article; ``fields`` says which key fills which column (defaults cover
the common exports: news-please, newspaper4k, Dolma...). Files are streamed: JSON Lines one
line at a time, JSON documents (a top-level array, or objects one after the other) one value
at a time, so a file never sits in memory as Python objects. A malformed line is a reject
with its line number and the rest of the file is read; in a multi-line JSON document a
malformed value ends the file (there is no line to resume at), and that is a reject too.

UTF-8 JSON Lines with top-level keys (the common case) take a fast path: the file is read in
chunks of whole lines (:data:`FAST_CHUNK` bytes), each parsed by ``pyarrow.json`` and mapped
to article columns with Arrow kernels. A chunk that is not plainly clean (anything the
per-line path would reject, or read differently) is read by the per-line path instead, so
both give the same rows and the same rejects; see :class:`_FastLines`.
"""

from __future__ import annotations

import codecs
import io
import json
import posixpath
import sys
import urllib.parse
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from etl.builtin.records import (
    NOT_BLANK,
    RecordBatcher,
    RecordSource,
    authors_from_lists,
    authors_from_strings,
    strip_strings,
)
from etl.dates import parse_dates
from etl.decode import sniff_bom
from etl.hookspecs import hookimpl
from etl.inputs import InputError, sniff_compression
from etl.inputs import strip_compression_suffix as _strip_compression
from etl.plugin import Option, WorkUnit
from etl.store import ContentHasher

if TYPE_CHECKING:
    from etl.builtin.records import FieldMap
    from etl.context import Context

DEFAULT_MAX_RECORD_BYTES = 64 * 1024 * 1024
LINE_SUFFIXES = (".jsonl", ".ndjson", ".jsonlines", ".jl")
_CHUNK = 1 << 20
_SNIPPET = 200
#: bytes read at a time by the fast path (a chunk is cut at its last newline)
FAST_CHUNK = 8 << 20
_PIECE = 1 << 20
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


class JsonlSource(RecordSource):
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
        Option(
            "max_record_bytes",
            "int",
            DEFAULT_MAX_RECORD_BYTES,
            min=1,
            help="a longer line or JSON value is rejected, the rest is read",
        ),
    )

    def read(self, unit: WorkUnit, ctx: Context) -> Iterator[pa.RecordBatch]:
        batcher = RecordBatcher(self.fields, ctx, keep_extra=self.opts.keep_extra)
        position = Position()
        try:
            with self.open_input(unit) as stream:
                encoding = self._encoding(stream)
                fmt = self.opts.format
                if fmt == "auto":
                    fmt = sniff_format(stream, encoding, input_name(unit.key))
                if fmt == "jsonl" and self._fast_ok(encoding):
                    fast = _FastLines(self.fields, self.opts.max_record_bytes, ctx, position)
                    hasher = _Hasher.for_input(unit)
                    try:
                        yield from fast.read(stream, batcher, self._lines, hasher)
                    finally:
                        digest = hasher.result() if hasher is not None else None
                        if digest is not None:  # the sink need not read the file again
                            ctx.digests[unit.key] = digest
                else:
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


_BOM = codecs.BOM_UTF8


class _PerLine(Exception):
    """A chunk holds something only the per-line path reads right."""


_LIST = pa.list_(pa.string())
_META = pa.map_(pa.string(), pa.string())


class _FastLines:
    """JSON Lines read in chunks by ``pyarrow.json``, with the per-line path's results.

    A chunk (whole lines) is parsed with an explicit schema of the candidate keys (string;
    an ``authors`` key may be a list of strings or a string, a ``published_at`` key a string
    or an integer: the type that fits is learnt from Arrow's error and kept). It goes to the
    per-line path instead when:

    * a line does not start with ``{`` (blank lines, arrays, scalars, leading spaces), is
      longer than max_record_bytes, or the bytes are not valid UTF-8;
    * it holds what Arrow reads and Python's ``json`` does not: ``Inf``/``-Inf``/``-NaN``,
      two objects on one line, an integer past Python's digit limit, nesting deep enough
      for a RecursionError;
    * Arrow refuses it (malformed JSON, a number or object where a string is expected, a
      lone surrogate escape, a key twice), or reads another number of rows than lines;
    * a row has no text or a blank one, or an ``authors`` string looks like a list.

    What is left is read as the per-line path reads it: the first key with a non-null value,
    strings stripped as ``str.strip()``, empty ones null, dates by :func:`parse_dates`.
    """

    def __init__(self, fields: FieldMap, limit: int, ctx: Context, position: Position) -> None:
        self.limit = limit
        self.ctx = ctx
        self.position = position
        self.columns = {c: list(keys) for c, keys in fields.keys.items()}
        # the types each key may have, in the order they are tried
        choices: dict[str, list[pa.DataType]] = {}
        for column, keys in self.columns.items():
            for key in keys:
                if column == "authors":
                    options = [_LIST, pa.string()]
                elif column == "published_at":
                    options = [pa.string(), pa.int64()]
                else:
                    options = [pa.string()]
                known = choices.get(key)
                choices[key] = options if known is None else [t for t in known if t in options][:1]
        self.choices = {k: v or [pa.string()] for k, v in choices.items()}
        self.types = {k: v[0] for k, v in self.choices.items()}
        self.depth = max(sys.getrecursionlimit() // 4, 16)
        digits = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 0
        self.digit_stride = (digits + 1) // 4 if digits else 0

    # reading

    def read(
        self, stream: Any, batcher: RecordBatcher, lines: Any, hasher: _Hasher | None = None
    ) -> Iterator[pa.RecordBatch]:
        """The batches of the input; ``lines`` is the source's per-line reader; ``hasher``
        (if any) sees every byte read."""
        ctx, position, limit = self.ctx, self.position, self.limit
        carry = b""
        lineno = 0
        while True:
            data, eof, error = _read_chunk(stream, carry, hasher)
            if eof:  # the last line may have no newline
                chunk, carry = data, b""
            else:
                cut = data.rfind(b"\n") + 1
                chunk, carry = memoryview(data)[:cut], data[cut:]
            if error is not None:
                carry = b""  # a line cut short by the error: lost, as on the per-line path
            if chunk:
                batch = self._chunk(chunk, lineno)
                if batch is not None:
                    n_lines = batch.num_rows
                    position.line = lineno + n_lines
                    position.records += n_lines
                    if len(batcher):
                        yield batcher.flush()
                    # pieces of the batch size, the last one taking the rest: a piece
                    # under it would be copied to join the next one (Streamer.joined)
                    size = max(ctx.batch_size, 1)
                    cuts = list(range(0, max(n_lines - size, 0) + 1, size)) or [0]
                    for i, offset in enumerate(cuts):
                        end = cuts[i + 1] if i + 1 < len(cuts) else n_lines
                        yield batch.slice(offset, end - offset)
                else:
                    raw = bytes(chunk)
                    n_lines = raw.count(b"\n") + (not raw.endswith(b"\n"))
                    records = lines(io.BytesIO(raw), "utf-8-sig", ctx, position, lineno)
                    for record, location in records:
                        batcher.add(record, location)
                        if len(batcher) >= ctx.batch_size:
                            yield batcher.flush()
                lineno += n_lines
            if error is not None:
                raise error
            if len(carry) > limit:  # a line longer than allowed, and not over yet
                skipped = len(carry) + _skip_line(stream, hasher)
                carry = b""
                lineno += 1
                position.line = lineno
                position.records += 1
                ctx.reject(
                    "record too large",
                    location=f"line {lineno}",
                    detail=f"{skipped} bytes > max_record_bytes {limit}",
                )
            if eof:
                if hasher is not None:
                    hasher.finish()
                break

    def _chunk(self, chunk: memoryview, lineno: int) -> pa.RecordBatch | None:
        """The article batch of whole lines, or None if they need the per-line path."""
        skip = 3 if lineno == 0 and chunk[:3] == _BOM else 0
        body = chunk[skip:]
        lines = self._screen(body, skip)
        if not lines:
            return None
        table = self._parse(body)
        if table is None or table.num_rows != lines:
            return None  # e.g. two objects on a line, or one over two
        return self._articles(table, lineno)

    def _screen(self, body: memoryview, skip: int) -> int:
        """The number of lines, if Arrow may read them (see the class docstring), else 0.

        Each check is one pass of numpy or RE2 over the bytes (RE2 skips to a pattern's
        first byte with memchr, so a pattern starting with a rare byte costs little).
        """
        arr = np.frombuffer(body, np.uint8)
        n = len(arr)
        if n == 0 or arr[0] != 123:
            return 0
        whole = pa.Array.from_buffers(
            pa.binary(), 1, [None, pa.py_buffer(np.array([0, n], np.int32)), pa.py_buffer(body)]
        )
        # every line starts with "{": no blank lines, arrays, scalars, nulls, leading spaces
        if _matches(whole, "\n[^{]"):
            return 0
        lines = int(np.count_nonzero(arr == 10)) + (arr[-1] != 10)
        if n + skip > self.limit:  # a line may be too long (the mark counts in line 1)
            ends = np.flatnonzero(arr == 10)
            if arr[-1] != 10:
                ends = np.append(ends, n)
            lengths = np.diff(ends, prepend=-1) - 1
            lengths[0] += skip
            if lengths.max() > self.limit:
                return 0
        # two objects on one line (Arrow reads both, Python's json refuses the line), which
        # also any object over two lines needs when the row count equals the line count
        if _matches(whole, r"\}[ \t\r]*\{"):
            return 0
        # Inf, -Inf, -NaN as values: Arrow reads them, Python's json does not
        if _matches(whole, r"Inf[ \t\r\n,}\]]") or _matches(whole, "-NaN"):
            return 0
        # nesting that could reach a RecursionError: "[" and "{" bound the depth of a line
        openers = np.count_nonzero(arr == 123) + np.count_nonzero(arr == 91)
        if openers - lines >= self.depth:  # then count them line by line
            at = np.flatnonzero((arr == 123) | (arr == 91))
            ends = np.flatnonzero(arr == 10)
            per_line = np.diff(np.searchsorted(at, ends), prepend=0)
            last = len(at) - (per_line.sum() if len(per_line) else 0)
            if max(per_line.max(initial=0), last) - 1 >= self.depth:
                return 0
        # an integer longer than Python's digit limit: a run of digits over 4 samples
        if self.digit_stride and n > self.digit_stride * 3:
            sample = arr[:: self.digit_stride]
            digit = (sample >= 48) & (sample <= 57)
            if (digit[:-3] & digit[1:-2] & digit[2:-1] & digit[3:]).any():
                return 0
        # valid UTF-8 (Python's json refuses the line otherwise)
        try:
            whole.view(pa.string()).validate(full=True)
        except pa.ArrowInvalid:
            return 0
        return lines

    def _parse(self, body: memoryview) -> pa.Table | None:
        """Arrow's reading of the lines, or None; learns the keys' types from its errors."""
        import pyarrow.json as pj

        tried: dict[str, set[pa.DataType]] = {}
        read_options = pj.ReadOptions(use_threads=False, block_size=max(len(body) + 1, 1 << 16))
        while True:
            schema = pa.schema([(key, t) for key, t in self.types.items()])
            try:
                return pj.read_json(
                    pa.BufferReader(pa.py_buffer(body)),
                    read_options=read_options,
                    parse_options=pj.ParseOptions(
                        explicit_schema=schema, unexpected_field_behavior="ignore"
                    ),
                )
            except (pa.ArrowException, ValueError) as exc:
                key = self._key_of(str(exc))
                if key is None:
                    return None
                seen = tried.setdefault(key, set())
                seen.add(self.types[key])
                fresh = [t for t in self.choices[key] if t not in seen]
                if not fresh:
                    return None
                self.types[key] = fresh[0]

    def _key_of(self, message: str) -> str | None:
        """The key whose type Arrow found to differ ("Column(/key) changed from ...")."""
        if "changed from" not in message:
            return None
        for key, options in self.choices.items():
            if len(options) > 1 and (
                f"Column(/{key}) changed" in message or f"Column(/{key}/[]) changed" in message
            ):
                return key
        return None

    def _articles(self, table: pa.Table, lineno: int) -> pa.RecordBatch | None:
        n = table.num_rows
        cols = {name: table.column(name).combine_chunks() for name in table.column_names}
        present = {k: a for k, a in cols.items() if a.null_count < len(a)}
        text = self._first(self.columns["text"], present)
        if text is None or text.null_count:
            return None
        if not pc.all(pc.match_substring_regex(text, NOT_BLANK)).as_py():
            return None  # an empty or blank text: a "no text" reject
        strings = {}
        for column in ("title", "uri", "publisher", "language"):
            chosen = self._first(self.columns[column], present)
            strings[column] = None if chosen is None else strip_strings(chosen)
        try:
            authors = self._authors(present)
        except _PerLine:
            return None
        raw_dates = self._dates(present, n)
        if raw_dates is None:
            published, bad = None, []
        else:
            published, bad = parse_dates(raw_dates)
        metadata = _locations(lineno, n, bad, raw_dates)
        return self.ctx.articles(
            text=text,
            title=strings["title"],
            uri=strings["uri"],
            published_at=published,
            publisher=strings["publisher"],
            authors=authors,
            language=strings["language"],
            metadata=metadata,
        )

    @staticmethod
    def _first(keys: list[str], present: dict[str, pa.Array]) -> pa.Array | None:
        """Per row, the value of the first key that has one (all string arrays)."""
        found = [present[k] for k in keys if k in present]
        if not found:
            return None
        return found[0] if len(found) == 1 else pc.coalesce(*found)

    def _authors(self, present: dict[str, pa.Array]) -> pa.Array | None:
        """The authors column (None if no key has a value); raises _PerLine for a "[...]"."""
        keys = [k for k in self.columns["authors"] if k in present]
        if not keys:
            return None
        result = None
        for key in reversed(keys):  # the first key with a value wins, even if it makes null
            raw = present[key]
            names = (
                authors_from_lists(raw) if pa.types.is_list(raw.type) else authors_from_strings(raw)
            )
            if names is None:
                raise _PerLine
            result = names if result is None else pc.if_else(raw.is_valid(), names, result)
        return result

    def _dates(self, present: dict[str, pa.Array], n: int) -> pa.Array | list | None:
        """The raw published_at values: the first key's that has one."""
        found = [present[k] for k in self.columns["published_at"] if k in present]
        if not found:
            return None
        if len(found) == 1:
            return found[0]
        if all(a.type == found[0].type for a in found):
            return pc.coalesce(*found)
        lists = [a.to_pylist() for a in found]
        return [next((v[i] for v in lists if v[i] is not None), None) for i in range(n)]


def _read_chunk(
    stream: Any, carry: bytes, hasher: _Hasher | None = None
) -> tuple[bytes, bool, InputError | None]:
    """``carry`` and about FAST_CHUNK more bytes; whether the input ended; a read error.

    Read in pieces, so that a read error keeps what came before it.
    """
    pieces = [carry] if carry else []
    wanted = FAST_CHUNK
    eof = False
    error = None
    while wanted > 0:
        try:
            piece = stream.read(min(_PIECE, wanted))
        except InputError as exc:
            error = exc
            break
        if not piece:
            eof = True
            break
        if hasher is not None:
            hasher.update(piece)
        pieces.append(piece)
        wanted -= len(piece)
    data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
    return data, eof, error


class _Hasher:
    """The content hash of a plain local file as it is read, for the sink's inputs memory
    (which else reads the file again after the run)."""

    @classmethod
    def for_input(cls, unit: WorkUnit) -> _Hasher | None:
        ref = unit.input
        if ref.size is None or "://" in ref.key:
            return None
        try:
            with open(ref.key, "rb") as f:
                head = f.read(8)
        except OSError:
            return None
        if sniff_compression(head) is not None:
            return None  # the hash is of the file, and the stream is decompressed
        return cls(ref.size)

    def __init__(self, size: int) -> None:
        self.expected = size
        self.size = 0
        self.complete = False
        self.hasher = ContentHasher()

    def update(self, piece: bytes) -> None:
        self.size += len(piece)
        self.hasher.update(piece)

    def finish(self) -> None:
        """The input was read to its end."""
        self.complete = True

    def result(self) -> str | None:
        """The content hash if the whole file, as listed, was read."""
        if self.complete and self.size == self.expected:
            return self.hasher.result()
        return None


def _matches(whole: pa.Array, pattern: str) -> bool:
    return bool(pc.match_substring_regex(whole, pattern)[0].as_py())


def _locations(lineno: int, n: int, bad: list[int], raw_dates: pa.Array | list | None) -> pa.Array:
    """The metadata map of each row: its line, and the raw value of a date not understood."""
    lines = pa.array(np.arange(lineno + 1, lineno + n + 1, dtype=np.int64)).cast(pa.string())
    if not bad:
        items = pc.binary_join_element_wise("line ", lines, "")
        offsets = pa.array(np.arange(n + 1, dtype=np.int32))
        keys = pa.array(["location"] * n, pa.string())
        return pa.MapArray.from_arrays(offsets, keys, items, type=_META)
    raws = raw_dates.to_pylist() if isinstance(raw_dates, pa.Array) else raw_dates
    meta = [[("location", f"line {lineno + i + 1}")] for i in range(n)]
    for i in bad:
        meta[i].append(("published_at_raw", str(raws[i])[:200]))
        meta[i].append(("date_error", "unrecognised date format"))
    return pa.array(meta, _META)


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


@hookimpl
def etl_register_plugins(register):
    register(JsonlSource)
