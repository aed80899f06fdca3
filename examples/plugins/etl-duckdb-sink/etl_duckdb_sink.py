"""The ``duckdb`` sink: articles into a table of a DuckDB database (a worked example).

A sink that writes no Parquet and implements only the documented base methods of
:class:`etl.Sink` (no worker-files capability): under the ``processes`` and ``dask``
executors the framework's driver hands it the workers' batches, so the sink needs no
knowledge of workers. It shows how a sink gets exactly-once delivery from an idempotent
commit:

* ``open(run, schema)`` creates a **staging table** named after the run,
  ``_etl_stage_<run id>``, in the same database; ``write(batch)`` appends each batch to it
  (every row it gets: the framework has already dropped ids the table or the run holds).
* ``prepare(summary)`` returns the payload ``commit`` needs: ``{"run_id", "table", "staging",
  "mode", "rows"}`` (plain JSON). The staged rows are durable: DuckDB committed each insert.
* ``commit(payload)`` runs **one DuckDB transaction**: if ``_etl_runs`` has no row for this
  run and table, it moves the staged rows into the table (deleting every row first in
  ``overwrite`` mode) and records the run in ``_etl_runs``; then it drops the staging table.
  A second call with the same payload finds the run recorded and only drops the (already
  dropped) staging table: nothing is written twice. That is what lets the framework call
  ``commit`` again after a crash, on a fresh instance that was never opened.
* ``abort()`` drops the staging table: the table stays as it was. A run that died before
  its commit point never gets an ``abort``: ``open`` drops such leftovers (each staging table
  is listed in ``_etl_staging`` with the table it is for, so a run into another table of
  the same database is left alone).

Readers never see a half run: the rows arrive in the table in one transaction. The
framework keeps the dataset's state (inputs remembered for re-runs, the id index, the
rejects table, run manifests) beside the database, in ``<database>.<table>.etl/_etl/``
(:meth:`DuckdbSink.location`). New columns (a transform added one) are added to the table
at commit; older rows read NULL in them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl import Option, Sink, hookimpl
from etl.errors import MissingDependency

if TYPE_CHECKING:
    import pyarrow as pa

__version__ = "0.1.0"

#: one row per run committed into a table of this database
RUNS_TABLE = "_etl_runs"
RUNS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {RUNS_TABLE} (run_id VARCHAR NOT NULL, target VARCHAR NOT NULL, "
    "mode VARCHAR, rows BIGINT, committed_at TIMESTAMPTZ, PRIMARY KEY (run_id, target))"
)
#: the staging tables in flight, with the table each is for (leftovers are dropped by `open`)
STAGING_TABLE = "_etl_staging"
STAGING_DDL = (
    f"CREATE TABLE IF NOT EXISTS {STAGING_TABLE} (staging VARCHAR PRIMARY KEY, "
    "target VARCHAR NOT NULL, run_id VARCHAR NOT NULL)"
)


def _duckdb():
    try:
        import duckdb
    except ImportError as exc:
        raise MissingDependency("duckdb", "duckdb", "duckdb") from exc
    return duckdb


def _quote(name: str) -> str:
    """An SQL identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def staging_table(run_id: str) -> str:
    """The staging table of a run: ``_etl_stage_<run id>`` (non-word characters as ``_``)."""
    return "_etl_stage_" + re.sub(r"\W", "_", run_id)


class DuckdbSink(Sink):
    """A DuckDB table: each run staged, then committed exactly once in one transaction."""

    name = "duckdb"
    options = (
        Option("database", "path", required=True, help="the DuckDB database file"),
        Option("table", "str", "articles", help="the table to write"),
        Option(
            "mode",
            "str",
            "append",
            help="append, overwrite (replace every row at commit), or error if the table has rows",
            choices=("append", "overwrite", "error"),
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _duckdb()
        if self.opts.table.startswith("_etl"):
            raise self.error(f"table '{self.opts.table}': names starting _etl are the sink's own")
        self.conn: Any = None
        self.run_id: str | None = None
        self.staging: str | None = None

    def location(self) -> str:
        """Where the framework keeps this table's state: beside the database file."""
        return f"{self.opts.database}.{self.opts.table}.etl"

    def _connect(self) -> Any:
        Path(self.opts.database).parent.mkdir(parents=True, exist_ok=True)
        return _duckdb().connect(self.opts.database)

    def _table_exists(self, conn: Any, name: str) -> bool:
        found = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
        ).fetchone()
        return bool(found[0])

    def open(self, run: Any, schema: pa.Schema) -> None:
        """Create this run's staging table, with the run's schema."""
        self.conn = self._connect()
        self.run_id = run.run_id
        self.staging = staging_table(run.run_id)
        table = _quote(self.opts.table)
        if self.opts.mode == "error" and self._table_exists(self.conn, self.opts.table):
            (rows,) = self.conn.execute(f"SELECT count(*) FROM {table}").fetchone()
            if rows:
                self.close()
                raise self.error(
                    f"table '{self.opts.table}' in {self.opts.database} has {rows} rows "
                    "(mode = 'error')",
                    hint="use mode = 'append' or 'overwrite', or another table",
                )
        self._drop_leftovers()
        self.conn.execute(f"DROP TABLE IF EXISTS {_quote(self.staging)}")
        self.conn.execute(STAGING_DDL)
        self.conn.execute(
            f"INSERT OR REPLACE INTO {STAGING_TABLE} VALUES (?, ?, ?)",
            [self.staging, self.opts.table, self.run_id],
        )
        self.conn.register("etl_empty", schema.empty_table())
        try:
            self.conn.execute(f"CREATE TABLE {_quote(self.staging)} AS SELECT * FROM etl_empty")
        finally:
            self.conn.unregister("etl_empty")

    def _drop_leftovers(self) -> None:
        """Drop the staging tables of earlier runs into this table that never committed.

        The framework's writer lock keeps two runs off one table, and a run that crashed
        after its commit point has been recovered (committed) before this one opens: any
        staging table of this table still listed belongs to a run that was rolled back.
        """
        self.conn.execute(STAGING_DDL)
        leftovers = self.conn.execute(
            f"SELECT staging FROM {STAGING_TABLE} WHERE target = ? AND run_id <> ?",
            [self.opts.table, self.run_id],
        ).fetchall()
        for (name,) in leftovers:
            self.conn.execute(f"DROP TABLE IF EXISTS {_quote(name)}")
            self.conn.execute(f"DELETE FROM {STAGING_TABLE} WHERE staging = ?", [name])

    def write(self, batch: pa.RecordBatch) -> None:
        """Append the batch to the staging table (invisible to readers of the table)."""
        import pyarrow as pa

        self.conn.register("etl_batch", pa.Table.from_batches([batch]))
        try:
            self.conn.execute(f"INSERT INTO {_quote(self.staging)} BY NAME SELECT * FROM etl_batch")
        finally:
            self.conn.unregister("etl_batch")

    def prepare(self, summary: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The staged rows are durable already; return what ``commit`` needs.

        ``summary`` (the run's counts) is not needed: ``_etl_runs`` records the rows staged.
        """
        (rows,) = self.conn.execute(f"SELECT count(*) FROM {_quote(self.staging)}").fetchone()
        self.conn.execute("CHECKPOINT")
        return {
            "run_id": self.run_id,
            "table": self.opts.table,
            "staging": self.staging,
            "mode": self.opts.mode,
            "rows": rows,
        }

    def commit(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Move the staged rows into the table once; a repeated call does nothing more.

        Returns ``{"duckdb_table": ..., "duckdb_rows": ...}`` for the run's manifest.
        """
        conn = self.conn if self.conn is not None else self._connect()
        table, staging = payload["table"], payload["staging"]
        try:
            conn.execute(RUNS_DDL)
            conn.execute("BEGIN TRANSACTION")
            try:
                done = conn.execute(
                    f"SELECT count(*) FROM {RUNS_TABLE} WHERE run_id = ? AND target = ?",
                    [payload["run_id"], table],
                ).fetchone()[0]
                if not done:
                    self._move(conn, payload)
                conn.execute(f"DROP TABLE IF EXISTS {_quote(staging)}")
                conn.execute(STAGING_DDL)
                conn.execute(f"DELETE FROM {STAGING_TABLE} WHERE staging = ?", [staging])
                conn.execute("COMMIT")
                return {"duckdb_table": table, "duckdb_rows": payload["rows"]}
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            if conn is not self.conn:
                conn.close()
            self.close()

    def _move(self, conn: Any, payload: dict[str, Any]) -> None:
        table, staging = _quote(payload["table"]), _quote(payload["staging"])
        if not self._table_exists(conn, payload["staging"]):
            raise self.error(
                f"run {payload['run_id']}: its staging table {payload['staging']} is gone and "
                f"the run is not recorded in {RUNS_TABLE}; its rows are lost",
                hint="run the pipeline again",
            )
        if not self._table_exists(conn, payload["table"]):
            conn.execute(f"CREATE TABLE {table} AS SELECT * FROM {staging} LIMIT 0")
        have = {r[0] for r in conn.execute(f"DESCRIBE {table}").fetchall()}
        for name, kind, *_ in conn.execute(f"DESCRIBE {staging}").fetchall():
            if name not in have:  # a column a transform added: older rows read NULL
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {_quote(name)} {kind}")
        if payload["mode"] == "overwrite":
            conn.execute(f"DELETE FROM {table}")
        conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM {staging}")
        conn.execute(
            f"INSERT INTO {RUNS_TABLE} VALUES (?, ?, ?, ?, ?)",
            [
                payload["run_id"],
                payload["table"],
                payload["mode"],
                payload["rows"],
                datetime.now(UTC),
            ],
        )

    def abort(self) -> None:
        """Drop this run's staging table; the table stays as it was."""
        if self.conn is not None and self.staging is not None:
            self.conn.execute(f"DROP TABLE IF EXISTS {_quote(self.staging)}")
            self.conn.execute(f"DELETE FROM {STAGING_TABLE} WHERE staging = ?", [self.staging])
        self.close()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


@hookimpl
def etl_register_plugins(register):
    register(DuckdbSink)
