"""A stranger's plugins get every guarantee the builtins get (issue 14).

The plugins in contract/third_party.py were written from docs/plugins.md alone: a source
whose units are table slices with a fingerprint (no file, no size, no mtime), a transform
that raises on some articles, and a sink with only the documented base methods. Each test
reads the SQLite table and the store's Parquet tables back.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from etl.config import pipeline_from_dict
from etl.run import build_plan, run_plan

PLUGINS = Path(__file__).parent / "contract" / "third_party.py"


def make_table(folder: Path, n: int = 12, boom: tuple[int, ...] = (4,)) -> Path:
    rows = []
    for i in range(n):
        title = f"Story {i}" + (" boom" if i in boom else "")
        body = "" if i == 7 else f"Article number {i} tells of council meeting {i * 7}."
        rows.append({"row": i, "title": title, "uri": f"https://news.test/{i}", "body": body})
    path = folder / "table.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def run(folder: Path, *, word: str = "boom", executor: dict | None = None, **extra) -> dict:
    shutil.copy(PLUGINS, folder / "third_party.py")
    data = {
        "plugins": ["third_party.py"],
        "sources": [{"plugin": "table", "table": "table.json", "rows_per_unit": 3}],
        "transforms": [{"plugin": "explode", "word": word}],
        "sink": {"plugin": "sqlite_table", "path": "news.db"},
        "run": {"batch_size": 4, **extra},
    }
    if executor:
        data["executor"] = executor
    plan = build_plan(pipeline_from_dict(data, base_dir=folder, name="contract"))
    return run_plan(plan)


def table_rows(folder: Path) -> list[tuple]:
    with sqlite3.connect(folder / "news.db") as db:
        return sorted(db.execute("select id, uri, title from articles").fetchall())


def rejects(folder: Path) -> list[dict]:
    files = sorted((folder / "news.db.etl" / "_etl" / "rejects").glob("*.rejects.pq"))
    return [row for f in files for row in pq.read_table(f).to_pylist()]


def test_rejects_counts_and_incremental_rerun(tmp_path):
    make_table(tmp_path)
    first = run(tmp_path)
    # 12 rows in 4 units; row 7 has no body (a data reject); the transform raises on row 4
    # (a code reject: the batch is retried in halves, so only row 4 is rejected)
    assert first["read"] == 11 and first["rejected"] == 1 + 1
    assert first["written"] == 10
    assert first["inputs_to_retry"] == 1  # the unit holding row 4 (a fault in code)
    assert len(table_rows(tmp_path)) == 10
    reasons = sorted(r["reason"] for r in rejects(tmp_path))
    assert reasons.count("no body") == 1
    assert [r for r in rejects(tmp_path) if r["reason"].startswith("transform error")][0][
        "input"
    ] == "https://news.test/4"
    # per input: records = written + duplicates + dropped + rejected
    for row in first["per_input"]:
        assert (
            row["records"] == row["written"] + row["duplicates"] + row["dropped"] + row["rejected"]
        )

    # re-run unchanged: inputs whose records all ended as rows or data rejects are skipped;
    # the ones that met the transform's bug are read again (code faults are never final)
    second = run(tmp_path)
    assert second["inputs_skipped"] == 3 and second["inputs"] == 1
    assert second["written"] == 0 and second["duplicates"] == 2
    assert len(table_rows(tmp_path)) == 10

    # the bug fixed: a plain re-run holds every article, once
    third = run(tmp_path, word="")
    assert len(table_rows(tmp_path)) == 11
    assert third["written"] == 1
    fourth = run(tmp_path, word="")
    assert fourth["inputs"] == 0 and fourth["inputs_skipped"] == 4
    assert len(table_rows(tmp_path)) == 11


def test_changed_slice_is_read_again(tmp_path):
    path = make_table(tmp_path, boom=())
    run(tmp_path)
    rows = json.loads(path.read_text())
    rows[10]["body"] = "A corrected article about the council's budget."
    path.write_text(json.dumps(rows))
    again = run(tmp_path)
    assert again["inputs"] == 1 and again["inputs_skipped"] == 3
    assert again["written"] == 1  # the corrected article; its unchanged neighbours are duplicates


def test_a_raising_transform_rejects_only_the_articles_it_fails_on(tmp_path):
    make_table(tmp_path, n=30, boom=(5, 6, 21))
    summary = run(tmp_path)
    reason = "transform error: ValueError: cannot handle 'boom'"
    assert summary["rejects_by_reason"] == {reason: 3, "no body": 1}
    assert summary["written"] == 26


@pytest.mark.parametrize(
    "executor",
    [
        {"plugin": "processes", "workers": 2, "chunk_size": 1},
        pytest.param({"plugin": "dask", "workers": 2, "chunk_size": 1}, marks=pytest.mark.slow),
    ],
    ids=["processes", "dask"],
)
@pytest.mark.slow
def test_same_rows_under_every_executor(tmp_path, executor):
    local, other = tmp_path / "local", tmp_path / "other"
    for folder in (local, other):
        folder.mkdir()
        make_table(folder)
    a = run(local)
    b = run(other, executor=executor)
    assert table_rows(local) == table_rows(other)
    keys = ("read", "written", "duplicates", "rejected")
    assert {k: a[k] for k in keys} == {k: b[k] for k in keys}
    assert sorted(r["reason"] for r in rejects(local)) == sorted(
        r["reason"] for r in rejects(other)
    )
    # and the re-run skips the same inputs
    assert run(other, executor=executor)["inputs_skipped"] == run(local)["inputs_skipped"]
