"""The commit of a dataset in an object store (issue 17, item 1): killed at its points and
run again, written by processes and dask workers straight into the bucket, merged, and
checkpointed, on a real S3-compatible server on 127.0.0.1 (moto).

Each test compares the bucket with a local run of the same inputs.
"""

from __future__ import annotations

import pytest

from etl.store import FAULT_POINTS
from tests.helpers import read_dataset, run_etl, run_etl_process
from tests.objstore.conftest import SECRET
from tests.objstore.s3data import (
    ARTICLES,
    edit,
    everything_in_the_bucket,
    make_inputs,
    no_id_twice,
    one_row_per_uri,
    pipeline,
    read_bucket,
    s3_pipeline,
    same_rows,
)

#: the commit's points where an object store differs from a folder: a staged object written
#: (rolled back), the commit point not yet PUT (rolled back) or PUT (rolled forward, nothing
#: copied), one object copied into place and one not (copy + delete done again), and the
#: manifest written with the staging left. commit-point-tmp and before-manifest, the other
#: points, are neighbours of these here (a PUT has no temporary; the manifest is one more
#: PUT) and are tested on local datasets (tests/reliability)
CRASH_POINTS = ["write", "before-commit-point", "after-commit-point", "mid-apply", "after-manifest"]
assert set(CRASH_POINTS) <= set(FAULT_POINTS)


@pytest.mark.slow
@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_crash_then_a_rerun_equals_one_clean_run(tmp_path, s3, point):
    """Killed at each point of the commit on the object store, then run again: the same
    dataset as one clean run, and no reader ever saw an id twice (nor a staged file)."""
    inputs = make_inputs(tmp_path / "in")
    # two files per run (max_rows_per_file), so mid-apply has one in place and one not
    extra = f"max_rows_per_file = 8\nstorage_options = {s3.toml()}"
    remote = pipeline(tmp_path / "s3.toml", inputs, s3.url("out"), extra)
    local = pipeline(tmp_path / "local.toml", inputs, str(tmp_path / "local"))
    assert run_etl("run", str(local)).returncode == 0

    crashed = run_etl_process("run", str(remote), env={"ETL_CRASH_AT": point})
    assert crashed.returncode == 77, crashed.stderr
    seen = read_bucket(s3)
    no_id_twice(seen)
    if point in ("write", "before-commit-point", "commit-point-tmp"):
        assert seen.num_rows == 0, "nothing is visible before the commit point"

    # the lock of the dead run (a process of this host that is gone) is broken at once
    again = run_etl("run", str(remote))
    assert again.returncode == 0, again.stderr
    got = read_bucket(s3)
    no_id_twice(got)
    same_rows(got, read_dataset(tmp_path / "local"))
    fs = s3.fs()
    assert not fs.glob(f"{s3.bucket}/out/_etl/staging/**")
    assert not fs.exists(f"{s3.bucket}/out/_etl/lock")
    # and the inputs memory says it all: one more run reads nothing
    last = run_etl("run", str(remote))
    assert last.returncode == 0 and "0 written" in last.stdout
    assert read_bucket(s3).num_rows == got.num_rows


@pytest.mark.slow
@pytest.mark.parametrize("point", [None, "mid-apply"])
def test_processes_workers_write_straight_into_the_bucket(tmp_path, s3, point):
    """Under ``processes`` each worker stages its files in the bucket itself; the driver
    adopts them (a copy inside the bucket at commit) and the dataset equals a local run,
    also when the driver was killed in its commit and run again."""
    inputs = make_inputs(tmp_path / "in")
    executor = '[executor]\nplugin = "processes"\nworkers = 2\nchunk_size = 3\n'
    remote = s3_pipeline(tmp_path / "s3.toml", inputs, s3, run=executor)
    local = pipeline(tmp_path / "local.toml", inputs, str(tmp_path / "local"))
    if point is not None:
        crashed = run_etl_process("run", str(remote), env={"ETL_CRASH_AT": point})
        assert crashed.returncode == 77, crashed.stderr
        no_id_twice(read_bucket(s3))
    done = run_etl_process("-v", "run", str(remote))
    assert done.returncode == 0, done.stderr
    assert run_etl("run", str(local)).returncode == 0
    got = read_bucket(s3)
    no_id_twice(got)
    same_rows(got, read_dataset(tmp_path / "local"))
    fs = s3.fs()
    # one file per worker task (5 chunks of 3 inputs): the workers wrote them, not the
    # driver (which would have written one)
    assert len(fs.glob(f"{s3.bucket}/out/**/*.parquet")) == 5
    if point is None:
        assert "0 written" in run_etl_process("run", str(remote)).stdout
    assert not fs.glob(f"{s3.bucket}/out/_etl/staging/**")
    assert SECRET not in everything_in_the_bucket(s3) + done.stdout + done.stderr


@pytest.mark.slow
def test_dask_workers_write_straight_into_the_bucket(tmp_path, s3):
    """A LocalCluster on 127.0.0.1 (its workers are other processes): the same dataset as
    a local run, written by the workers into the bucket."""
    from tests.helpers.executors import local_dask_cluster

    inputs = make_inputs(tmp_path / "in")
    local = pipeline(tmp_path / "local.toml", inputs, str(tmp_path / "local"))
    assert run_etl("run", str(local)).returncode == 0
    with local_dask_cluster(2) as address:
        executor = f'[executor]\nplugin = "dask"\naddress = "{address}"\nchunk_size = 3\n'
        remote = s3_pipeline(tmp_path / "s3.toml", inputs, s3, run=executor)
        done = run_etl_process("run", str(remote))
    assert done.returncode == 0, done.stderr
    got = read_bucket(s3)
    no_id_twice(got)
    same_rows(got, read_dataset(tmp_path / "local"))
    assert len(s3.fs().glob(f"{s3.bucket}/out/**/*.parquet")) == 5  # one per worker task
    assert not s3.fs().glob(f"{s3.bucket}/out/_etl/staging/**")


@pytest.mark.parametrize(
    "point",
    [
        None,  # in the quick subset: the crash cases take 5 s each
        pytest.param("mid-apply", marks=pytest.mark.slow),
        pytest.param("after-commit-point", marks=pytest.mark.slow),
    ],
)
def test_merge_replaces_rows_in_the_bucket(tmp_path, s3, point):
    """``mode = "merge"``: a corrected article's new version replaces its row (the file
    that held it is copied over in place); killed in its commit, a reader still sees one
    row per uri, and a re-run ends like the local run."""
    inputs = make_inputs(tmp_path / "in", ARTICLES[:10])
    extra = f'mode = "merge"\nmax_rows_per_file = 4\nstorage_options = {s3.toml()}'
    remote = pipeline(tmp_path / "s3.toml", inputs, s3.url("out"), extra)
    local = pipeline(tmp_path / "local.toml", inputs, str(tmp_path / "local"), 'mode = "merge"')
    assert run_etl("run", str(remote)).returncode == 0
    assert run_etl("run", str(local)).returncode == 0
    before = one_row_per_uri(read_bucket(s3))
    edit(inputs, range(1, 8, 2))
    if point is not None:
        crashed = run_etl_process("run", str(remote), env={"ETL_CRASH_AT": point})
        assert crashed.returncode == 77, crashed.stderr
        assert set(one_row_per_uri(read_bucket(s3))) == set(before)
    done = run_etl("run", str(remote))
    assert done.returncode == 0, done.stderr
    assert run_etl("run", str(local)).returncode == 0
    got = read_bucket(s3)
    rows = one_row_per_uri(got)
    assert sum(text.endswith("corrected.\n") for text in rows.values()) == 4
    same_rows(got, read_dataset(tmp_path / "local"))


@pytest.mark.slow
def test_a_checkpointed_run_killed_in_its_second_checkpoint_carries_on(tmp_path, s3):
    """``[run] checkpoint``: each checkpoint is a commit of its own in the bucket; killed in
    the second one's commit, the re-run finishes it and reads only what is left."""
    inputs = make_inputs(tmp_path / "in")
    remote = s3_pipeline(tmp_path / "s3.toml", inputs, s3, run="[run]\ncheckpoint = 4\n")
    local = pipeline(tmp_path / "local.toml", inputs, str(tmp_path / "local"))
    assert run_etl("run", str(local)).returncode == 0
    crashed = run_etl_process("run", str(remote), env={"ETL_CRASH_AT": "mid-apply@2"})
    assert crashed.returncode == 77, crashed.stderr
    no_id_twice(read_bucket(s3))
    assert len(s3.fs().glob(f"{s3.bucket}/out/_etl/runs/*.json")) == 1
    done = run_etl("run", str(remote))
    assert done.returncode == 0, done.stderr
    assert "8 skipped as unchanged" in done.stdout
    got = read_bucket(s3)
    no_id_twice(got)
    same_rows(got, read_dataset(tmp_path / "local"))
