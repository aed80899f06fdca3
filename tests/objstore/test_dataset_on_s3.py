"""A dataset that lives in an object store (issue 17, item 1): the parquet sink and the store
on a real S3-compatible server on 127.0.0.1 (moto), and on fsspec's ``memory://``.

Every test compares what is in the bucket with a local run of the same inputs: the feature
broken (the URL refused, or written to a local ``s3:/`` folder) fails each of them.
"""

from __future__ import annotations

import pytest

from tests.helpers import read_dataset, run_etl
from tests.objstore.conftest import KEY_ID, SECRET
from tests.objstore.s3data import (
    ARTICLES,
    duckdb_on,
    everything_in_the_bucket,
    make_inputs,
    pipeline,
    read_bucket,
    s3_pipeline,
    same_rows,
)


@pytest.mark.slow
def test_a_dataset_in_a_bucket_equals_a_local_run_and_a_rerun_adds_nothing(tmp_path, s3):
    inputs = make_inputs(tmp_path / "in")
    remote = s3_pipeline(tmp_path / "s3.toml", inputs, s3)
    local = pipeline(tmp_path / "local.toml", inputs, str(tmp_path / "local"))

    done = run_etl("-vv", "--log-format", "json", "run", str(remote))
    assert done.returncode == 0, done.stderr
    assert run_etl("run", str(local)).returncode == 0
    assert not list(tmp_path.glob("**/s3:")), "a local folder named after the URL"

    got = read_bucket(s3)
    assert got.num_rows == len(ARTICLES) - 1
    same_rows(got, read_dataset(tmp_path / "local"))
    fs = s3.fs()
    assert len(fs.glob(f"{s3.bucket}/out/_etl/runs/*.json")) == 1
    assert fs.glob(f"{s3.bucket}/out/_etl/rejects/*.rejects.pq")
    assert not fs.exists(f"{s3.bucket}/out/_etl/lock"), "the lock is released"
    assert not fs.glob(f"{s3.bucket}/out/_etl/staging/**"), "staging is cleaned up"

    # a re-run: every input unchanged, nothing added (the inputs memory is in the bucket)
    again = run_etl("run", str(remote))
    assert again.returncode == 0, again.stderr
    assert "1 read" not in again.stdout and "0 written" in again.stdout
    files = fs.glob(f"{s3.bucket}/out/**/*.parquet")
    # --full reads them again: each article is then already in the dataset (the id index)
    full = run_etl("run", "--full", str(remote))
    assert full.returncode == 0, full.stderr
    assert "0 written" in full.stdout
    assert fs.glob(f"{s3.bucket}/out/**/*.parquet") == files
    same_rows(read_bucket(s3), read_dataset(tmp_path / "local"))

    # new inputs: only they are added
    more = [f"A later article {n} about the new bridge and its {n} lanes.\n" for n in range(3)]
    make_inputs(tmp_path / "in", ARTICLES + more)
    assert run_etl("run", str(remote)).returncode == 0
    assert run_etl("run", str(local)).returncode == 0
    got = read_bucket(s3)
    assert got.num_rows == len(ARTICLES) - 1 + len(more)
    same_rows(got, read_dataset(tmp_path / "local"))

    # the secret (from ${ENV}) and the key id (written in the file) are in no object, no log
    written = everything_in_the_bucket(s3) + done.stdout + done.stderr
    assert SECRET not in written and KEY_ID not in written


def test_duckdb_and_polars_read_the_dataset_from_the_bucket(tmp_path, s3):
    pytest.importorskip("duckdb")
    pl = pytest.importorskip("polars")
    inputs = make_inputs(tmp_path / "in")
    remote = s3_pipeline(tmp_path / "s3.toml", inputs, s3, 'partition_by = ["source"]')
    assert run_etl("run", str(remote)).returncode == 0
    want = sorted(t.strip() for t in set(ARTICLES))

    # Polars, straight from the bucket (its own object-store client)
    frame = pl.scan_parquet(
        f"s3://{s3.bucket}/out/**/*.parquet",
        hive_partitioning=True,
        storage_options=s3.polars_options(),
    ).collect()
    assert sorted(t.strip() for t in frame["text"].to_list()) == want

    rows = (
        duckdb_on(s3)
        .execute(
            f"SELECT text, source FROM read_parquet('s3://{s3.bucket}/out/**/*.parquet', "
            "hive_partitioning = true)"
        )
        .fetchall()
    )
    assert sorted(r[0].strip() for r in rows) == want
    assert len({r[0] for r in rows}) == len(rows)


def test_a_memory_url_holds_a_dataset(tmp_path):
    import fsspec
    import pyarrow.dataset as pads
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    inputs = make_inputs(tmp_path / "in")
    fs = fsspec.filesystem("memory")
    url = f"memory://etl-test-{tmp_path.name}/out"
    remote = pipeline(tmp_path / "mem.toml", inputs, url)
    local = pipeline(tmp_path / "local.toml", inputs, str(tmp_path / "local"))
    try:
        done = run_etl("run", str(remote))
        assert done.returncode == 0, done.stderr
        assert run_etl("run", str(local)).returncode == 0
        root = url.removeprefix("memory:/")
        files = sorted(fs.glob(f"{root}/**/*.parquet"))
        got = pads.dataset(files, filesystem=PyFileSystem(FSSpecHandler(fs))).to_table()
        same_rows(got, read_dataset(tmp_path / "local"))
        assert fs.glob(f"{root}/_etl/runs/*.json") and fs.exists(f"{root}/_etl/inputs.pq")
        again = run_etl("run", str(remote))
        assert again.returncode == 0 and "0 written" in again.stdout
        assert sorted(fs.glob(f"{root}/**/*.parquet")) == files
    finally:
        fs.rm(url.removeprefix("memory:/").split("/")[1], recursive=True)


def test_validate_checks_the_bucket(tmp_path, s3):
    inputs = make_inputs(tmp_path / "in")
    good = s3_pipeline(tmp_path / "s3.toml", inputs, s3)
    proc = run_etl("validate", str(good))
    assert proc.returncode == 0, proc.stderr
    assert s3.fs().find(s3.bucket) == [], "validate writes nothing (its probe is removed)"
    missing = pipeline(
        tmp_path / "nobucket.toml",
        inputs,
        f"s3://no-such-bucket-{s3.bucket}/out",
        f"storage_options = {s3.toml()}",
    )
    for args in (["validate", str(missing)], ["run", "--dry-run", str(missing)]):
        proc = run_etl(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "cannot write the dataset s3://no-such-bucket" in proc.stderr
        assert SECRET not in proc.stderr + proc.stdout


@pytest.mark.slow
def test_a_memory_url_under_processes_is_written_by_the_driver(tmp_path):
    """``memory://`` lives in one process: workers ship their batches to the driver, which
    writes them (worker-written files would land in the workers' memory and be lost)."""
    import fsspec
    import pyarrow.dataset as pads
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    from etl.cli import cli  # noqa: F401 (the run is in this process: memory:// is here)

    inputs = make_inputs(tmp_path / "in")
    url = f"memory://etl-proc-{tmp_path.name}/out"
    executor = '[executor]\nplugin = "processes"\nworkers = 2\nchunk_size = 3\n'
    remote = pipeline(tmp_path / "mem.toml", inputs, url, run=executor)
    local = pipeline(tmp_path / "local.toml", inputs, str(tmp_path / "local"))
    fs = fsspec.filesystem("memory")
    root = url.removeprefix("memory:/")
    try:
        done = run_etl("run", str(remote))
        assert done.returncode == 0, done.stderr
        assert run_etl("run", str(local)).returncode == 0
        files = sorted(fs.glob(f"{root}/**/*.parquet"))
        got = pads.dataset(files, filesystem=PyFileSystem(FSSpecHandler(fs))).to_table()
        same_rows(got, read_dataset(tmp_path / "local"))
    finally:
        fs.rm(root.split("/")[1], recursive=True)
