"""Inputs that are not local files are remembered by fingerprint (issue 14)."""

from __future__ import annotations

import uuid

import pytest

from etl.config import pipeline_from_dict
from etl.run import build_plan, run_plan
from etl.testing import read_parquet_dataset

fsspec = pytest.importorskip("fsspec")


def run(folder, pattern):
    data = {
        "sources": [{"plugin": "text", "paths": [pattern]}],
        "sink": {"plugin": "parquet", "path": "out"},
    }
    return run_plan(build_plan(pipeline_from_dict(data, base_dir=folder, name="fp")))


def test_object_store_inputs_are_skipped_while_unchanged(tmp_path):
    fs = fsspec.filesystem("memory")
    root = f"/fp-{uuid.uuid4().hex}"
    fs.pipe(f"{root}/a.txt", b"An article about the harbour and its new ferry line.")
    fs.pipe(f"{root}/b.txt", b"Another article about the council and the school budget.")
    pattern = f"memory://{root}/*.txt"
    first = run(tmp_path, pattern)
    assert (first["inputs"], first["written"]) == (2, 2)
    again = run(tmp_path, pattern)
    assert (again["inputs"], again["inputs_skipped"]) == (0, 2)
    fs.pipe(f"{root}/b.txt", b"Another article about the council and the budget, corrected.")
    changed = run(tmp_path, pattern)
    assert (changed["inputs"], changed["inputs_skipped"], changed["written"]) == (1, 1, 1)
    table = read_parquet_dataset(tmp_path / "out")
    assert table.num_rows == 3
    assert all(row["fingerprint"] for row in changed["per_input"])


def test_object_fingerprint_prefers_version_then_etag_then_mtime():
    from etl.inputs import object_fingerprint

    assert (
        object_fingerprint({"size": 3, "VersionId": "v7", "ETag": '"e1"'}, 1.0) == "VersionId:v7:3"
    )
    assert object_fingerprint({"size": 3, "ETag": '"e1"'}, 1.0) == "ETag:e1:3"
    assert object_fingerprint({"size": 3}, 1.5) == "mtime:1.5:3"
    assert object_fingerprint({}, None) is None
