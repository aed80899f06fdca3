"""Over many runs: a changed pipeline is noticed and ``--reprocess`` redoes it; under
``mode = "merge"`` a new version of an article replaces the old row, crash or no crash."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.compute as pc
import pytest

from etl.dataset import CRASH_EXIT, Dataset
from tests.helpers.reliability import (
    check_merge_replaces_an_edited_article,
    etl,
    etl_process,
    make_corpus,
    manifests,
    merged_dataset,
    one_row_per_uri,
    read_dataset,
    rows_by_id,
)


def filtered_pipeline(path: Path, inputs: list[Path], dataset: Path, words: int) -> Path:
    path.write_text(
        "[[sources]]\n"
        'plugin = "text"\n'
        f"paths = {json.dumps([str(p) for p in inputs])}\n"
        "[[transforms]]\n"
        'plugin = "filter"\n'
        f'where = "word_count >= {words}"\n'
        "[sink]\n"
        'plugin = "parquet"\n'
        f"path = {json.dumps(str(dataset))}\n",
        encoding="utf-8",
    )
    return path


def test_a_changed_filter_is_said_and_reprocess_gives_the_rows_of_a_fresh_run(tmp_path):
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 40)
    dataset = tmp_path / "ds"
    pipeline = filtered_pipeline(tmp_path / "p.toml", [corpus], dataset, 20)
    etl("run", str(pipeline), check=True)
    first = rows_by_id(dataset)

    filtered_pipeline(pipeline, [corpus], dataset, 45)
    proc = etl("run", str(pipeline), check=True)
    assert "0 read, 40 skipped as unchanged" in proc.stdout
    assert "changed since 40 of the skipped inputs" in proc.stdout
    assert "--reprocess" in proc.stderr  # said before reading, in the log
    assert rows_by_id(dataset) == first

    proc = etl("run", str(pipeline), "--reprocess", check=True)
    fresh = tmp_path / "fresh"
    etl("run", str(filtered_pipeline(tmp_path / "f.toml", [corpus], fresh, 45)), check=True)
    assert len(rows_by_id(fresh)) < len(first)
    assert rows_by_id(dataset) == rows_by_id(fresh)
    assert f"replaced  {len(first)} rows" in proc.stdout
    # the index forgot the replaced ids and the memory holds the new pipeline: all quiet
    assert Dataset(dataset).ids() == set(rows_by_id(fresh))
    proc = etl("run", str(pipeline), check=True)
    assert "0 read, 40 skipped" in proc.stdout and "changed since" not in proc.stdout
    assert rows_by_id(dataset) == rows_by_id(fresh)


def test_reprocess_keeps_the_rows_of_inputs_no_longer_listed(tmp_path):
    kept, redone = tmp_path / "kept", tmp_path / "redone"
    make_corpus(kept, 6, seed=1)
    make_corpus(redone, 6, seed=2)
    dataset = tmp_path / "ds"
    pipeline = filtered_pipeline(tmp_path / "p.toml", [kept, redone], dataset, 0)
    etl("run", str(pipeline), check=True)
    before = read_dataset(dataset)
    from_kept = set(before.filter(pc.starts_with(before["uri"], str(kept)))["id"].to_pylist())

    filtered_pipeline(pipeline, [redone], dataset, 10_000)  # drops every article it reads
    etl("run", str(pipeline), "--reprocess", check=True)
    assert set(rows_by_id(dataset)) == from_kept


def test_a_failure_while_reprocessing_hides_no_article(tmp_path):
    """An input whose transform raises this time keeps the rows it gave before."""
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 8)
    dataset = tmp_path / "ds"
    pipeline = filtered_pipeline(tmp_path / "p.toml", [corpus], dataset, 0)
    etl("run", str(pipeline), check=True)
    before = rows_by_id(dataset)
    code = tmp_path / "boom.py"
    code.write_text(
        "import etl\n@etl.per_article\ndef boom(article):\n"
        "    if '(item 3)' in article['text']:\n        raise ValueError('bug')\n"
        "    return article\n"
    )
    text = pipeline.read_text().replace(
        "[sink]", f'[[transforms]]\nplugin = "python"\nfunction = "{code}:boom"\n[sink]'
    )
    pipeline.write_text(text)
    proc = etl("run", str(pipeline), "--reprocess", check=True)
    assert "1 to read again next run" in proc.stdout
    assert rows_by_id(dataset) == before


def test_merge_replaces_the_old_version_of_an_edited_article(tmp_path):
    check_merge_replaces_an_edited_article(tmp_path)


def test_within_one_run_the_first_row_of_a_key_wins(tmp_path):
    feed = tmp_path / "feed.jsonl"
    lines = [
        {"uri": "https://n.example/a", "text": "first version of a"},
        {"uri": "https://n.example/b", "text": "only version of b"},
        {"uri": "https://n.example/a", "text": "second version of a"},
    ]
    feed.write_text("".join(json.dumps(line) + "\n" for line in lines))
    dataset = tmp_path / "ds"
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(
        f'[[sources]]\nplugin = "jsonl"\npaths = ["{feed}"]\n'
        f'[sink]\nplugin = "parquet"\npath = "{dataset}"\nmode = "merge"\n'
    )
    proc = etl("run", str(pipeline), "--json", check=True)
    summary = json.loads(proc.stdout)
    assert (summary["written"], summary["duplicates"]) == (2, 1)
    assert one_row_per_uri(dataset)["https://n.example/a"] == "first version of a"


MERGE_CRASH_POINTS = ["write", "before-commit-point", "after-commit-point", "mid-apply"]


@pytest.mark.slow
@pytest.mark.parametrize("point", [*MERGE_CRASH_POINTS, "before-manifest", "after-manifest"])
def test_a_merge_killed_at_any_point_of_its_commit_leaves_one_row_per_uri(tmp_path, point):
    pipeline, dataset, before, new_texts = merged_dataset(tmp_path, 5)

    proc = etl_process("run", str(pipeline), env={"ETL_CRASH_AT": point})
    assert proc.returncode == CRASH_EXIT, proc.stderr
    rows = one_row_per_uri(dataset)  # readers never see a uri twice
    if point in ("write", "before-commit-point"):
        assert rows == before
    assert set(rows) == set(before)
    etl("run", str(pipeline), check=True)
    rows = one_row_per_uri(dataset)
    assert set(rows) == set(before)
    for path in new_texts:
        assert rows[path].rstrip().endswith("corrected.")
    assert len(Dataset(dataset).ids()) == 12
    assert not list((dataset / "_etl" / "staging").iterdir())
    assert manifests(dataset)[-1]["summary"]["written"] in (0, 5)


def test_merge_and_reprocess_need_a_sink_that_replaces_rows(tmp_path):
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 3)
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(
        f'[[sources]]\nplugin = "text"\npaths = ["{corpus}"]\n'
        f'[sink]\nplugin = "duckdb"\ndatabase = "{tmp_path / "db.duckdb"}"\n'
    )
    proc = etl("run", str(pipeline), "--reprocess")
    assert proc.returncode == 2
    assert "plugin 'duckdb' ([sink]" in proc.stderr and "ReplacesRows" in proc.stderr
    assert not (tmp_path / "db.duckdb").exists()
