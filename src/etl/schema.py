"""The article schema, and the vectorised helpers that fill its derived columns.

Every source fills the core columns (or leaves them null); transforms may add typed columns
that they declare up front with :meth:`etl.Transform.output_schema`.

The ``id`` is the first 32 hex digits (128 bits) of the SHA-256 of the article's text as
UTF-8, after CRLF and lone CR have become LF. It depends on nothing but the text, so the same
article read twice, on any machine and by any source, gets the same id; and it can be
checked in SQL: ``substr(sha256(text), 1, 32) = id`` in DuckDB.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ID_HEX_DIGITS = 32

ARTICLE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("id", pa.string(), nullable=False),
    pa.field("uri", pa.string()),
    pa.field("source", pa.string()),
    pa.field("title", pa.string()),
    pa.field("text", pa.string()),
    pa.field("published_at", pa.timestamp("us", tz="UTC")),
    pa.field("publisher", pa.string()),
    pa.field("authors", pa.list_(pa.string())),
    pa.field("language", pa.string()),
    pa.field("char_count", pa.int64()),
    pa.field("word_count", pa.int64()),
    pa.field("ingested_at", pa.timestamp("us", tz="UTC")),
    pa.field("run_id", pa.string()),
    pa.field("metadata", pa.map_(pa.string(), pa.string())),
)

ARTICLE_SCHEMA = pa.schema(ARTICLE_FIELDS)
CORE_COLUMNS = tuple(f.name for f in ARTICLE_FIELDS)

# The characters Python's str.split() treats as whitespace, so that word_count equals
# len(text.split()) exactly. RE2's \s is ASCII only, hence the explicit class.
_WHITESPACE = (
    r"\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\x{1680}\x{2000}-\x{200a}"
    r"\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
)
_WORD = f"[^{_WHITESPACE}]+"


# byte patterns of the non-ASCII characters in _WHITESPACE, as UTF-8: U+0085, U+00A0 are
# C2 85, C2 A0; U+1680 is E1 9A 80; U+2000-200A, 2028, 2029, 202F are E2 80 xx; U+205F is
# E2 81 9F; U+3000 is E3 80 80
_E2_80_SPACES = np.zeros(256, dtype=bool)
_E2_80_SPACES[[*range(0x80, 0x8B), 0xA8, 0xA9, 0xAF]] = True
_ASCII_SPACES = np.array([9, 10, 11, 12, 13, 28, 29, 30, 31, 32], dtype=np.uint8)


def _plain_strings(text: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    if text.type != pa.string():
        text = text.cast(pa.string())
    return text


def utf8_bytes(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """``(offsets, data)`` of a string array as numpy views, without copying.

    ``offsets`` (int64, length n + 1) are relative to ``data`` (uint8, the UTF-8 bytes of
    all n strings); row i is ``data[offsets[i]:offsets[i + 1]]`` (empty for a null).
    """
    n = len(text)
    buffers = text.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32, count=n + 1, offset=text.offset * 4)
    start, end = int(offsets[0]), int(offsets[-1])
    if end > start:
        data = np.frombuffer(buffers[2], dtype=np.uint8, count=end - start, offset=start)
    else:
        data = np.zeros(0, dtype=np.uint8)
    return offsets.astype(np.int64) - start, data


def normalize_newlines(text: pa.Array) -> pa.Array:
    """CRLF and lone CR become LF, on a whole array at once."""
    text = _plain_strings(text)
    if len(text) == 0 or not (utf8_bytes(text)[1] == 13).any():
        return text
    return pc.replace_substring_regex(text, r"\r\n?", "\n")


def _space_mask(data: np.ndarray, controls: bool = True) -> np.ndarray:
    """True for each byte that belongs to a character ``str.split()`` splits on."""
    space = data <= 32
    low = np.flatnonzero(data < 32) if controls else ()
    if len(low):  # control characters that are not spaces (rare): un-mark them
        space[low[~np.isin(data[low], _ASCII_SPACES)]] = False
    lead = np.flatnonzero(data >= 0xC2)
    if len(lead):
        lead = lead[data[lead] <= 0xE3]
    if len(lead):
        # valid UTF-8: a lead byte C2-E3 is followed by its continuation bytes
        m = len(data)
        two = lead[lead + 1 < m]
        b0, b1 = data[two], data[two + 1]
        two = two[(b0 == 0xC2) & ((b1 == 0x85) | (b1 == 0xA0))]
        three = lead[lead + 2 < m]
        b0, b1, b2 = data[three], data[three + 1], data[three + 2]
        three = three[
            ((b0 == 0xE2) & (b1 == 0x80) & _E2_80_SPACES[b2])
            | ((b0 == 0xE1) & (b1 == 0x9A) & (b2 == 0x80))
            | ((b0 == 0xE2) & (b1 == 0x81) & (b2 == 0x9F))
            | ((b0 == 0xE3) & (b1 == 0x80) & (b2 == 0x80))
        ]
        for k in range(2):
            space[two + k] = True
        for k in range(3):
            space[three + k] = True
    return space


def word_counts(text: pa.Array, *, controls: bool = True) -> pa.Array:
    """Words per article, as ``len(str.split())`` counts them (int64; null text -> null).

    Counted on the UTF-8 bytes with numpy: a word starts at a byte that is not whitespace
    and follows whitespace or the start of the text. (pyarrow's utf8_split_whitespace drops
    a trailing token on some inputs, and a regex count is four times slower.)

    Args:
        text: the strings.
        controls: False when the caller has checked that ``text`` holds no C0 control
            character but tab, LF, FF and CR (all of them spaces): a pass over the bytes less.
    """
    text = _plain_strings(text)
    n = len(text)
    if n == 0:
        return pa.array([], pa.int64())
    offsets, data = utf8_bytes(text)
    counts = np.zeros(n, dtype=np.int64)
    if len(data):
        space = _space_mask(data, controls)
        starts = np.empty(len(data), dtype=bool)
        starts[0] = True
        starts[1:] = space[:-1]
        firsts = offsets[:-1]
        nonempty = firsts < offsets[1:]
        firsts = firsts[nonempty]
        starts[firsts] = True
        starts &= ~space
        counts[nonempty] = np.add.reduceat(starts, firsts, dtype=np.int32)
    result = pa.array(counts, pa.int64())
    if text.null_count:
        result = pc.if_else(pc.is_valid(text), result, pa.scalar(None, pa.int64()))
    return result


def char_counts(text: pa.Array) -> pa.Array:
    """Characters (code points) per article, as ``len(str)`` counts them."""
    return pc.utf8_length(text).cast(pa.int64())


def article_ids(text: pa.Array) -> pa.Array:
    """The content id of each article: SHA-256 of the UTF-8 text, 32 hex digits.

    Hashes straight from the Arrow buffer (no Python strings are built). Text must already
    have normalised newlines; null text gets a null id.
    """
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    if text.type == pa.large_string():
        text = text.cast(pa.string())
    n = len(text)
    if n == 0:
        return pa.array([], pa.string())
    offsets_buf, data_buf = text.buffers()[1], text.buffers()[2]
    offsets = memoryview(offsets_buf).cast("i")[text.offset : text.offset + n + 1]
    data = memoryview(data_buf) if data_buf is not None else memoryview(b"")
    sha = hashlib.sha256
    ids = [sha(data[offsets[i] : offsets[i + 1]]).hexdigest()[:ID_HEX_DIGITS] for i in range(n)]
    result = pa.array(ids, pa.string())
    if text.null_count:
        result = pc.if_else(pc.is_null(text), pa.scalar(None, pa.string()), result)
    return result


def _column(value: Any, field: pa.Field, n: int) -> pa.Array:
    if value is None:
        return pa.nulls(n, field.type)
    if isinstance(value, pa.ChunkedArray):
        value = value.combine_chunks()
    if isinstance(value, pa.Array):
        return value if value.type == field.type else value.cast(field.type)
    if isinstance(value, (str, int, float, datetime)) or (
        isinstance(value, Mapping) and field.name == "metadata"
    ):
        # a constant for every row
        if field.name == "metadata":
            return pa.array([list(value.items())] * n, field.type)
        return pa.repeat(pa.scalar(value, field.type), n)
    if field.name == "metadata":
        value = [list(m.items()) if isinstance(m, Mapping) else m for m in value]
    return pa.array(value, field.type)


def make_articles(
    columns: Mapping[str, Any],
    *,
    source: str,
    run_id: str = "",
    ingested_at: datetime | None = None,
    schema: pa.Schema = ARTICLE_SCHEMA,
    lf_only: bool = False,
) -> pa.RecordBatch:
    """Build a batch of ``schema`` from the columns a source has.

    ``text`` is required. ``id``, ``char_count``, ``word_count``, ``source``, ``run_id`` and
    ``ingested_at`` are derived when absent; any other absent column is null. A value may be
    a list, a pyarrow array, or a scalar used for every row. CRLF and CR in the text become
    LF, unless ``lf_only`` says the text has no CR (a pass over it less).
    """
    if "text" not in columns:
        raise ValueError("make_articles needs a 'text' column")
    text = _column(columns["text"], schema.field("text"), 0)
    if not lf_only:
        text = normalize_newlines(text)
    n = len(text)
    derived: dict[str, Any] = {
        "text": text,
        "id": columns.get("id") if columns.get("id") is not None else article_ids(text),
        "char_count": char_counts(text),
        # a source that counted words already (on the same text) may pass them
        "word_count": columns.get("word_count")
        if columns.get("word_count") is not None
        else word_counts(text),
        "source": source,
        "run_id": run_id,
        "ingested_at": ingested_at or datetime.now(UTC),
    }
    arrays = []
    for field in schema:
        value = derived[field.name] if field.name in derived else columns.get(field.name)
        if field.name in ("source", "run_id") and columns.get(field.name) is not None:
            value = columns[field.name]
        arrays.append(_column(value, field, n))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Reorder and cast ``batch`` to ``schema``; columns it lacks become null."""
    if batch.schema.equals(schema):
        return batch
    n = batch.num_rows
    names = set(batch.schema.names)
    arrays = [
        (batch.column(f.name).cast(f.type) if f.name in names else pa.nulls(n, f.type))
        for f in schema
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def extend_schema(schema: pa.Schema, fields: Sequence[pa.Field]) -> pa.Schema:
    """``schema`` with ``fields`` appended (a field already present is replaced in place)."""
    for field in fields:
        index = schema.get_field_index(field.name)
        schema = schema.set(index, field) if index >= 0 else schema.append(field)
    return schema


def set_column(
    batch: pa.RecordBatch, name: str, values: pa.Array | pa.ChunkedArray | Sequence[Any]
) -> pa.RecordBatch:
    """``batch`` with the column ``name`` set to ``values``: replaced in place when the batch
    has it, appended when not. The field takes the type of ``values`` (a list is made an
    Arrow array first; a chunked array is combined).

    The one way transforms and sources write a column, instead of the
    ``get_field_index`` / ``set_column`` / ``append_column`` dance by hand.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    elif not isinstance(values, pa.Array):
        values = pa.array(values)
    field = pa.field(name, values.type)
    index = batch.schema.get_field_index(name)
    if index >= 0:
        return batch.set_column(index, field, values)
    return batch.append_column(field, values)


def first_seen(ids: list[str], seen: set[str], *, claim: bool = True) -> list[bool] | None:
    """Which ids are new: not in ``seen`` and not earlier in ``ids``; adds them to ``seen``
    (``claim=False``: leaves ``seen`` as it is, a question about it only).

    Returns None when every id is new, found with set operations alone (the common case);
    else one boolean per id, True for the first occurrence of a new id.
    """
    fresh = set(ids)
    if len(fresh) == len(ids) and seen.isdisjoint(fresh):
        if claim:
            seen.update(fresh)
        return None
    here: set[str] = set()
    add = seen.add if claim else here.add
    keep = []
    for article_id in ids:
        if article_id in seen or article_id in here:
            keep.append(False)
        else:
            add(article_id)
            keep.append(True)
    return keep


def schema_difference(expected: pa.Schema, actual: pa.Schema) -> tuple[str, str] | None:
    """The first column in which ``actual`` differs from ``expected``, with a hint; None if none."""
    names = actual.names
    for name in names:
        if names.count(name) > 1:
            return (
                f"column '{name}' appears twice",
                "batches arrive with every declared column already there (null): fill it with "
                f"batch.set_column(batch.schema.get_field_index('{name}'), '{name}', values)",
            )
    for declared in expected:
        if declared.name not in names:
            return (
                f"column '{declared.name}' ({declared.type}) is missing",
                "keep every column of the batch you were given (filter rows, set_column)",
            )
        got = actual.field(declared.name).type
        if got != declared.type:
            return (
                f"column '{declared.name}' is {got}, declared {declared.type}",
                f"cast it (values.cast({_type_expr(declared.type)})) or declare {got} in output_schema",
            )
    for name in names:
        if expected.get_field_index(name) < 0:
            return (
                f"column '{name}' ({actual.field(name).type}) is not declared",
                "declare it in output_schema: return etl.schema.extend_schema(schema, "
                f"[pa.field('{name}', {_type_expr(actual.field(name).type)})])",
            )
    return None


def _type_expr(type_: pa.DataType) -> str:
    text = str(type_)
    if text == "bool":
        return "pa.bool_()"
    return f"pa.{text}()" if text.isidentifier() else f"<{text}>"
