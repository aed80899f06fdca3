"""``storage_options`` per source (item A of issue 17): inputs read from a real S3-compatible
server on 127.0.0.1 (moto), the credentials redacted everywhere they could show."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.compute as pc
import pytest

from tests.helpers import read_dataset, run_etl, write_pipeline
from tests.objstore.conftest import KEY_ID, SECRET

ARTICLES = [f"Article {n}: the council met on Tuesday about road number {n}.\n" for n in range(12)]
ARTICLES.append(ARTICLES[3])  # one duplicate


def _put_inputs(s3, folder: Path) -> None:
    fs = s3.fs()
    for n, text in enumerate(ARTICLES):
        fs.pipe(f"{s3.bucket}/in/a{n:02d}.txt", text.encode())
        (folder / f"a{n:02d}.txt").write_text(text, encoding="utf-8")


def _pipeline(tmp_path: Path, paths: str, out: Path, extra: str = "") -> Path:
    return write_pipeline(
        tmp_path / f"{out.name}.toml",
        f"""
[[sources]]
plugin = "text"
paths = ["{paths}"]
{extra}

[sink]
plugin = "parquet"
path = "{out}"
""",
    )


def _everything_written(tmp_path: Path, *outputs: str) -> str:
    texts = list(outputs)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            texts.append(path.read_bytes().decode("latin-1"))
    return "\n".join(texts)


@pytest.mark.slow
def test_inputs_in_a_bucket_read_with_storage_options_equal_a_local_run(tmp_path, s3):
    local_in = tmp_path / "in"
    local_in.mkdir()
    _put_inputs(s3, local_in)
    remote = _pipeline(
        tmp_path,
        s3.url("in/*.txt"),
        tmp_path / "from_s3",
        f"storage_options = {s3.toml()}",
    )
    local = _pipeline(tmp_path, str(local_in / "*.txt"), tmp_path / "from_disk")

    done = run_etl("-vv", "--log-format", "json", "run", str(remote))
    assert done.returncode == 0, done.stderr
    assert run_etl("run", str(local)).returncode == 0

    got = read_dataset(tmp_path / "from_s3").sort_by("id")
    want = read_dataset(tmp_path / "from_disk").sort_by("id")
    assert got.num_rows == len(ARTICLES) - 1
    assert got.column("text").to_pylist() == want.column("text").to_pylist()
    assert all(u.startswith(f"s3://{s3.bucket}/in/a") for u in got.column("uri").to_pylist())
    assert pc.count_distinct(got.column("id")).as_py() == got.num_rows

    # the secret (from ${ENV}) and the key id (written in the file) are nowhere: not in the
    # manifest, the inputs memory, the logs, nor `etl config`
    shown = run_etl("config", str(remote))
    assert shown.returncode == 0, shown.stderr
    assert "***" in shown.stdout
    written = _everything_written(tmp_path / "from_s3", done.stdout, done.stderr, shown.stdout)
    assert SECRET not in written and KEY_ID not in written
    manifest = json.loads(next((tmp_path / "from_s3/_etl/runs").glob("*.json")).read_text())
    options = manifest["pipeline"]["sources"][0]["storage_options"]
    assert options["secret"] == "***" and options["key"] == "***"
    assert options["endpoint_url"] == s3.endpoint

    # objects are fingerprinted by their ETag: the re-run skips every input unread
    again = run_etl("run", str(remote))
    assert again.returncode == 0 and "0 read, 13 skipped" in again.stdout, again.stdout


def test_one_object_read_with_a_secret_written_in_the_file(tmp_path, s3):
    """The quick form of the test above: the endpoint comes from storage_options (without it
    the listing would look for AWS itself and fail), and a secret written in the file, not
    taken from ${ENV}, is redacted too."""
    pipe = _pipeline(
        tmp_path,
        s3.url("in/*.txt"),
        tmp_path / "out",
        f"storage_options = {s3.toml(secret=SECRET)}",
    )
    s3.fs().pipe(f"{s3.bucket}/in/a.txt", b"A text long enough to be an article.")
    done = run_etl("run", str(pipe))
    assert done.returncode == 0, done.stderr
    assert read_dataset(tmp_path / "out").column("uri").to_pylist() == [s3.url("in/a.txt")]
    assert SECRET not in _everything_written(tmp_path / "out", done.stdout, done.stderr)


def test_storage_options_must_be_a_table(tmp_path, s3):
    pipe = _pipeline(tmp_path, s3.url("in/*.txt"), tmp_path / "out", 'storage_options = "anon"')
    done = run_etl("run", str(pipe))
    assert done.returncode == 2
    assert "storage_options" in done.stderr and "must be dict" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_workers_get_the_storage_options_with_the_pipeline(tmp_path, s3, monkeypatch):
    """Worker processes read the bucket with the section's options, not their environment:
    the secret is unset in the workers' environment (they are started after this)."""
    local_in = tmp_path / "in"
    local_in.mkdir()
    _put_inputs(s3, local_in)
    pipe = _pipeline(
        tmp_path,
        s3.url("in/*.txt"),
        tmp_path / "out",
        f'storage_options = {s3.toml(secret=SECRET)}\n\n[executor]\nplugin = "processes"\nworkers = 2',
    )
    monkeypatch.delenv("ETL_TEST_S3_SECRET")
    done = run_etl("run", str(pipe))
    assert done.returncode == 0, done.stderr
    table = read_dataset(tmp_path / "out")
    assert table.num_rows == len(ARTICLES) - 1
    assert SECRET not in _everything_written(tmp_path / "out", done.stdout, done.stderr)
