"""The `duckdb` sink: staged per run, committed once in one transaction, idempotently."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from etl_duckdb_sink import RUNS_TABLE, DuckdbSink, staging_table

from etl.errors import ConfigError
from etl.schema import ARTICLE_SCHEMA, extend_schema
from etl.testing import (
    check_options,
    check_sink_roundtrip,
    run_info,
    sample_articles,
    source_context,
)
from etl.testing.articles import articles_batch


def batch_of(articles, schema=ARTICLE_SCHEMA) -> pa.RecordBatch:
    batch = articles_batch(articles, source_context("test"))
    for field in schema:
        if field.name not in batch.schema.names:
            batch = batch.append_column(field, pa.nulls(batch.num_rows, field.type))
    return batch


def read_table(db: Path, sql: str = "SELECT * FROM articles ORDER BY id") -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def tables(db: Path) -> set[str]:
    with duckdb.connect(str(db), read_only=True) as conn:
        query = "SELECT table_name FROM information_schema.tables"
        return {r[0] for r in conn.execute(query).fetchall()}


def staged(tmp_path: Path, articles, **options) -> tuple[DuckdbSink, dict]:
    """A sink opened, written to and prepared (not committed), and its payload."""
    sink = DuckdbSink({"database": str(tmp_path / "news.duckdb"), **options})
    run = run_info(base_dir=tmp_path)
    sink.open(run, ARTICLE_SCHEMA)
    sink.write(batch_of(articles))
    return sink, sink.prepare({"run_id": run.run_id})


def test_options_are_well_declared():
    check_options(DuckdbSink)


def test_location_and_mode_come_from_the_options(tmp_path):
    sink = DuckdbSink({"database": str(tmp_path / "a.duckdb"), "table": "t", "mode": "overwrite"})
    assert sink.location() == f"{tmp_path / 'a.duckdb'}.t.etl"
    assert sink.mode() == "overwrite"


def test_contract_roundtrip(tmp_path):
    def read_back(sink):
        db = Path(sink.opts.database)
        if not db.exists():
            return None
        # not read_only: the sink may hold a connection of its own (before its commit)
        with duckdb.connect(str(db)) as conn:
            query = "SELECT count(*) FROM information_schema.tables WHERE table_name = 'articles'"
            if not conn.execute(query).fetchone()[0]:
                return None
            rows = conn.execute("SELECT id, text FROM articles").fetchall()
        return pa.table({"id": [r[0] for r in rows], "text": [r[1] for r in rows]})

    result = check_sink_roundtrip(
        DuckdbSink, {"database": "news.duckdb"}, read_back, tmp_path=tmp_path
    )
    assert result.table.num_rows == 5


def test_nothing_is_visible_before_commit_and_the_staging_table_is_named_after_the_run(
    tmp_path,
):
    sink, payload = staged(tmp_path, sample_articles(3))
    assert payload["staging"] == staging_table(sink.run_id)
    assert payload == {
        "run_id": sink.run_id,
        "table": "articles",
        "staging": payload["staging"],
        "mode": "append",
        "rows": 3,
    }
    sink.close()
    assert "articles" not in tables(tmp_path / "news.duckdb")
    assert payload["staging"] in tables(tmp_path / "news.duckdb")


def test_commit_twice_with_one_payload_writes_once(tmp_path):
    sink, payload = staged(tmp_path, sample_articles(3))
    sink.commit(payload)
    again = DuckdbSink({"database": str(tmp_path / "news.duckdb")})  # fresh, never opened
    again.commit(payload)
    db = tmp_path / "news.duckdb"
    assert len(read_table(db)) == 3
    runs = read_table(db, f"SELECT run_id, target, mode, rows FROM {RUNS_TABLE}")
    assert runs == [(payload["run_id"], "articles", "append", 3)]
    assert payload["staging"] not in tables(db)


def test_recovery_commits_a_prepared_run_from_a_fresh_instance(tmp_path):
    sink, payload = staged(tmp_path, sample_articles(4))
    sink.close()  # the driver died after prepare: nothing visible yet
    assert "articles" not in tables(tmp_path / "news.duckdb")
    DuckdbSink({"database": str(tmp_path / "news.duckdb")}).commit(payload)
    assert len(read_table(tmp_path / "news.duckdb")) == 4


def test_a_lost_staging_table_of_an_unrecorded_run_is_an_error(tmp_path):
    sink, payload = staged(tmp_path, sample_articles(2))
    sink.abort()
    with pytest.raises(ConfigError, match="staging table .* is gone"):
        DuckdbSink({"database": str(tmp_path / "news.duckdb")}).commit(payload)


def test_abort_drops_the_staging_table_and_keeps_the_table(tmp_path):
    sink, payload = staged(tmp_path, sample_articles(2))
    sink.commit(payload)
    sink, payload = staged(tmp_path, sample_articles(5)[2:])
    sink.abort()
    db = tmp_path / "news.duckdb"
    assert len(read_table(db)) == 2
    assert payload["staging"] not in tables(db)


def test_overwrite_replaces_every_row_and_error_refuses_a_filled_table(tmp_path):
    sink, payload = staged(tmp_path, sample_articles(3))
    sink.commit(payload)
    sink, payload = staged(tmp_path, sample_articles(5)[3:], mode="overwrite")
    sink.commit(payload)
    texts = [r[0] for r in read_table(tmp_path / "news.duckdb", "SELECT text FROM articles")]
    assert sorted(texts) == sorted(a["text"] for a in sample_articles(5)[3:])
    with pytest.raises(ConfigError, match="has 2 rows \\(mode = 'error'\\)"):
        staged(tmp_path, sample_articles(1), mode="error")


def test_a_new_column_is_added_to_the_table(tmp_path):
    sink, payload = staged(tmp_path, sample_articles(2))
    sink.commit(payload)
    schema = extend_schema(ARTICLE_SCHEMA, [pa.field("topic", pa.string())])
    sink = DuckdbSink({"database": str(tmp_path / "news.duckdb")})
    sink.open(run_info(base_dir=tmp_path), schema)
    batch = batch_of(sample_articles(3)[2:], schema)
    batch = batch.set_column(batch.schema.get_field_index("topic"), "topic", pa.array(["food"]))
    sink.write(batch)
    sink.commit(sink.prepare({"run_id": sink.run_id}))
    rows = read_table(tmp_path / "news.duckdb", "SELECT topic FROM articles ORDER BY topic")
    assert rows == [("food",), (None,), (None,)]


def test_the_sinks_own_table_names_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="names starting _etl are the sink's own"):
        DuckdbSink({"database": str(tmp_path / "x.duckdb"), "table": "_etl_runs"})


def test_open_drops_the_staging_tables_of_runs_that_died_before_their_commit(tmp_path):
    db = tmp_path / "news.duckdb"
    dead, _ = staged(tmp_path, sample_articles(2))
    dead.close()  # died before the commit point: never aborted
    other, _ = staged(tmp_path, sample_articles(2), table="other")
    other.close()  # a run into another table: not this table's business
    assert {dead.staging, other.staging} <= tables(db)
    sink, payload = staged(tmp_path, sample_articles(3))
    sink.commit(payload)
    assert {t for t in tables(db) if t.startswith("_etl_stage_")} == {other.staging}
    with duckdb.connect(str(db), read_only=True) as conn:
        listed = conn.execute("SELECT staging, target FROM _etl_staging").fetchall()
    assert listed == [(other.staging, "other")]
