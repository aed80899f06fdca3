"""Records (dicts from JSON lines, rows of a CSV file) to article batches.

Shared by the ``jsonl`` and ``csv`` sources: the ``fields`` option (which input key fills
which article column, dotted for nesting), the defaults people's data actually uses, and a
batcher that turns records into Arrow batches of at most ``batch_size`` rows, rejecting the
records without text.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from etl.dates import DATE_ORDERS, DEFAULT_DATE_ORDER, DateNotes, is_missing, parse_dates
from etl.plugin import Option
from etl.sources.files import FileSource
from etl.sources.keycheck import KeyCheck

if TYPE_CHECKING:
    from etl.context import Context
    from etl.plugin import Plugin

#: article columns a record can fill, and the input keys tried for each, in order
DEFAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "text": ("text", "body", "content", "maintext", "article", "article_text", "full_text"),
    "title": ("title", "headline"),
    "uri": ("url", "uri", "link", "canonical_link", "canonical_url", "permalink"),
    "published_at": (
        "published_at",
        "date_publish",
        "publish_date",
        "published",
        "pubDate",
        "datePublished",
        "date",
        "created_at",
        "created",
        "timestamp",
    ),
    "publisher": (
        "publisher",
        "source_domain",
        "site_name",
        "meta_site_name",
        "publication",
    ),
    "authors": ("authors", "author", "byline", "creator", "creators"),
    "language": ("language", "lang", "meta_lang", "locale"),
}
MAPPABLE = tuple(DEFAULT_FIELDS)
_MAX_EXTRA_CHARS = 10_000
_SURROGATE = re.compile("[\ud800-\udfff]")
#: the characters ``str.strip()`` removes (``str.isspace()``), for the same trim on Arrow arrays
STRIP_CHARS = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
#: RE2: a string holding anything but those characters (``bool(s.strip())``)
NOT_BLANK = "[^" + "".join(f"\\x{{{ord(c):x}}}" for c in STRIP_CHARS) + "]"

#: the ``date_order`` option of the record sources (docs/sources.md, "Dates")
DATE_ORDER_OPTION = Option(
    "date_order",
    "str",
    DEFAULT_DATE_ORDER,
    choices=DATE_ORDERS,
    help="numeric dates with the year last (01/02/2023): DMY (1 February), MDY (January 2) "
    "or YMD (year first; such a date is read only when one order makes it valid)",
)


class FieldMap:
    """Which input key fills each article column.

    Args:
        plugin: the plugin whose ``fields`` option this is (for error messages).
        fields: ``{column: key}``; ``key`` may be dotted (``meta.date``), a list of keys to
            try in order, or ``""`` to leave the column empty. Columns not named keep the
            defaults of :data:`DEFAULT_FIELDS`.
    """

    def __init__(self, plugin: Plugin, fields: Mapping[str, Any] | None) -> None:
        self.keys: dict[str, tuple[str, ...]] = dict(DEFAULT_FIELDS)
        for column, value in (fields or {}).items():
            if column not in DEFAULT_FIELDS:
                raise plugin.error(
                    f"fields: '{column}' is not an article column a record can fill; "
                    f"valid: {', '.join(MAPPABLE)}",
                    hint='e.g. fields = { text = "body", published_at = "meta.date" }',
                )
            if isinstance(value, str):
                keys: tuple[str, ...] = (value,) if value else ()
            elif isinstance(value, list) and all(isinstance(v, str) and v for v in value):
                keys = tuple(value)
            else:
                raise plugin.error(
                    f"fields: '{column}' must name an input key (a string, dotted for "
                    f"nesting, or a list of keys to try), got {value!r}",
                    hint=f'e.g. fields = {{ {column} = "{DEFAULT_FIELDS[column][0]}" }}',
                )
            self.keys[column] = keys
        self.explicit = set(fields or {})
        #: the keys as configured (``keys`` of a map resolved against a header keeps only
        #: those the header has), for messages
        self.wanted = dict(self.keys)
        self.paths = {c: [(k, k.split(".")) for k in keys] for c, keys in self.keys.items()}

    def lookup(self, record: Mapping[str, Any], column: str) -> tuple[Any, str | None]:
        """The value for ``column`` in ``record`` and the key it came from (None, None if absent)."""
        for key, parts in self.paths[column]:
            if key in record:
                value = record[key]
            elif len(parts) > 1:
                value = _dig(record, parts)
            else:
                continue
            if value is not None:
                return value, key
        return None, None

    def resolve_header(self, header: Iterable[str]) -> FieldMap:
        """For flat records with a known header (CSV): match default keys case-insensitively."""
        names = list(header)
        lower: dict[str, str] = {}
        for name in names:
            lower.setdefault(name.strip().lower(), name)
        resolved = object.__new__(FieldMap)
        resolved.keys = {}
        for column, keys in self.keys.items():
            found = []
            for key in keys:
                if key in names:
                    found.append(key)
                elif column not in self.explicit and key.lower() in lower:
                    found.append(lower[key.lower()])
            resolved.keys[column] = tuple(found)
        resolved.explicit = self.explicit
        resolved.wanted = self.wanted
        resolved.paths = {c: [(k, [k]) for k in keys] for c, keys in resolved.keys.items()}
        return resolved


def _dig(record: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(record, Mapping):
            record = record.get(part)
        elif isinstance(record, list) and part.isdigit() and int(part) < len(record):
            record = record[int(part)]
        else:
            return None
    return record


def as_string(value: Any) -> str | None:
    """A scalar field as text: strings stripped, numbers printed, {"name": ...} unwrapped."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, Mapping):
        for key in ("name", "title", "@value", "value", "url", "@id"):
            if isinstance(value.get(key), str):
                return as_string(value[key])
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, list):
        for item in value:
            found = as_string(item)
            if found:
                return found
        return None
    return str(value)


def as_authors(value: Any) -> list[str] | None:
    """Authors as a list of names; a stringified list ("['A', 'B']") is read as the list."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            parsed: Any = None
            try:
                parsed = json.loads(text)
            except ValueError:
                try:
                    parsed = ast.literal_eval(text)
                except (ValueError, SyntaxError, MemoryError, RecursionError):
                    parsed = None
            if isinstance(parsed, list):
                return as_authors(parsed)
        if not text or text.lower() in ("none", "null"):
            return None
        return [text]
    if isinstance(value, list):
        names = [as_string(v) for v in value]
        return [n for n in names if n]
    name = as_string(value)
    return [name] if name else None


def strip_strings(values: pa.Array) -> pa.Array:
    """:func:`as_string` over a string array: stripped as ``str.strip()`` does, empty -> null."""
    trimmed = pc.utf8_trim(values, characters=STRIP_CHARS)
    return pc.if_else(pc.equal(pc.binary_length(trimmed), 0), pa.scalar(None, pa.string()), trimmed)


def authors_from_strings(values: pa.Array) -> pa.Array | None:
    """:func:`as_authors` over a string array; None if a value looks like a list ("[...]"),
    which only the per-record function reads."""
    trimmed = pc.utf8_trim(values, characters=STRIP_CHARS)
    listed = pc.and_(pc.starts_with(trimmed, "["), pc.ends_with(trimmed, "]"))
    if pc.any(listed).as_py():
        return None
    drop = pc.or_(
        pc.equal(pc.binary_length(trimmed), 0),
        pc.is_in(pc.utf8_lower(trimmed), value_set=pa.array(["none", "null"])),
    )
    names = pc.if_else(drop, pa.scalar(None, pa.string()), trimmed)
    valid = np.asarray(names.is_valid().to_numpy(zero_copy_only=False))
    offsets = np.zeros(len(names) + 1, np.int32)
    np.cumsum(valid, out=offsets[1:])
    return pa.ListArray.from_arrays(
        pa.array(offsets), names.filter(pa.array(valid)), mask=pa.array(~valid)
    )


def authors_from_lists(lists: pa.Array) -> pa.Array:
    """:func:`as_authors` over a ``list<string>`` array: names stripped, empty ones dropped."""
    flat = pc.list_flatten(lists)
    parents = pc.list_parent_indices(lists)
    trimmed = pc.utf8_trim(flat, characters=STRIP_CHARS)
    keep = pc.fill_null(pc.greater(pc.binary_length(trimmed), 0), False)
    kept_parents = parents.filter(keep).to_numpy()
    counts = np.bincount(kept_parents, minlength=len(lists))
    offsets = np.zeros(len(lists) + 1, np.int32)
    np.cumsum(counts, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), trimmed.filter(keep), mask=lists.is_null())


def extra_value(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _MAX_EXTRA_CHARS else text[:_MAX_EXTRA_CHARS] + "…"


class RecordBatcher:
    """Collects records; :meth:`flush` makes them an article batch.

    Args:
        fields: the field map.
        ctx: the unit's context (rejects, batch building).
        keep_extra: copy the record's other top-level keys into ``metadata`` as strings.
        constants: metadata every row gets (e.g. the input's format).
        date_order: how to read numeric dates with the year last (``DMY``, ``MDY``, ``YMD``).
        check: the source's check of the keys ``fields`` names, fed every record it adds
            until the check is done.
    """

    def __init__(
        self,
        fields: FieldMap,
        ctx: Context,
        *,
        keep_extra: bool = False,
        constants: Mapping[str, str] | None = None,
        date_order: str = DEFAULT_DATE_ORDER,
        check: KeyCheck | None = None,
    ) -> None:
        self.fields = fields
        self.ctx = ctx
        self.keep_extra = keep_extra
        self.constants = list((constants or {}).items())
        self.date_order = date_order
        self.check = check
        self._reset()

    def _reset(self) -> None:
        self.cols: dict[str, list[Any]] = {c: [] for c in MAPPABLE}
        self.meta: list[list[tuple[str, str]]] = []

    def __len__(self) -> int:
        return len(self.meta)

    def add(self, record: Any, location: str) -> bool:
        """Add one record; a record that is not an object or has no text is rejected."""
        if not isinstance(record, Mapping):
            self.ctx.reject(
                "not a JSON object",
                location=location,
                detail=f"a {type(record).__name__}: {str(record)[:200]}",
            )
            return False
        if self.check is not None and not self.check.done:
            self.check.add_keys(record, 1, self.ctx.batch_size, self.ctx.input)
        fields = self.fields
        text, text_key = fields.lookup(record, "text")
        if not isinstance(text, str) or not text.strip():
            wanted = fields.wanted["text"]
            tried = ", ".join(wanted) if wanted else 'none (fields maps text to "")'
            if text is None:
                detail = f"no value under any of: {tried}; keys: {', '.join(map(str, list(record)[:20]))}"
            elif isinstance(text, str):
                detail = f"'{text_key}' is empty"
            else:
                detail = f"'{text_key}' is a {type(text).__name__}, not a string"
            self.ctx.reject("no text", location=location, detail=detail)
            return False
        cols = self.cols
        cols["text"].append(text)
        used = {text_key}
        for column in ("title", "uri", "publisher", "language"):
            value, key = fields.lookup(record, column)
            cols[column].append(as_string(value))
            used.add(key)
        value, key = fields.lookup(record, "authors")
        cols["authors"].append(as_authors(value))
        used.add(key)
        value, key = fields.lookup(record, "published_at")
        cols["published_at"].append(None if is_missing(value) else value)
        used.add(key)
        meta = [("location", location), *self.constants]
        if self.keep_extra:
            for key, value in record.items():
                if key not in used and value is not None:
                    meta.append((str(key), extra_value(value)))
        self.meta.append(meta)
        return True

    def flush(self) -> pa.RecordBatch | None:
        """The collected records as one article batch (None if there are none)."""
        if not self.meta:
            return None
        cols, meta = self.cols, self.meta
        order, notes = self.date_order, DateNotes()
        try:
            published, bad = parse_dates(cols["published_at"], order, notes)
        except UnicodeEncodeError:  # a lone surrogate in a date string: it cannot be one
            notes = DateNotes()
            published, bad = parse_dates([_clean(v) for v in cols["published_at"]], order, notes)
        for i in bad:
            meta[i].append(("published_at_raw", str(cols["published_at"][i])[:200]))
            meta[i].append(("date_error", notes.errors.get(i, "unrecognised date format")))
        count_dates(self.ctx, order, notes)
        try:
            batch = self._build(published)
        except UnicodeEncodeError:
            # lone surrogates ("\ud800" escapes in JSON) are not UTF-8: replace them, keep the rows
            for column in ("text", "title", "uri", "publisher", "language", "authors"):
                cols[column] = [_clean(v) for v in cols[column]]
            self.meta = meta = [[(_clean(k), _clean(v)) for k, v in m] for m in meta]
            batch = self._build(published)
            self.ctx.count(f"{self.ctx.plugin}:unpaired surrogates replaced", len(meta))
        self._reset()
        return batch

    def _build(self, published: pa.Array) -> pa.RecordBatch:
        cols, meta = self.cols, self.meta
        return self.ctx.articles(
            text=pa.array(cols["text"], pa.string()),
            title=pa.array(cols["title"], pa.string()),
            uri=pa.array(cols["uri"], pa.string()),
            published_at=published,
            publisher=pa.array(cols["publisher"], pa.string()),
            authors=pa.array(cols["authors"], pa.list_(pa.string())),
            language=pa.array(cols["language"], pa.string()),
            metadata=pa.array(meta, pa.map_(pa.string(), pa.string())),
        )


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def count_dates(ctx: Context, order: str, notes: DateNotes) -> None:
    """Add the dates read ambiguously or in another order to the run summary's counters."""
    for key, n in notes.counters(order).items():
        ctx.count(key, n)


class RecordSource(FileSource):
    """What the record sources (jsonl, csv) share: the ``fields`` map and a checked
    ``encoding`` option; inputs have no size limit unless ``max_bytes`` is set. The file
    options and one work unit per input file or URL come from :class:`FileSource`."""

    default_max_bytes = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        import codecs

        super().__init__(*args, **kwargs)
        self.fields = FieldMap(self, self.opts.fields)
        # one check per source (and process): the first input with records settles it
        self.key_check = KeyCheck(self, self.fields)
        try:
            codecs.lookup(self.opts.encoding)
        except LookupError:
            raise self.error(
                f"option 'encoding': unknown encoding '{self.opts.encoding}'",
                hint='e.g. encoding = "utf-8"',
            ) from None
