"""The `sqlite` source: rowid-range units, fingerprints that notice edits, rejects by rowid."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from etl_sqlite_source import SqliteSource

from etl.errors import ConfigError
from etl.testing import check_options, check_source, read_unit, sample_articles


def make_db(path: Path, n: int = 10, *, table: str = "news", extra: str = "") -> Path:
    """``n`` articles (the samples, repeated with a suffix) in ``table``, rowids 1..n."""
    conn = sqlite3.connect(path)
    conn.execute(
        f"CREATE TABLE {table} (title TEXT, body TEXT, published TEXT, publisher TEXT, "
        f"authors TEXT, updated_at TEXT){extra}"
    )
    for article in sample_articles(n):
        conn.execute(
            f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?, '2024-01-01T00:00:00')",
            (
                article["title"],
                article["text"],
                article["published_at"],
                article["publisher"],
                ", ".join(article["authors"] or []) or None,
            ),
        )
    conn.commit()
    conn.close()
    return path


def options(db: Path, **more) -> dict:
    return {
        "database": str(db),
        "table": "news",
        "fields": {"text": "body", "published_at": "published"},
        "rows_per_unit": 4,
        **more,
    }


def fingerprints(db: Path, **more) -> dict[str, str]:
    source = SqliteSource(options(db, **more))
    return {u.key.rsplit(":", 1)[1]: u.input.fingerprint for u in source.units()}


def execute(db: Path, sql: str, *args) -> None:
    conn = sqlite3.connect(db)
    conn.execute(sql, args)
    conn.commit()
    conn.close()


def test_options_are_well_declared():
    check_options(SqliteSource)


def test_contract_with_units_of_rowid_ranges(tmp_path):
    db = make_db(tmp_path / "news.db")
    result = check_source(SqliteSource, options(db), units=3, tmp_path=tmp_path)
    assert result.counts["written"] == 10
    keys = [u.key for u in result.plan.units]
    assert [k.rsplit(":", 1)[1] for k in keys] == ["rowid=1-4", "rowid=5-8", "rowid=9-12"]
    row = next(r for r in result.rows() if r["title"] == "Storm closes mountain pass")
    assert row["authors"] == ["Sam Reed", "Kim Cho"]
    assert row["published_at"].isoformat() == "2024-02-07T07:05:00+00:00"
    assert row["metadata"] == [("table", "news"), ("rowid", "2")]


def test_read_unit_rejects_rows_without_text_or_with_a_bad_date(tmp_path):
    db = make_db(tmp_path / "news.db", 4)
    execute(db, "UPDATE news SET body = NULL WHERE rowid = 2")
    execute(db, "UPDATE news SET published = 'the day before' WHERE rowid = 3")
    table, rejects = read_unit(SqliteSource(options(db)))
    assert table.num_rows == 2
    assert rejects.column("reason").to_pylist() == ["no text", "unreadable date"]
    assert rejects.column("location").to_pylist() == ["rowid 2", "rowid 3"]
    assert rejects.column("input").to_pylist() == [f"{db}#news:rowid=1-4"] * 2


def test_read_unit_batches_at_the_runs_batch_size(tmp_path):
    db = make_db(tmp_path / "news.db", 4)
    source = SqliteSource(options(db))
    unit = next(iter(source.units()))
    from etl.testing import source_context

    batches = list(source.read(unit, source_context(source, unit, batch_size=3)))
    assert [b.num_rows for b in batches] == [3, 1]


def test_fields_default_to_columns_of_their_own_name(tmp_path):
    db = tmp_path / "plain.db"
    execute(db, "CREATE TABLE t (text TEXT, uri TEXT, language TEXT)")
    execute(db, "INSERT INTO t VALUES ('Hello there.', 'https://x/1', 'en')")
    table, _ = read_unit(SqliteSource({"database": str(db), "table": "t"}))
    assert table.select(["text", "uri", "language"]).to_pylist() == [
        {"text": "Hello there.", "uri": "https://x/1", "language": "en"}
    ]


def test_the_fingerprint_notices_an_edit_in_its_range_only(tmp_path):
    db = make_db(tmp_path / "news.db")
    before = fingerprints(db)
    assert fingerprints(db) == before  # nothing changed: nothing moves
    execute(db, "UPDATE news SET body = body || ' Updated.' WHERE rowid = 6")
    after = fingerprints(db)
    assert [k for k in before if before[k] != after[k]] == ["rowid=5-8"]
    execute(db, "DELETE FROM news WHERE rowid = 1")
    execute(db, "INSERT INTO news (body) VALUES ('A new article.')")  # rowid 11
    again = fingerprints(db)
    assert [k for k in after if after[k] != again[k]] == ["rowid=1-4", "rowid=9-12"]


def test_what_the_fingerprint_cannot_notice_without_a_version_column(tmp_path):
    db = make_db(tmp_path / "news.db")
    before = fingerprints(db)
    # the same length, letter for letter: documented as unnoticed
    execute(db, "UPDATE news SET body = replace(body, 'snow', 'SNOW') WHERE rowid = 2")
    assert fingerprints(db) == before
    # with a version column that the edit bumps, it is noticed
    with_version = fingerprints(db, version_column="updated_at")
    execute(db, "UPDATE news SET updated_at = '2024-03-01T00:00:00' WHERE rowid = 2")
    changed = fingerprints(db, version_column="updated_at")
    assert [k for k in with_version if with_version[k] != changed[k]] == ["rowid=1-4"]


@pytest.mark.parametrize(
    ("more", "message"),
    [
        ({"table": "nope"}, "has no table 'nope'"),
        ({"fields": {"text": "content"}}, "has no column 'content'"),
        ({"fields": {"body": "body"}}, "'body' is not an article field"),
        ({"version_column": "rev"}, "has no column 'rev'"),
        ({"rows_per_unit": 0}, "must be at least 1"),
    ],
)
def test_configuration_errors_name_the_plugin(tmp_path, more, message):
    db = make_db(tmp_path / "news.db", 2)
    with pytest.raises(ConfigError, match=message) as info:
        list(SqliteSource(options(db, **more), section="[[sources]] #1").units())
    assert "plugin 'sqlite' ([[sources]] #1)" in str(info.value)


def test_a_table_without_rowid_is_refused(tmp_path):
    db = tmp_path / "w.db"
    execute(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, text TEXT) WITHOUT ROWID")
    with pytest.raises(ConfigError, match="WITHOUT ROWID"):
        list(SqliteSource({"database": str(db), "table": "t"}).units())
