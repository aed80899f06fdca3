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


def normalize_newlines(text: pa.Array) -> pa.Array:
    """CRLF and lone CR become LF, on a whole array at once."""
    if not pc.any(pc.match_substring(text, "\r")).as_py():
        return text
    return pc.replace_substring_regex(text, r"\r\n?", "\n")


def word_counts(text: pa.Array) -> pa.Array:
    """Words per article, as ``len(str.split())`` counts them (int64; null text -> null).

    Counts regex matches rather than splitting: pyarrow's utf8_split_whitespace has been seen
    to drop a trailing token on some inputs, and counting allocates no lists.
    """
    return pc.count_substring_regex(text, _WORD).cast(pa.int64())


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
        return pa.array([value] * n, field.type)
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
) -> pa.RecordBatch:
    """Build a batch of ``schema`` from the columns a source has.

    ``text`` is required. ``id``, ``char_count``, ``word_count``, ``source``, ``run_id`` and
    ``ingested_at`` are derived when absent; any other absent column is null. A value may be
    a list, a pyarrow array, or a scalar used for every row.
    """
    if "text" not in columns:
        raise ValueError("make_articles needs a 'text' column")
    text = _column(columns["text"], schema.field("text"), 0)
    text = normalize_newlines(text)
    n = len(text)
    derived: dict[str, Any] = {
        "text": text,
        "id": columns.get("id") if columns.get("id") is not None else article_ids(text),
        "char_count": char_counts(text),
        "word_count": word_counts(text),
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
