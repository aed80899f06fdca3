"""Counts that mean one thing in the summary, `etl inspect`, `etl runs` and `etl report`."""

from __future__ import annotations

import json

from etl.report import collect
from tests.helpers import run_etl, write_pipeline

TEXT = "Article {} says something of note about the harbour.\n(Xinhua)\n"


def setup(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.txt").write_text(TEXT.format(i))
    return write_pipeline(
        tmp_path / "p.toml",
        '[[sources]]\nplugin = "text"\npaths = ["in"]\n[sink]\nplugin = "parquet"\npath = "out"\n',
    )


def test_articles_read_again_are_not_duplicates_anywhere(tmp_path):
    pipeline = setup(tmp_path)
    out = str(tmp_path / "out")
    assert run_etl("run", str(pipeline)).returncode == 0
    full = run_etl("run", str(pipeline), "--full")
    assert full.returncode == 0, full.stderr
    assert "0 written, 0 duplicates, 3 read again (already in the dataset)" in full.stdout
    # a real duplicate: a new file with the text of a committed article
    (tmp_path / "in" / "copy.txt").write_text(TEXT.format(1))
    dup = run_etl("run", str(pipeline))
    assert "0 written, 1 duplicates, 0 read again" in dup.stdout, dup.stdout
    runs = json.loads(run_etl("runs", out, "--json").stdout)
    assert [(r["duplicates"], r["reread"]) for r in runs] == [(0, 0), (0, 3), (1, 0)]
    inspected = json.loads(run_etl("inspect", out, "--json").stdout)["runs"]
    assert [(r["duplicates"], r["reread"]) for r in inspected] == [(0, 0), (0, 3), (1, 0)]
    report = collect(out)
    assert report["rows"] == 3 and report["duplicates"] == 1  # not 4
    # the two later runs wrote nothing: they changed nothing, so are counted, not listed
    assert [r["duplicates"] for r in report["runs"]] == [0]
    assert report["runs_unchanged"] == 2


def test_runs_that_changed_nothing_say_so(tmp_path):
    pipeline = setup(tmp_path)
    out = str(tmp_path / "out")
    assert run_etl("run", str(pipeline)).returncode == 0
    again = run_etl("run", str(pipeline))
    assert again.returncode == 0
    assert again.stdout.splitlines()[0].endswith(
        "committed (no change: nothing written, replaced or rejected)"
    )
    human = run_etl("inspect", out).stdout
    assert "runs: (1 changed nothing, not listed)" in human
    assert human.count("written 3") == 1
    runs = json.loads(run_etl("runs", out, "--json").stdout)
    assert [r["changed"] for r in runs] == [True, False]
    report = collect(out)
    assert len(report["runs"]) == 1 and report["runs_total"] == 2
    assert report["runs_unchanged"] == 1


def test_an_overwrite_counts_the_corpus_duplicates_as_duplicates(tmp_path):
    pipeline = setup(tmp_path)
    (tmp_path / "in" / "copy.txt").write_text(TEXT.format(0))  # the same article twice
    assert run_etl("run", str(pipeline)).returncode == 0
    again = run_etl("run", str(pipeline), "--set", "sink.mode=overwrite")
    assert again.returncode == 0, again.stderr
    # the overwrite replaced what the dataset held: its one duplicate is the corpus's own
    assert "3 written, 1 duplicates, 0 read again (already in the dataset)" in again.stdout
    out = str(tmp_path / "out")
    runs = json.loads(run_etl("runs", out, "--json").stdout)
    assert [(r["duplicates"], r["reread"]) for r in runs][-1] == (1, 0)
