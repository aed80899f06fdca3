"""A dataset never touches files that are not its own: no other dataset nested in it or
around it, no path of a (planted) commit record outside it (issue 16, cases 2 and 3)."""

from __future__ import annotations

import json

import pytest

from tests.helpers.reliability import etl, make_corpus, rows_by_id, write_pipeline


@pytest.mark.parametrize("order", ["inner first", "outer first"])
def test_a_dataset_inside_another_is_refused_and_overwrite_spares_it(tmp_path, order):
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 4)
    outer, inner = tmp_path / "data", tmp_path / "data" / "other"
    first, second = (inner, outer) if order == "inner first" else (outer, inner)
    etl("run", str(write_pipeline(tmp_path / "a.toml", str(corpus), first)), check=True)
    kept = rows_by_id(first)
    pipeline = write_pipeline(tmp_path / "b.toml", str(corpus), second, sink='mode = "overwrite"')
    proc = etl("run", str(pipeline))
    assert proc.returncode == 2, proc.stderr
    assert "plugin 'parquet' ([sink]" in proc.stderr
    assert "another dataset" in proc.stderr or "lies inside the dataset" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert rows_by_id(first) == kept  # not a file of it touched


def test_recover_refuses_a_commit_record_naming_a_file_outside_the_dataset(tmp_path):
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 3)
    dataset = tmp_path / "ds"
    etl("run", str(write_pipeline(tmp_path / "p.toml", str(corpus), dataset)), check=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("not yours")
    staging = dataset / "_etl" / "staging" / "20990101T000000000000Z-planted"
    staging.mkdir(parents=True)
    for key, record in {
        "rejects": {"rejects": str(victim), "manifest": {"run_id": "x"}},
        "renames": {"renames": [[str(victim), "stolen.parquet"]], "manifest": {}},
        "deletes": {"deletes": ["../victim.txt"], "manifest": {}},
    }.items():
        (staging / "COMMIT.json").write_text(json.dumps(record))
        proc = etl("recover", str(dataset))
        assert proc.returncode != 0, key
        assert "outside" in proc.stderr or "inside" in proc.stderr, proc.stderr
        assert victim.read_text() == "not yours", key
        assert not (dataset / "stolen.parquet").exists()


@pytest.mark.slow
def test_inspect_and_report_read_one_committed_state_while_overwrites_commit(tmp_path):
    """Issue 16 case 1: `etl inspect` and `etl report` read during overwrite commits saw a
    part of the rows and crashed on vanished files; they read one committed state now."""
    import subprocess
    import sys

    from etl.describe import inspect_dataset
    from etl.report import collect

    corpus = tmp_path / "corpus"
    make_corpus(corpus, 120)
    dataset = tmp_path / "ds"
    pipeline = write_pipeline(
        tmp_path / "p.toml",
        str(corpus),
        dataset,
        sink='mode = "overwrite"\nmax_rows_per_file = 10',
    )
    etl("run", str(pipeline), check=True)
    loop = "; ".join([f"{sys.executable} -m etl.cli run -q {pipeline} || exit 1"] * 4)
    writer = subprocess.Popen(["sh", "-c", loop])
    seen = []
    try:
        while writer.poll() is None:
            seen.append(inspect_dataset(dataset, sample=0)["rows"])
            seen.append(collect(dataset)["rows"])
    finally:
        writer.wait()
    assert writer.returncode == 0
    assert len(seen) > 4 and set(seen) == {120}


@pytest.mark.slow
@pytest.mark.parametrize("point", ["after-commit-point", "before-commit-point"])
def test_ctrl_c_during_the_commit_says_what_was_committed(tmp_path, point):
    """Issue 16 case 4: SIGINT once COMMIT.json existed said "nothing was committed"."""
    import os
    import signal
    import subprocess
    import sys
    import time

    corpus = tmp_path / "corpus"
    make_corpus(corpus, 6)
    dataset = tmp_path / "ds"
    pipeline = write_pipeline(tmp_path / "p.toml", str(corpus), dataset)
    proc = subprocess.Popen(
        [sys.executable, "-m", "etl.cli", "run", str(pipeline)],
        env={**os.environ, "ETL_SLOW_AT": f"{point}:30"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    staging = dataset / "_etl" / "staging"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        staged = list(staging.glob("*/COMMIT.json")) + list(staging.glob("*/data/*.staged"))
        ready = list(staging.glob("*/COMMIT.json")) if point == "after-commit-point" else staged
        if ready:
            break
        time.sleep(0.05)
    time.sleep(0.3)  # inside the slow point
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    if point == "after-commit-point":
        assert "the run was committed" in err and "nothing was committed" not in err
        assert len(rows_by_id(dataset)) == 6
    else:
        assert "nothing was committed" in err
        assert rows_by_id(dataset) == {}
    assert not list(staging.iterdir()) and not (dataset / "_etl" / "lock").exists()
