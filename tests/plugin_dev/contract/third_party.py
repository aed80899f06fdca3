"""Plugins written from docs/plugins.md alone, as a stranger would: a source whose units
are slices of a table (not files), a transform that raises on some articles, and a sink
with only the documented base methods (a SQLite table). Loaded as a local plugin file."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pyarrow as pa

from etl import InputRef, Option, Sink, Source, Transform, WorkUnit, hookimpl


class TableSource(Source):
    """Rows of a JSON "table" file, a slice of rows per unit."""

    name = "table"
    options = (
        Option("table", "path", required=True, help="the JSON file: a list of row objects"),
        Option("rows_per_unit", "int", 3, help="rows per work unit"),
    )

    def _rows(self) -> list[dict]:
        return json.loads(Path(self.opts.table).read_text(encoding="utf-8"))

    def units(self):
        rows = self._rows()
        step = self.opts.rows_per_unit
        for start in range(0, len(rows), step):
            part = rows[start : start + step]
            digest = hashlib.sha256(json.dumps(part, sort_keys=True).encode()).hexdigest()
            key = f"table:{Path(self.opts.table).name}#{start}"
            yield WorkUnit(InputRef(key, fingerprint=digest), data=(start, start + step))

    def read(self, unit, ctx):
        start, stop = unit.data
        rows = self._rows()[start:stop]
        good = [r for r in rows if r.get("body")]
        for r in rows:
            if not r.get("body"):
                ctx.reject("no body", location=f"row {r['row']}")
        if good:
            yield ctx.articles(
                text=[r["body"] for r in good],
                title=[r["title"] for r in good],
                uri=[r["uri"] for r in good],
            )


class Explode(Transform):
    """Raises on a batch holding a title with the given word (a bug in user code)."""

    name = "explode"
    options = (Option("word", "str", "", help="raise when a title holds this word"),)

    def process(self, batch, ctx):
        word = self.opts.word
        if word and any(word in (t or "") for t in batch.column("title").to_pylist()):
            raise ValueError(f"cannot handle {word!r}")
        return batch


class SqliteSink(Sink):
    """Articles into a SQLite table, exactly once through an idempotent commit."""

    name = "sqlite_table"
    options = (
        Option("path", "path", required=True, help="the database file"),
        Option("mode", "str", "append", choices=("append", "overwrite", "error")),
    )

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.opts.path)
        db.execute("create table if not exists articles (id text, uri text, title text, body text)")
        db.execute("create table if not exists etl_runs (run_id text primary key)")
        return db

    def open(self, run, schema):
        self.run_id = run.run_id
        self.stage = "stage_" + "".join(c if c.isalnum() else "_" for c in run.run_id)
        with self._connect() as db:
            db.execute(f"drop table if exists {self.stage}")
            db.execute(f"create table {self.stage} (id text, uri text, title text, body text)")

    def write(self, batch: pa.RecordBatch):
        rows = zip(
            *(batch.column(c).to_pylist() for c in ("id", "uri", "title", "text")), strict=True
        )
        with self._connect() as db:
            db.executemany(f"insert into {self.stage} values (?, ?, ?, ?)", list(rows))

    def prepare(self, summary):
        return {"run_id": self.run_id, "stage": self.stage, "overwrite": self.mode() == "overwrite"}

    def commit(self, payload):
        db = self._connect()
        try:
            with db:
                done = db.execute(
                    "select 1 from etl_runs where run_id = ?", (payload["run_id"],)
                ).fetchone()
                if not done:
                    if payload["overwrite"]:
                        db.execute("delete from articles")
                    db.execute(f"insert into articles select * from {payload['stage']}")
                    db.execute("insert into etl_runs values (?)", (payload["run_id"],))
                db.execute(f"drop table if exists {payload['stage']}")
        finally:
            db.close()

    def abort(self):
        with self._connect() as db:
            db.execute(f"drop table if exists {self.stage}")


@hookimpl
def etl_register_plugins(register):
    register(TableSource)
    register(Explode)
    register(SqliteSink)
