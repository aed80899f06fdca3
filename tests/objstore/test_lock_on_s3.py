"""The writer lock of a dataset in a bucket (issue 17, items 1-2): an object created by a
conditional PUT (``If-None-Match: *``), renewed by a re-PUT, its lease measured on the
object's LastModified (the server's clock). On a real S3-compatible server (moto)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from etl.errors import RunError
from etl.store import Store
from tests.helpers import run_etl, write_pipeline


def _store(s3) -> Store:
    return Store(s3.url("out"), s3.options())


def test_a_second_writer_is_refused_by_the_conditional_create(s3):
    first, second = _store(s3), _store(s3)
    first.acquire_lock("run-one")
    try:
        assert json.loads(s3.fs().cat_file(f"{s3.bucket}/out/_etl/lock"))["run_id"] == "run-one"
        with pytest.raises(RunError, match="is being written by run run-one"):
            second.acquire_lock("run-two")
        # the refused writer left the holder's lock as it was
        assert json.loads(s3.fs().cat_file(f"{s3.bucket}/out/_etl/lock"))["run_id"] == "run-one"
        first.lock.check()
    finally:
        first.release_lock()
    assert not s3.fs().exists(f"{s3.bucket}/out/_etl/lock")
    second.acquire_lock("run-two")
    second.release_lock()


@pytest.mark.slow
def test_the_holder_renews_its_lease_by_a_re_put(s3, monkeypatch):
    monkeypatch.setenv("ETL_LOCK_LEASE", "2")
    store = _store(s3)
    store.acquire_lock("run-one")
    try:
        time.sleep(3.2)  # longer than the lease: only renewals keep it young
        age = store.lock.age()
        assert age is not None and age < 2, age
        store.lock.check()
    finally:
        store.release_lock()


def _pipeline(tmp_path: Path, s3) -> Path:
    (tmp_path / "in").mkdir()
    for n in range(3):
        (tmp_path / "in" / f"{n}.txt").write_text(f"Article {n} about the harbour and ships.\n")
    return write_pipeline(
        tmp_path / "p.toml",
        f"""
[[sources]]
plugin = "text"
paths = ["{tmp_path / "in"}"]
[sink]
plugin = "parquet"
path = "{s3.url("out")}"
storage_options = {s3.toml()}
""",
    )


def test_another_hosts_lock_is_kept_while_its_lease_runs_then_broken(tmp_path, s3):
    pipe = _pipeline(tmp_path, s3)
    fs = s3.fs()
    holder = {"run_id": "elsewhere", "host": "build-7", "pid": 4242, "started_at": "x"}
    fs.pipe_file(f"{s3.bucket}/out/_etl/lock", json.dumps({**holder, "lease": 60}).encode())
    done = run_etl("run", str(pipe))
    assert done.returncode == 1
    assert "host build-7, pid 4242" in done.stderr and "runs out in" in done.stderr
    assert not fs.glob(f"{s3.bucket}/out/**/*.parquet")

    # a lease of 1 s that nobody renews: the next run waits it out and breaks the lock
    fs.pipe_file(f"{s3.bucket}/out/_etl/lock", json.dumps({**holder, "lease": 1}).encode())
    done = run_etl("run", "--wait", "20", str(pipe))
    assert done.returncode == 0, done.stderr
    assert len(fs.glob(f"{s3.bucket}/out/**/*.parquet")) == 1
    assert not fs.exists(f"{s3.bucket}/out/_etl/lock")


@pytest.mark.slow
def test_recover_runs_inspect_and_unlock_take_a_bucket_url(tmp_path, s3):
    """``etl recover``, ``etl runs``, ``etl rejects``, ``etl inspect``, ``etl report`` and
    ``etl unlock`` open a dataset in a bucket with the environment's credentials (they read
    no pipeline, so no storage_options)."""
    from tests.helpers import run_etl_process
    from tests.objstore.conftest import KEY_ID, SECRET
    from tests.objstore.s3data import aws_environment

    pipe = _pipeline(tmp_path, s3)
    env = aws_environment(s3.endpoint, KEY_ID, SECRET)
    url, fs = s3.url("out"), s3.fs()
    crashed = run_etl_process("run", str(pipe), env={"ETL_CRASH_AT": "after-commit-point"})
    assert crashed.returncode == 77
    assert not fs.glob(f"{s3.bucket}/out/**/*.parquet")

    done = run_etl("recover", url, env=env)
    assert done.returncode == 0, done.stderr
    assert "committed" in done.stdout
    assert len(fs.glob(f"{s3.bucket}/out/**/*.parquet")) == 1
    assert not fs.glob(f"{s3.bucket}/out/_etl/staging/**")
    assert not list(tmp_path.glob("**/s3:")) and not Path("s3:").exists()

    listed = run_etl("runs", "--json", url, env=env)
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 1
    rejects = run_etl("rejects", "--json", url, env=env)
    assert rejects.returncode == 0, rejects.stderr
    inspected = run_etl("inspect", "--json", url, env=env)
    assert inspected.returncode == 0, inspected.stderr
    info = json.loads(inspected.stdout)
    assert (info["rows"], info["files"], len(info["runs"])) == (3, 1, 1)
    assert len(info["sample"]) == 3
    page = tmp_path / "report.html"
    reported = run_etl("report", url, "-o", str(page), env=env)
    assert reported.returncode == 0, reported.stderr
    html = page.read_text(encoding="utf-8")
    assert "Dataset report: out" in html and f"{url} &middot; 3 articles" in html

    holder = {"run_id": "elsewhere", "host": "build-7", "pid": 4242, "started_at": "x"}
    fs.pipe_file(f"{s3.bucket}/out/_etl/lock", json.dumps({**holder, "lease": 60}).encode())
    # a URL with a typo: no dataset there, not an unlocked one (it said "not locked", rc 0)
    typo = run_etl("unlock", url + "s", env=env)
    assert typo.returncode == 2 and f"no dataset at {url}s" in typo.stderr, typo.stderr
    refused = run_etl("unlock", url, env=env)
    assert refused.returncode == 1 and "--force" in refused.stderr
    forced = run_etl("unlock", "--force", url, env=env)
    assert forced.returncode == 0, forced.stderr
    assert not fs.exists(f"{s3.bucket}/out/_etl/lock")
