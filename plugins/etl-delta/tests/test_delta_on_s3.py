"""The `delta` sink with its table in an S3 bucket (moto's server on 127.0.0.1), through the
real CLI, under the local and processes executors, read back by deltalake from the bucket.

moto runs in a process of its own: delta-rs blocks in Rust while it waits for a reply, and an
in-process (threaded) moto server then never gets to answer (delta-io/delta-rs#4362).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port, write_pipeline
from tests.objstore.s3data import ARTICLES, aws_environment, make_bucket, make_inputs

pytestmark = pytest.mark.slow

KEY_ID = "etl-delta-key-id"
SECRET = "etl-Delta-Secret-7731"
BUCKET = "news-delta"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """moto's S3 server in a child process on a free port of 127.0.0.1, with one bucket."""
    pytest.importorskip("moto.server")
    pytest.importorskip("boto3")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        make_bucket(url, BUCKET, KEY_ID, SECRET)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def options(endpoint: str) -> dict[str, str]:
    """The pipeline's storage_options, in fsspec's names."""
    return {"endpoint_url": endpoint, "key": KEY_ID, "secret": SECRET, "region": "us-east-1"}


def pipeline(path: Path, inputs: Path, table: str, endpoint: str) -> Path:
    return write_pipeline(
        path,
        f"""[[sources]]
plugin = "text"
paths = ["{inputs}/*.txt"]

[sink]
plugin = "delta"
path = "{table}"
storage_options = {{ endpoint_url = "{endpoint}", region = "us-east-1", key = "{KEY_ID}", secret = "${{ETL_TEST_DELTA_SECRET}}" }}
""",
    )


def etl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "ETL_PROGRESS": "0", "ETL_TEST_DELTA_SECRET": SECRET, **(env or {})}
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "etl.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,  # delta-rs retries an unreachable store for minutes
    )


def read_table(uri: str, endpoint: str):
    from deltalake import DeltaTable
    from etl_delta import delta_storage_options

    return DeltaTable(uri, storage_options=delta_storage_options(uri, options(endpoint)))


def test_a_table_in_a_bucket_takes_runs_like_a_local_one(endpoint, tmp_path):
    import etl_delta
    import s3fs

    inputs = make_inputs(tmp_path / "in")
    uri = f"s3://{BUCKET}/news"
    bucket_pipe = pipeline(tmp_path / "s3.toml", inputs, uri, endpoint)
    local_pipe = pipeline(tmp_path / "local.toml", inputs, str(tmp_path / "local"), endpoint)

    first = etl("run", str(bucket_pipe))
    assert first.returncode == 0, first.stderr + first.stdout
    local = etl("run", str(local_pipe))
    assert local.returncode == 0, local.stderr + local.stdout
    from deltalake import DeltaTable

    want = DeltaTable(str(tmp_path / "local")).to_pyarrow_table().sort_by("id")
    got = read_table(uri, endpoint).to_pyarrow_table().sort_by("id")
    assert got.num_rows == len(set(ARTICLES)) == want.num_rows
    assert got.column("id").to_pylist() == want.column("id").to_pylist()
    assert got.column("text").to_pylist() == want.column("text").to_pylist()

    # a second run, two workers writing their files into the bucket: only the new articles
    make_inputs(inputs, [*ARTICLES, "A new article about the harbour ferry.\n"])
    second = etl(
        "run",
        str(bucket_pipe),
        "--set",
        "executor.plugin=processes",
        "--set",
        "executor.workers=2",
    )
    assert second.returncode == 0, second.stderr + second.stdout
    table = read_table(uri, endpoint)
    assert table.version() == 1  # one Delta commit per run
    ids = table.to_pyarrow_table().column("id").to_pylist()
    assert len(ids) == len(set(ids)) == len(set(ARTICLES)) + 1
    runs = etl_delta.commits(uri, options(endpoint))
    assert [int(c["etl.written"]) for c in runs] == [len(set(ARTICLES)), 1]

    # etl inspect reads the table from the bucket with the environment's credentials
    inspected = etl("inspect", "--json", uri, env=aws_environment(endpoint, KEY_ID, SECRET))
    assert inspected.returncode == 0, inspected.stderr
    info = json.loads(inspected.stdout)
    assert (info["rows"], len(info["runs"])) == (len(ids), 2)

    fs = s3fs.S3FileSystem(
        key=KEY_ID, secret=SECRET, endpoint_url=endpoint, use_listings_cache=False
    )
    keys = fs.find(f"{BUCKET}/news")
    assert not [k for k in keys if "/_etl/staging/" in k]  # nothing left in flight
    assert any("/_etl/runs/" in k for k in keys)  # the framework's store is in the bucket
    assert not (tmp_path / "s3:").exists()  # nothing written to a local "s3:" folder
    # the secret is in no output and no object of the table but the Parquet data
    assert SECRET not in first.stdout + first.stderr + second.stdout + second.stderr
    for key in keys:
        if not key.endswith(".parquet"):
            assert SECRET.encode() not in fs.cat(key), key


def test_s3_options_are_given_to_delta_rs_under_its_names():
    from etl_delta import delta_storage_options

    got = delta_storage_options(
        "s3://b/t",
        {
            "key": "k",
            "secret": "s",
            "client_kwargs": {"endpoint_url": "http://127.0.0.1:9000", "region_name": "eu"},
            "anon": False,
        },
    )
    assert got == {
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_REGION": "eu",
        "AWS_ALLOW_HTTP": "true",
        "conditional_put": "etag",
    }
    # delta-rs's own names pass through, and override the defaults
    assert delta_storage_options("s3://b/t", {"anon": True, "conditional_put": "none"}) == {
        "AWS_SKIP_SIGNATURE": "true",
        "conditional_put": "none",
    }
    assert delta_storage_options("gs://b/t", {"token": "/k.json"}) == {"token": "/k.json"}
