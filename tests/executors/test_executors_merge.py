"""Merge mode under the processes and dask executors: workers ship batches, the driver
keeps the first row of each key and commits the replacement, crash or no crash."""

from __future__ import annotations

import pytest

from etl.dataset import CRASH_EXIT
from tests.helpers.reliability import (
    check_merge_replaces_an_edited_article,
    etl,
    etl_process,
    merged_dataset,
    one_row_per_uri,
)


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["processes", "dask"])
def test_merge_under_workers_replaces_the_old_version(tmp_path, executor, request):
    sets = ["--set", f"executor.plugin={executor}", "--set", "executor.chunk_size=3"]
    if executor == "dask":
        address = request.getfixturevalue("dask_address")
        sets += ["--set", f"executor.address={address}"]
    check_merge_replaces_an_edited_article(tmp_path, *sets)


@pytest.mark.slow
def test_a_merge_under_processes_killed_mid_apply_leaves_one_row_per_uri(tmp_path):
    pipeline, dataset, before, edited = merged_dataset(tmp_path, 5)
    sets = ["--set", "executor.plugin=processes", "--set", "executor.chunk_size=3"]
    proc = etl_process("run", str(pipeline), *sets, env={"ETL_CRASH_AT": "mid-apply"})
    assert proc.returncode == CRASH_EXIT, proc.stderr
    assert set(one_row_per_uri(dataset)) == set(before)
    etl("run", str(pipeline), check=True)
    rows = one_row_per_uri(dataset)
    assert all(rows[path].rstrip().endswith("corrected.") for path in edited)
