"""Failing loudly (issue 15 item 5): a run that rejects everything, or more than
``[run] max_reject_ratio``, fails and commits nothing; a ``fields`` key the input does not
have stops the run at once (exit 2), naming the key and what the input has.

Every run goes through the real CLI (in process); what a run left is read back with
pyarrow, and "as before" is every file of the dataset, byte for byte.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.helpers import read_dataset, read_rejects, run_etl, write_pipeline

HEADER = ["Title", "Article Body", "Date"]
BODY = 'fields = { text = "Article Body" }'


def csv_text(rows: list[list[str]], header: list[str] = HEADER) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header, *rows])
    return buf.getvalue()


def articles(n: int, start: int = 0) -> list[list[str]]:
    return [
        [f"Title {i}", f"The body of article number {i}.", "2023-05-04"]
        for i in range(start, start + n)
    ]


def pipeline(tmp: Path, plugin: str, paths: list[str], options: str = "", run: str = "") -> Path:
    return write_pipeline(
        tmp / "p.toml",
        f"[run]\n{run}\n"
        f'[[sources]]\nplugin = "{plugin}"\npaths = {json.dumps(paths)}\n{options}\n'
        '[sink]\nplugin = "parquet"\npath = "out"\n',
    )


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under ``folder``."""
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


def nothing_committed(dataset: Path) -> bool:
    """No article file, no manifest, no rejects: what a run that never happened leaves."""
    return (
        read_dataset(dataset).num_rows == 0
        and not list(dataset.glob("_etl/runs/*"))
        and not read_rejects(dataset).num_rows
        and not (dataset / "_etl" / "lock").exists()
    )


def committed_run(tmp: Path) -> dict[str, bytes | None]:
    """A first good run of 3 articles from good.csv; the dataset's files after it."""
    (tmp / "good.csv").write_text(csv_text(articles(3)))
    p = pipeline(tmp, "csv", ["good.csv"], BODY)
    proc = run_etl("run", str(p))
    assert proc.returncode == 0, proc.stderr
    assert read_dataset(tmp / "out").num_rows == 3
    return snapshot(tmp / "out")


# a misspelt `fields` key


def test_a_misspelt_csv_fields_key_stops_the_run_naming_the_key_and_the_header(tmp_path):
    """Issue 15: `text = "Artcle Body"` passed, then 300 rows were rejected `no text`, exit 0."""
    (tmp_path / "in.csv").write_text(csv_text(articles(300)))
    p = pipeline(tmp_path, "csv", ["in.csv"], 'fields = { text = "Artcle Body" }')
    proc = run_etl("run", str(p))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    err = proc.stderr
    assert f"plugin 'csv' ([[sources]] #1 in {p.name})" in err, err
    assert "text = 'Artcle Body'" in err and "no such key in the header of" in err, err
    assert "in.csv; its columns: Title, Article Body, Date" in err, err
    assert "did you mean 'Article Body'?" in err, err
    assert "Traceback" not in err
    assert nothing_committed(tmp_path / "out")


def test_a_misspelt_key_on_an_existing_dataset_leaves_it_as_it_was(tmp_path):
    before = committed_run(tmp_path)
    (tmp_path / "more.csv").write_text(csv_text(articles(5, start=10)))
    p = pipeline(tmp_path, "csv", ["more.csv"], 'fields = { text = "Artcle Body" }')
    proc = run_etl("run", str(p))
    assert proc.returncode == 2, proc.stderr
    assert "'Artcle Body'" in proc.stderr
    assert snapshot(tmp_path / "out") == before


def test_csv_columns_option_is_checked_before_the_run(tmp_path):
    (tmp_path / "in.csv").write_text("t,b\n")
    p = pipeline(tmp_path, "csv", ["in.csv"], 'columns = ["t", "b"]\nfields = { text = "body" }')
    proc = run_etl("validate", str(p))  # the header is in the pipeline: validate sees it
    assert proc.returncode == 2, proc.stdout
    assert "text = 'body': no such key in option 'columns'; its columns: t, b" in proc.stderr


@pytest.mark.parametrize("per_line", [False, True], ids=["fast-path", "per-line"])
@pytest.mark.parametrize(
    ("key", "meant"),
    [("text", "bdy"), ("title", "headlin")],  # text: no chunk is clean, all go line by line
)
def test_a_misspelt_jsonl_key_stops_the_run_naming_the_keys_records_have(
    tmp_path, per_line, key, meant
):
    lines = [
        {"body": f"Text {i}", "headline": f"H {i}", "meta": {"date": "2023-01-02"}}
        for i in range(50)
    ]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    extra = "keep_extra = true\n" if per_line else ""  # keep_extra reads line by line
    p = pipeline(tmp_path, "jsonl", ["a.jsonl"], extra + f'fields = {{ {key} = "{meant}" }}')
    proc = run_etl("run", str(p))
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr
    assert f"plugin 'jsonl' ([[sources]] #1 in {p.name})" in err, err
    assert f"{key} = '{meant}': no such key in the first 50 records of" in err, err
    assert "their keys: body, headline, meta" in err, err
    assert f"did you mean '{'body' if key == 'text' else 'headline'}'?" in err, err
    assert nothing_committed(tmp_path / "out")


def test_jsonl_keys_count_if_some_first_record_has_them_and_dotted_by_first_segment(tmp_path):
    """The rule for JSON: a key is there if any record of the first batch has it (records
    may leave out what they lack); ``meta.date`` counts by ``meta``; in a list of keys one
    found is enough."""
    lines = [{"body": "First text"}] + [
        {"body": f"Text {i}", "headline": f"H {i}", "meta": {"when": "x"}} for i in range(3)
    ]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    p = pipeline(
        tmp_path,
        "jsonl",
        ["a.jsonl"],
        'fields = { text = ["summary", "body"], title = "headline", published_at = "meta.date" }',
    )
    proc = run_etl("run", str(p))
    assert proc.returncode == 0, proc.stderr
    assert read_dataset(tmp_path / "out").num_rows == 4
    # the first batch is [run] batch_size records: with 1, "headline" is in none of them
    proc = run_etl("run", str(p), "--set", "run.batch_size=1", "--set", "sink.path=out2")
    assert proc.returncode == 2, proc.stderr
    assert (
        "title = 'headline'; published_at = 'meta.date': no such key in the first record of"
    ) in proc.stderr
    assert "a.jsonl; their keys: body\n" in proc.stderr


def test_the_no_text_detail_names_the_key_that_was_tried(tmp_path):
    """Issue 15: the detail said "no value under any of: (none)" for a CSV key."""
    (tmp_path / "a.csv").write_text(csv_text(articles(3)))
    (tmp_path / "b.csv").write_text(csv_text([["x", "y", "z"]], header=["Title", "Body", "Date"]))
    p = pipeline(tmp_path, "csv", ["a.csv", "b.csv"], BODY)
    proc = run_etl("run", str(p))
    assert proc.returncode == 0, proc.stderr
    (reject,) = read_rejects(tmp_path / "out").to_pylist()
    assert reject["reason"] == "no text"
    assert reject["detail"] == "no value under any of: Article Body; keys: Title, Body, Date"


@pytest.mark.slow
def test_a_misspelt_key_stops_a_run_on_worker_processes_too(tmp_path):
    for i in range(4):
        (tmp_path / f"in{i}.csv").write_text(csv_text(articles(3, start=10 * i)))
    p = pipeline(tmp_path, "csv", [f"in{i}.csv" for i in range(4)], 'fields = { text = "Body" }')
    proc = run_etl(
        "run", str(p), "--set", "executor.plugin=processes", "--set", "executor.workers=2"
    )
    assert proc.returncode == 2, proc.stderr
    assert "text = 'Body': no such key in the header of" in proc.stderr
    assert nothing_committed(tmp_path / "out")


# every record rejected


def test_a_run_that_rejects_every_record_fails_and_commits_nothing(tmp_path):
    (tmp_path / "in.csv").write_text(csv_text([["t", "", "2023-01-01"]] * 300))
    p = pipeline(tmp_path, "csv", ["in.csv"], BODY)
    proc = run_etl("run", str(p))
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    err = proc.stderr
    assert "the run rejected every record it read (300 of 300), from 1 input" in err, err
    assert "nothing was committed" in err
    assert (
        "300 no text, e.g. " in err and "in.csv line 2: no value under any of: Article Body" in err
    )
    assert "max_reject_ratio = 1" in err  # how to keep such a run's rejects for a look
    assert "Traceback" not in err
    assert nothing_committed(tmp_path / "out")


def test_an_all_rejected_run_on_an_existing_dataset_leaves_it_exactly_as_it_was(tmp_path):
    before = committed_run(tmp_path)
    (tmp_path / "bad.jsonl").write_text("not json\n{also not\n")
    (tmp_path / "empty.jsonl").write_text("")
    p = pipeline(tmp_path, "jsonl", ["bad.jsonl", "empty.jsonl"])
    proc = run_etl("run", str(p))
    assert proc.returncode == 1, proc.stderr
    assert "rejected every record it read (3 of 3), from 2 inputs" in proc.stderr
    assert "2 malformed JSON, e.g. " in proc.stderr and "1 empty file" in proc.stderr
    assert snapshot(tmp_path / "out") == before
    assert read_dataset(tmp_path / "out").num_rows == 3
    # not remembered either: the next run reads them again, and fails again
    assert run_etl("run", str(p)).returncode == 1
    # a run that reads no record at all (nothing changed) is no failure
    (tmp_path / "bad.jsonl").write_text('{"text": "Now a good article."}\n')
    (tmp_path / "empty.jsonl").write_text('{"text": "And another one."}\n')
    assert run_etl("run", str(p)).returncode == 0
    again = run_etl("run", str(p), "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["inputs_skipped"] == 2


def test_max_reject_ratio_of_one_commits_an_all_rejected_run_with_its_rejects(tmp_path):
    (tmp_path / "in.csv").write_text(csv_text([["t", "", "2023-01-01"]] * 4))
    p = pipeline(tmp_path, "csv", ["in.csv"], BODY, run="max_reject_ratio = 1")
    proc = run_etl("run", str(p))
    assert proc.returncode == 0, proc.stderr
    assert read_rejects(tmp_path / "out").column("reason").to_pylist() == ["no text"] * 4


# [run] max_reject_ratio


def ten_with_three_bad(tmp: Path) -> None:
    rows = articles(7) + [["t", "", "2023-01-01"]] * 3
    (tmp / "in.csv").write_text(csv_text(rows))


def test_a_run_over_max_reject_ratio_fails_and_commits_nothing(tmp_path):
    before = committed_run(tmp_path)
    ten_with_three_bad(tmp_path)
    p = pipeline(tmp_path, "csv", ["in.csv"], BODY, run="max_reject_ratio = 0.25")
    proc = run_etl("run", str(p))
    assert proc.returncode == 1, proc.stderr
    assert (
        "the run rejected 3 of 10 records (30.0%), more than [run] max_reject_ratio = 0.25 "
        "allows, from 1 input; nothing was committed"
    ) in proc.stderr
    assert "3 no text" in proc.stderr
    assert snapshot(tmp_path / "out") == before


def test_a_run_within_max_reject_ratio_commits(tmp_path):
    ten_with_three_bad(tmp_path)
    p = pipeline(
        tmp_path, "csv", ["in.csv"], BODY, run="max_reject_ratio = 0.3"
    )  # 3/10 is not over
    proc = run_etl("run", str(p), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert (summary["written"], summary["rejected"]) == (7, 3)
    assert read_dataset(tmp_path / "out").num_rows == 7
    manifest = json.loads(next((tmp_path / "out" / "_etl" / "runs").glob("*.json")).read_text())
    assert manifest["pipeline"]["run"]["max_reject_ratio"] == 0.3


def test_duplicates_and_dropped_articles_are_not_rejects(tmp_path):
    """What counts: rejects over all records the inputs gave; a re-run that finds only
    duplicates rejects nothing and passes even with max_reject_ratio = 0."""
    (tmp_path / "a.csv").write_text(csv_text(articles(4)))
    (tmp_path / "b.csv").write_text(csv_text(articles(4)))  # the same articles again
    p = pipeline(tmp_path, "csv", ["a.csv", "b.csv"], BODY, run="max_reject_ratio = 0")
    proc = run_etl("run", str(p), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["duplicates"] == 4


@pytest.mark.parametrize("value", ["1.5", "-0.1", '"half"', "true"])
def test_max_reject_ratio_out_of_range_is_a_pipeline_error(tmp_path, value):
    (tmp_path / "in.csv").write_text(csv_text(articles(1)))
    p = pipeline(tmp_path, "csv", ["in.csv"], run=f"max_reject_ratio = {value}")
    for command in ("validate", "run"):
        proc = run_etl(command, str(p))
        assert proc.returncode == 2, (command, proc.stderr)
        assert "[run] in p.toml: max_reject_ratio must be a number from 0 to 1" in proc.stderr
    assert not (tmp_path / "out").exists()


# option values


@pytest.mark.parametrize("plugin", ["csv", "jsonl", "text"])
def test_max_bytes_minus_one_is_a_pipeline_error(tmp_path, plugin):
    """Issue 15: `max_bytes = -1` was accepted, then every file was rejected "too large"."""
    (tmp_path / "in.x").write_text("x")
    p = pipeline(tmp_path, plugin, ["in.x"], "max_bytes = -1")
    proc = run_etl("run", str(p))
    assert proc.returncode == 2, proc.stderr
    assert (
        f"plugin '{plugin}' ([[sources]] #1 in p.toml): option 'max_bytes' must be at least 1"
        in proc.stderr
    )
    assert not (tmp_path / "out").exists()
