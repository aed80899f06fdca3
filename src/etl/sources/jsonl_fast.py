"""The ``jsonl`` source's fast path: UTF-8 JSON Lines read in chunks of whole lines by
``pyarrow.json`` and mapped to article columns with Arrow kernels (see :class:`_FastLines`).
A chunk that is not plainly clean goes to the per-line path in :mod:`etl.sources.jsonl`.
"""

from __future__ import annotations

import codecs
import io
import json
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from etl.dates import DateNotes, parse_dates
from etl.inputs import InputError, open_local, sniff_compression
from etl.sources.json_stream import Position, _skip_line
from etl.sources.records import (
    NOT_BLANK,
    RecordBatcher,
    authors_from_lists,
    authors_from_strings,
    count_dates,
    strip_strings,
)
from etl.store import ContentHasher

if TYPE_CHECKING:
    from etl.context import Context
    from etl.plugin import WorkUnit
    from etl.sources.keycheck import KeyCheck
    from etl.sources.records import FieldMap

#: bytes of whole lines parsed at once by the fast path
FAST_CHUNK = 8 << 20
_PIECE = 1 << 20


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

    def __init__(
        self,
        fields: FieldMap,
        limit: int,
        ctx: Context,
        position: Position,
        date_order: str = "DMY",
    ) -> None:
        self.limit = limit
        self.ctx = ctx
        self.position = position
        self.date_order = date_order
        self.check: KeyCheck | None = None
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
        self,
        stream: Any,
        batcher: RecordBatcher,
        lines: Any,
        hasher: _Hasher | None = None,
        first_line: int = 0,
    ) -> Iterator[pa.RecordBatch]:
        """The batches of the input; ``lines`` is the source's per-line reader; ``hasher``
        (if any) sees every byte read; ``first_line``: lines before the stream's first
        (a part of a split input), so rows and rejects name the input's own lines."""
        ctx, position, limit = self.ctx, self.position, self.limit
        self.check = batcher.check
        carry = b""
        lineno = first_line
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
        batch = self._articles(table, lineno)
        # only a chunk read here: one that goes to the per-line path is checked there
        if batch is not None and self.check is not None and not self.check.done:
            self._check_keys(table, body)
        return batch

    def _check_keys(self, table: pa.Table, body: memoryview) -> None:
        """Feed the source's key check the first rows of a clean chunk: the keys with a
        value are in the table; a key without one (null, or absent: Arrow cannot tell)
        is looked up in those lines themselves."""
        check = self.check
        n = min(table.num_rows, max(self.ctx.batch_size - check.records, 1))
        head = table.slice(0, n)
        check.seen.update(c for c in head.column_names if head.column(c).null_count < n)
        if check.unseen():
            for line in bytes(body).split(b"\n", n)[:n]:
                check.seen.update(json.loads(line))  # a clean chunk: every line parses
        check.add_keys((), n, self.ctx.batch_size, self.ctx.input)

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
        notes = DateNotes()
        if raw_dates is None:
            published, bad = None, []
        else:
            published, bad = parse_dates(raw_dates, self.date_order, notes)
            count_dates(self.ctx, self.date_order, notes)
        metadata = _locations(lineno, n, bad, raw_dates, notes.errors)
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
            with open_local(ref.key) as f:
                head = f.read(8)
        except (OSError, InputError):
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


def _locations(
    lineno: int,
    n: int,
    bad: list[int],
    raw_dates: pa.Array | list | None,
    errors: dict[int, str] | None = None,
) -> pa.Array:
    """The metadata map of each row: its line, and the raw value of a date not understood
    (and why, ``errors`` by row, else an unrecognised format)."""
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
        meta[i].append(("date_error", (errors or {}).get(i, "unrecognised date format")))
    return pa.array(meta, _META)
