"""The worked examples of docs/plugins.md, end to end: a SQLite table -> a transform that
raises on some articles -> a DuckDB table, under the local, processes and dask executors.

Both plugins are the installed packages under examples/plugins/ (requirements-dev.txt
installs them editable), so worker processes find them as any installed plugin.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import duckdb
import pytest

from etl.testing import run_pipeline, sample_articles

SqliteSource = pytest.importorskip("etl_sqlite_source").SqliteSource
DuckdbSink = pytest.importorskip("etl_duckdb_sink").DuckdbSink

#: the python transform's function: raises on articles whose title starts with "BAD"
FUNCTIONS = """
import etl


@etl.per_article
def check(article):
    if (article["title"] or "").startswith("BAD"):
        raise ValueError("a bad title")
    return {"title": article["title"]}
"""

EXECUTORS = {
    "local": {"plugin": "local"},
    "processes": {"plugin": "processes", "workers": 2},
    # no address: a LocalCluster of two worker processes on 127.0.0.1
    "dask": {"plugin": "dask", "workers": 2},
}

#: the columns that differ between two runs of the same rows
RUN_COLUMNS = ("run_id", "ingested_at")


def make_news(folder: Path) -> Path:
    """12 rows, rowids 1..12 (three units of 4): two BAD titles, one row without text."""
    db = folder / "news.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE news (title TEXT, body TEXT, published TEXT, publisher TEXT)")
    for i, article in enumerate(sample_articles(12), start=1):
        title = article["title"]
        if i in (3, 10):
            title = f"BAD {title}"
        body = None if i == 7 else article["text"]
        conn.execute(
            "INSERT INTO news VALUES (?, ?, ?, ?)",
            (title, body, article["published_at"], article["publisher"]),
        )
    conn.commit()
    conn.close()
    (folder / "fns.py").write_text(FUNCTIONS)
    return db


def run(db: Path, out: Path, folder: Path, **kwargs):
    """The pipeline run in-process (worker processes find the plugins installed)."""
    return run_pipeline(
        pipeline(db, out), plugins=[SqliteSource, DuckdbSink], tmp_path=folder, **kwargs
    )


def pipeline(db: Path, out: Path) -> dict:
    return {
        "sources": [
            {
                "plugin": "sqlite",
                "database": str(db),
                "table": "news",
                "fields": {"text": "body", "published_at": "published"},
                "rows_per_unit": 4,
            }
        ],
        "transforms": [{"plugin": "python", "function": "fns.py:check"}],
        "sink": {"plugin": "duckdb", "database": str(out), "table": "articles"},
    }


def committed(db: Path) -> list[tuple]:
    """The DuckDB table as readers see it, by id, without the per-run columns."""
    with duckdb.connect(str(db), read_only=True) as conn:
        names = [r[0] for r in conn.execute("DESCRIBE articles").fetchall()]
        keep = ", ".join(f'"{n}"' for n in names if n not in RUN_COLUMNS)
        rows = conn.execute(f"SELECT {keep} FROM articles ORDER BY id").fetchall()
    return [tuple(map(str, row)) for row in rows]


def runs(db: Path) -> int:
    with duckdb.connect(str(db), read_only=True) as conn:
        return conn.execute("SELECT count(*) FROM _etl_runs").fetchone()[0]


def read_inputs(summary: dict) -> list[str]:
    """The units a run read (their key's rowid range)."""
    return sorted(row["input"].rsplit(":", 1)[1] for row in summary["per_input"] if row["read"] > 0)


@pytest.mark.slow
def test_sqlite_to_duckdb_under_every_executor_then_reruns_skip_and_edits_are_read(tmp_path):
    db = make_news(tmp_path)
    tables = {}
    for name, executor in EXECUTORS.items():
        out = tmp_path / f"{name}.duckdb"
        result = run(db, out, tmp_path, executor=executor)
        assert result.plan.executor.name == name
        summary = result.summary
        assert (summary["read"], summary["written"], summary["rejected"]) == (11, 9, 3), name
        assert summary["rejects_by_reason"] == {"python function error": 2, "no text": 1}, name
        rejects = sorted(
            result.rejects.select(["reason", "location", "detail", "article_id"]).to_pylist(),
            key=lambda r: r["reason"],
        )
        assert [r["reason"] for r in rejects] == ["no text", *["python function error"] * 2]
        assert rejects[0]["location"] == "rowid 7"
        for reject in rejects[1:]:
            assert "ValueError: a bad title" in reject["detail"], name
            assert reject["article_id"], name
        tables[name] = committed(out)
    assert len(tables["local"]) == 9
    assert not any("BAD" in str(row) for row in tables["local"])
    assert tables["processes"] == tables["local"]
    assert tables["dask"] == tables["local"]

    # a re-run skips the unit whose fingerprint is the one remembered; the two units whose
    # articles met the transform's exception are read again (a fault in code is never
    # final), and their good articles are duplicates now
    out = tmp_path / "local.duckdb"
    again = run(db, out, tmp_path)
    assert again.summary["inputs_skipped"] == 1
    assert read_inputs(again.summary) == ["rowid=1-4", "rowid=9-12"]
    assert (again.summary["written"], again.summary["duplicates"]) == (0, 6)
    assert committed(out) == tables["local"]

    # one row edited: its unit is read again, and only the edited article is new
    conn = sqlite3.connect(db)
    conn.execute("UPDATE news SET body = body || ' (corrected)' WHERE rowid = 6")
    conn.commit()
    conn.close()
    edited = run(db, out, tmp_path)
    assert edited.summary["inputs_skipped"] == 0
    assert "rowid=5-8" in read_inputs(edited.summary)
    assert edited.summary["written"] == 1
    table = committed(out)
    assert len(table) == 10
    assert sum("(corrected)" in str(row) for row in table) == 1
    assert runs(out) == 3

    # the transform's bug fixed: the articles it rejected arrive, the rest are skipped
    fixed = {**pipeline(db, out), "transforms": []}
    done = run_pipeline(fixed, plugins=[SqliteSource, DuckdbSink], tmp_path=tmp_path)
    assert (done.summary["inputs_skipped"], done.summary["written"]) == (1, 2)
    # 9 + the corrected version of rowid 6 (beside the old one: replacing by key is
    # `mode = "merge"`, not built yet) + the 2 articles the bug had rejected
    assert len(committed(out)) == 12


def test_the_examples_are_installed_plugins(etl_pm):
    from etl.plugins import get_plugin_manager

    pm = get_plugin_manager()
    assert pm.get("source", "sqlite").supplier == "etl-sqlite-source"
    assert pm.get("sink", "duckdb").supplier == "etl-duckdb-sink"


PIPELINE_FILE = """
[[sources]]
plugin = "sqlite"
database = "news.db"
table = "news"
fields = { text = "body", published_at = "published" }
rows_per_unit = 4

[[transforms]]
plugin = "python"
function = "fns.py:check"

[sink]
plugin = "duckdb"
database = "news.duckdb"
table = "articles"
"""


def staging_tables(db: Path) -> list[str]:
    with duckdb.connect(str(db), read_only=True) as conn:
        names = conn.execute("SELECT table_name FROM information_schema.tables").fetchall()
    return [n for (n,) in names if n.startswith("_etl_stage_")]


def visible_rows(db: Path) -> int:
    """Rows a reader sees in the articles table (0 when there is no table yet)."""
    if not db.exists():
        return 0
    with duckdb.connect(str(db), read_only=True) as conn:
        query = "SELECT count(*) FROM information_schema.tables WHERE table_name = 'articles'"
        if not conn.execute(query).fetchone()[0]:
            return 0
        return conn.execute("SELECT count(*) FROM articles").fetchone()[0]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("point", "visible"),
    [
        ("before-commit-point", 0),  # rolled back: the next run starts over
        ("after-commit-point", 0),  # rolled forward: the next run calls commit(payload)
        ("before-manifest", 9),  # the sink committed: commit(payload) again does nothing
    ],
)
def test_a_crash_in_the_commit_leaves_every_row_in_the_duckdb_table_once(tmp_path, point, visible):
    from etl.store.faults import CRASH_ENV, CRASH_EXIT
    from etl.testing import run_cli

    make_news(tmp_path)
    (tmp_path / "p.toml").write_text(PIPELINE_FILE)
    out = tmp_path / "news.duckdb"
    crashed = run_cli("run", "p.toml", cwd=tmp_path, env={CRASH_ENV: point})
    assert crashed.returncode == CRASH_EXIT, crashed.stderr
    assert visible_rows(out) == visible
    proc = run_cli("run", "p.toml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    table = committed(out)
    assert len(table) == 9 and len({row[0] for row in table}) == 9
    assert staging_tables(out) == []
    # rolled back: only the second run committed; else the recovered run and the second
    assert runs(out) == (1 if point == "before-commit-point" else 2)
