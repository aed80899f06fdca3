"""`etl runs`, `etl rejects` and rejects in `etl inspect`: a dataset's history without SQL."""

from __future__ import annotations

import getpass
import json
import socket

import duckdb

from tests.helpers import ROOT, read_rejects, run_etl, write_pipeline

SEED = ROOT / "examples" / "seed.toml"


def make_inputs(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.txt").write_text(f"Article {i} says something of note.\n(Xinhua)\n")
    (folder / "empty.txt").write_text("")
    (folder / "blank.txt").write_text("   \n")
    (folder / "bin.txt").write_bytes(b"\x00\x01binary")
    return write_pipeline(
        tmp_path / "p.toml",
        '[[sources]]\nplugin = "text"\npaths = ["in"]\n[sink]\nplugin = "parquet"\npath = "out"\n',
    )


def test_runs_lists_each_run_with_its_counts_and_who_ran_it(tmp_path):
    pipeline = make_inputs(tmp_path)
    assert run_etl("run", str(pipeline)).returncode == 0
    assert run_etl("run", str(pipeline)).returncode == 0  # unchanged inputs: nothing to do
    listed = run_etl("runs", str(tmp_path / "out"), "--json")
    assert listed.returncode == 0, listed.stderr
    first, second = json.loads(listed.stdout)
    assert (first["inputs"], first["read"], first["written"], first["rejected"]) == (6, 3, 3, 3)
    assert first["changed"] and not second["changed"]
    assert first["duration_s"] > 0 and first["started_at"] < second["started_at"]
    assert first["pipeline_file"].endswith("p.toml")
    assert (first["user"], first["host"]) == (getpass.getuser(), socket.gethostname())
    human = run_etl("runs", str(tmp_path / "out")).stdout
    assert first["run_id"] in human and second["run_id"] in human
    assert "3 written" in human and "3 rejected" in human
    assert human.count("(no change)") == 1
    assert f"by {getpass.getuser()}@{socket.gethostname()}" in human
    assert "2 runs, 1 of them changed nothing" in human


def test_rejects_names_each_input_and_filters_by_run_and_reason(tmp_path):
    pipeline = make_inputs(tmp_path)
    assert run_etl("run", str(pipeline)).returncode == 0
    out = str(tmp_path / "out")
    human = run_etl("rejects", out)
    assert human.returncode == 0, human.stderr
    assert "3 rejects: 2 empty file, 1 binary file" in human.stdout
    for name in ("empty.txt", "blank.txt", "bin.txt"):
        assert name in human.stdout
    empty = json.loads(run_etl("rejects", out, "--reason", "empty file", "--json").stdout)
    assert sorted(r["input"].rsplit("/", 1)[-1] for r in empty) == ["blank.txt", "empty.txt"]
    assert {r["plugin"] for r in empty} == {"text"}
    run_id = json.loads(run_etl("runs", out, "--json").stdout)[0]["run_id"]
    by_prefix = json.loads(run_etl("rejects", out, "--run", run_id[:12], "--json").stdout)
    assert len(by_prefix) == 3 == read_rejects(tmp_path / "out").num_rows
    assert json.loads(run_etl("rejects", out, "--run", "last", "--json").stdout) == by_prefix
    unknown = run_etl("rejects", out, "--run", "nope")
    assert unknown.returncode == 2 and "no committed run has that id" in unknown.stderr
    limited = run_etl("rejects", out, "--limit", "1").stdout
    assert "... and 2 more" in limited
    missing = run_etl("rejects", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "no dataset at" in missing.stderr


def test_inspect_counts_rejects_by_reason_with_the_first_inputs(tmp_path):
    pipeline = make_inputs(tmp_path)
    assert run_etl("run", str(pipeline)).returncode == 0
    info = json.loads(run_etl("inspect", str(tmp_path / "out"), "--json").stdout)
    assert info["rejects"] == 3
    by_reason = {e["reason"]: e for e in info["rejects_by_reason"]}
    assert by_reason["empty file"]["count"] == 2 and by_reason["binary file"]["count"] == 1
    assert by_reason["binary file"]["inputs"][0].endswith("bin.txt")
    human = run_etl("inspect", str(tmp_path / "out")).stdout
    assert "2 empty file  (first: " in human and "bin.txt" in human


def test_the_documented_rejects_query_works_on_a_dataset_without_rejects(tmp_path):
    out = tmp_path / "seed"
    assert run_etl("run", str(SEED), "--set", f"sink.path={out}").returncode == 0
    count = duckdb.connect().execute(
        f"select count(*) from read_parquet('{out}/_etl/rejects/*.rejects.pq')"
    )
    assert count.fetchone()[0] == 0
    assert run_etl("rejects", str(out)).stdout.strip() == "no rejects"
