"""The ``sqlite`` source: articles from a table of a SQLite database (a worked example).

A source that is not about files. It shows the three things such a source must get right:

* **work units that spread.** The table is cut into ranges of ``rows_per_unit`` rowids
  (``rowid 1-1000``, ``1001-2000``...); each range is one :class:`~etl.WorkUnit`, so the
  ``processes`` and ``dask`` executors read ranges side by side. Ranges are fixed by rowid,
  not by position, so a unit keeps its key from one run to the next as rows are added.
* **a fingerprint per unit**, computed by one aggregate query over the table when the units
  are listed (no article text is sent to Python)::

      rows=<count> last=<max rowid> check=<checksum>

  The checksum is ``sum(crc32(version))`` over the rows of the range when ``version_column``
  names a column that changes with every edit (``updated_at``, a version number), else the
  sum of the lengths of every mapped column (``text``, ``title``...), each weighted by its
  rowid. The framework remembers each unit's fingerprint after a run and the next run skips
  the units whose fingerprint is unchanged.

  What it notices: rows added to or deleted from a range; with ``version_column``, any edit
  that changes that column; without it, any edit that changes the length of a mapped value.
  What it cannot notice: without ``version_column``, an edit that keeps every mapped value's
  length (a typo fixed letter for letter, a date moved by a day); with it, an edit that
  leaves the version column as it was. Use ``etl run --full`` after such edits.
* **bad rows are rejects, never exceptions**: a row without text, or with a date that
  cannot be read, is a reject naming its rowid; the other rows of the range are read.

Reading uses SQLite's own ``rowid`` (tables declared ``WITHOUT ROWID`` are refused), with a
read-only connection per unit, so many workers can read one database file at once.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl import Option, Source, WorkUnit, hookimpl
from etl.dates import parse_date
from etl.plugin import InputRef

if TYPE_CHECKING:
    import pyarrow as pa

    from etl.context import Context

__version__ = "0.1.0"

#: the article fields a column may fill, and the column each defaults to (when the table
#: has a column of that name)
FIELDS = ("text", "title", "uri", "published_at", "publisher", "authors", "language")


def _crc32(value: Any) -> int:
    if value is None:
        return 0
    data = value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogatepass")
    return zlib.crc32(data)


def _quote(name: str) -> str:
    """An SQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


class SqliteSource(Source):
    """Articles from a SQLite table, read in rowid ranges, each fingerprinted for re-runs."""

    name = "sqlite"
    options = (
        Option("database", "path", required=True, help="the SQLite database file"),
        Option("table", "str", required=True, help="the table that holds the articles"),
        Option(
            "fields",
            "dict",
            {},
            help="article field -> column (text, title, uri, published_at, publisher, "
            "authors, language); a field defaults to the column of its own name",
        ),
        Option("rows_per_unit", "int", 1000, help="rowids per work unit (a rowid range)", min=1),
        Option(
            "version_column",
            "str",
            None,
            help="a column that changes with every edit (updated_at, version): the units' "
            "fingerprint sums its crc32; default: the lengths of the mapped columns",
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        unknown = sorted(set(self.opts.fields) - set(FIELDS))
        if unknown:
            raise self.error(
                f"option 'fields': '{unknown[0]}' is not an article field",
                hint=f"fields: {', '.join(FIELDS)}",
            )
        for field, column in self.opts.fields.items():
            if not isinstance(column, str) or not column:
                raise self.error(f"option 'fields': {field} = {column!r} is not a column name")
        self._columns: dict[str, str] | None = None

    # the database

    def _connect(self) -> sqlite3.Connection:
        path = Path(self.opts.database)
        if not path.is_file():
            raise self.error(f"no database at {path}", hint="check the option 'database'")
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        conn.create_function("etl_crc32", 1, _crc32, deterministic=True)
        return conn

    def columns(self, conn: sqlite3.Connection) -> dict[str, str]:
        """Article field -> column, checked against the table (once per instance)."""
        if self._columns is not None:
            return self._columns
        table = self.opts.table
        found = [row[1] for row in conn.execute(f"PRAGMA table_info({_quote(table)})")]
        if not found:
            raise self.error(f"the database has no table '{table}'")
        rowid = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        if rowid and rowid[0] and "WITHOUT ROWID" in rowid[0].upper():
            raise self.error(f"table '{table}' is WITHOUT ROWID: its rows have no rowid range")
        mapping = {f: f for f in FIELDS if f in found}
        mapping.update(self.opts.fields)
        missing = [c for c in mapping.values() if c not in found]
        if missing:
            raise self.error(
                f"table '{table}' has no column '{missing[0]}'", hint=f"columns: {', '.join(found)}"
            )
        if "text" not in mapping:
            raise self.error(
                f"table '{table}' has no 'text' column",
                hint='map one: fields = { text = "body" }',
            )
        version = self.opts.version_column
        if version is not None and version not in found:
            raise self.error(f"option 'version_column': table '{table}' has no column '{version}'")
        self._columns = mapping
        return mapping

    # listing

    def units(self) -> Iterator[WorkUnit]:
        """One unit per non-empty rowid range, with its fingerprint (one aggregate query)."""
        n = self.opts.rows_per_unit
        with closing(self._connect()) as conn:
            columns = self.columns(conn)
            if self.opts.version_column is not None:
                check = f"total(etl_crc32({_quote(self.opts.version_column)}))"
            else:
                lengths = " + ".join(
                    f"coalesce(length({_quote(c)}), -1)" for c in dict.fromkeys(columns.values())
                )
                check = f"total(rowid * ({lengths}))"
            query = (
                f"SELECT (rowid - 1) / {n} AS bucket, count(*), max(rowid), {check} "
                f"FROM {_quote(self.opts.table)} GROUP BY bucket ORDER BY bucket"
            )
            rows = conn.execute(query).fetchall()
        base = f"{self.opts.database}#{self.opts.table}"
        for bucket, count, last, checksum in rows:
            first = bucket * n + 1
            end = first + n - 1
            fingerprint = f"rows={count} last={last} check={int(checksum)}"
            yield WorkUnit(
                InputRef(f"{base}:rowid={first}-{end}", fingerprint=fingerprint),
                data=(first, end),
            )

    # reading

    def read(self, unit: WorkUnit, ctx: Context) -> Iterator[pa.RecordBatch]:
        """The articles of one rowid range, in batches of the run's batch size."""
        first, end = unit.data
        with closing(self._connect()) as conn:
            columns = self.columns(conn)
            fields = list(columns)
            select = ", ".join(_quote(columns[f]) for f in fields)
            cursor = conn.execute(
                f"SELECT rowid, {select} FROM {_quote(self.opts.table)} "
                "WHERE rowid BETWEEN ? AND ? ORDER BY rowid",
                (first, end),
            )
            while rows := cursor.fetchmany(ctx.batch_size):
                batch = self._batch(rows, fields, ctx)
                if batch is not None:
                    yield batch

    def _batch(self, rows: list[tuple], fields: list[str], ctx: Context) -> pa.RecordBatch | None:
        values: dict[str, list[Any]] = {f: [] for f in fields}
        rowids: list[str] = []
        for row in rows:
            rowid, record = row[0], dict(zip(fields, row[1:], strict=True))
            where = f"rowid {rowid}"
            text = record["text"]
            if not isinstance(text, str) or not text.strip():
                ctx.reject("no text", location=where, detail=repr(text)[:200])
                continue
            if "published_at" in record:
                try:
                    record["published_at"] = parse_date(record["published_at"])
                except (ValueError, OverflowError) as exc:
                    ctx.reject("unreadable date", location=where, detail=str(exc))
                    continue
            if "authors" in record:
                record["authors"] = _authors(record["authors"])
            for f in fields:
                value = record[f]
                if f not in ("published_at", "authors") and value is not None:
                    value = str(value)  # a number in a text column (SQLite is lax)
                values[f].append(value)
            rowids.append(str(rowid))
        if not rowids:
            return None
        metadata = [{"table": self.opts.table, "rowid": r} for r in rowids]
        return ctx.articles(**values, metadata=metadata)


def _authors(value: Any) -> list[str] | None:
    """A JSON array of names, or names separated by commas."""
    if value is None:
        return None
    text = str(value).strip()
    if text.startswith("["):
        try:
            names = json.loads(text)
        except ValueError:
            names = None
        if isinstance(names, list):
            return [str(n) for n in names]
    return [name.strip() for name in text.split(",") if name.strip()]


@hookimpl
def etl_register_plugins(register):
    register(SqliteSource)
