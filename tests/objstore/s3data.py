"""Helpers of the object-store dataset tests: inputs, pipelines, and the bucket read back
as a reader of the documented read path sees it."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tests.helpers import write_pipeline

ARTICLES = [
    f"Article {n}: the council met on Tuesday about road number {n} and the harbour.\n"
    for n in range(14)
]


ARTICLES.append(ARTICLES[5])  # a duplicate


def make_bucket(endpoint: str, bucket: str, key_id: str, secret: str) -> None:
    """Create ``bucket`` on the S3 server at ``endpoint`` (moto takes any credentials)."""
    _client(endpoint, key_id, secret).create_bucket(Bucket=bucket)


@functools.cache
def _client(endpoint: str, key_id: str, secret: str) -> Any:
    """One boto3 client per server (each new one parses botocore's service models, 0.1 s)."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        region_name="us-east-1",
    )


def aws_environment(endpoint: str, key_id: str, secret: str) -> dict[str, str]:
    """The environment a command that reads no pipeline logs in to the server with."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def make_inputs(folder: Path, texts: list[str] = ARTICLES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n, text in enumerate(texts):
        (folder / f"a{n:02d}.txt").write_text(text, encoding="utf-8")
    return folder


def pipeline(
    path: Path,
    inputs: Path | str,
    out: str,
    extra: str = "",
    run: str = "",
    *,
    head: str = "",
    source: str = "",
) -> Path:
    """A ``text`` source over ``inputs``/*.txt (a folder or a URL; ``source``: more of its
    keys) into a ``parquet`` sink at ``out`` (``extra``: more of its keys); ``run``: tables
    between them, ``head``: keys before every table (``plugins``)."""
    return write_pipeline(
        path,
        f"""{head}
[[sources]]
plugin = "text"
paths = ["{inputs}/*.txt"]
{source}
{run}
[sink]
plugin = "parquet"
path = "{out}"
{extra}
""",
    )


def read_bucket(s3, prefix: str = "out") -> pa.Table:
    """The dataset as a reader of the documented read path sees it: every ``*.parquet``
    below the prefix (hive partitions), read through fsspec."""
    import pyarrow.dataset as pads
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    fs = s3.fs()
    files = sorted(fs.glob(f"{s3.bucket}/{prefix}/**/*.parquet"))
    if not files:
        return pa.table({})
    return pads.dataset(
        files, filesystem=PyFileSystem(FSSpecHandler(fs)), format="parquet", partitioning="hive"
    ).to_table()


def same_rows(got: pa.Table, want: pa.Table, ignore: tuple[str, ...] = ()) -> None:
    """Row for row, every column but the run's own (run ids and times differ) and those
    in ``ignore``."""
    skip = {"ingested_at", "run_id", *ignore}
    columns = sorted(c for c in want.column_names if c not in skip)
    assert sorted(c for c in got.column_names if c not in skip) == columns
    got, want = got.select(columns).sort_by("id"), want.select(columns).sort_by("id")
    assert got.num_rows == want.num_rows
    for name in columns:
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name


def no_id_twice(table: pa.Table) -> None:
    if table.num_rows:
        assert pc.count_distinct(table.column("id")).as_py() == table.num_rows


def everything_in_the_bucket(s3) -> str:
    fs = s3.fs()
    return "\n".join(fs.cat_file(p).decode("latin-1") for p in fs.find(s3.bucket))


def edit(inputs: Path, numbers: range) -> None:
    for n in numbers:
        path = inputs / f"a{n:02d}.txt"
        path.write_text(path.read_text().rstrip() + " It was corrected.\n", encoding="utf-8")


def one_row_per_uri(table: pa.Table) -> dict[str, str]:
    uris = table.column("uri").to_pylist()
    assert len(set(uris)) == len(uris), "a uri twice"
    return dict(zip(uris, table.column("text").to_pylist(), strict=True))


def s3_pipeline(path: Path, inputs: Path, s3, extra: str = "", run: str = "") -> Path:
    """``pipeline`` into the test's bucket (``out``), with its storage options."""
    return pipeline(path, inputs, s3.url("out"), f"{extra}\nstorage_options = {s3.toml()}", run=run)


def upload(s3, folder: Path, prefix: str = "in") -> str:
    """The files of ``folder`` put into the bucket below ``prefix``: their URL there."""
    fs = s3.fs()
    for path in sorted(folder.iterdir()):
        fs.pipe_file(f"{s3.bucket}/{prefix}/{path.name}", path.read_bytes())
    return s3.url(prefix)


def credentials_nowhere(s3, *texts: str, prefix: str = "") -> None:
    """Neither the key id nor the secret is in ``texts`` (logs, outputs) or in any object of
    the bucket (below ``prefix``): manifests and JSON as written, Parquet tables (rejects,
    the inputs memory, the data) as read, their compressed bytes telling nothing."""
    import pyarrow.parquet as pq

    from tests.objstore.conftest import KEY_ID, SECRET

    fs = s3.fs()
    seen = list(texts)
    objects = fs.find(f"{s3.bucket}/{prefix}".rstrip("/"))
    assert objects or not prefix, f"nothing below {prefix}"
    for path in objects:
        data = fs.cat_file(path)
        seen.append(data.decode("latin-1"))
        if data[:4] == b"PAR1":
            with fs.open(path, "rb") as f:
                seen.append(str(pq.read_table(f).to_pylist()))
    for text in seen:
        assert SECRET not in text and KEY_ID not in text, text[:2000]


def duckdb_on(s3):
    """A DuckDB connection that reads ``s3://`` URLs of the test's bucket: through httpfs
    where it can be loaded, else through the bucket's fsspec filesystem (offline, httpfs
    cannot be installed: the package registries have no build of it for this DuckDB)."""
    import duckdb

    from tests.objstore.conftest import KEY_ID, SECRET

    con = duckdb.connect()
    con.execute("SET autoinstall_known_extensions = false")  # never fetch one from the net
    try:
        con.execute("LOAD httpfs")
        host = s3.endpoint.removeprefix("http://")
        con.execute(
            f"CREATE SECRET (TYPE s3, KEY_ID '{KEY_ID}', SECRET '{SECRET}', ENDPOINT '{host}', "
            "URL_STYLE 'path', USE_SSL false, REGION 'us-east-1')"
        )
    except duckdb.Error:
        con.register_filesystem(s3.fs())
    return con
