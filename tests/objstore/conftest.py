"""A real S3-compatible server on 127.0.0.1 (moto's server mode), once per test session.

Each test gets a bucket of its own (``s3`` fixture): the server is shared, the data is not.
The credentials are made up; moto takes any. Nothing connects beyond 127.0.0.1: the
endpoint is given in every pipeline's ``storage_options`` and the AWS variables below keep
botocore from looking for a real account.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.helpers import free_port

KEY_ID = "etl-test-key-id"
SECRET = "etl-Test-Secret-0451"
_buckets = itertools.count(1)


@dataclass
class S3:
    """The server's endpoint and one test's bucket."""

    endpoint: str
    bucket: str

    def url(self, path: str = "") -> str:
        return f"s3://{self.bucket}/{path}".rstrip("/")

    def options(self, secret: str = SECRET) -> dict[str, Any]:
        """storage_options for a pipeline section (the secret as given: ``${VAR}`` or plain)."""
        return {
            "endpoint_url": self.endpoint,
            "key": KEY_ID,
            "secret": secret,
            "region": "us-east-1",
        }

    def polars_options(self) -> dict[str, str]:
        """storage_options for Polars (its own object-store client) on this server."""
        return {
            "aws_endpoint_url": self.endpoint,
            "aws_access_key_id": KEY_ID,
            "aws_secret_access_key": SECRET,
            "aws_region": "us-east-1",
            "aws_allow_http": "true",
        }

    def toml(self, secret: str = "${ETL_TEST_S3_SECRET}") -> str:
        """The same, as an inline TOML table."""
        return (
            f'{{ endpoint_url = "{self.endpoint}", region = "us-east-1", key = "{KEY_ID}", '
            f'secret = "{secret}" }}'
        )

    def fs(self) -> Any:
        """An s3fs filesystem on the server (one per endpoint: each new one parses
        botocore's service models again, 0.1 s)."""
        return _filesystem(self.endpoint)


@functools.cache
def _filesystem(endpoint: str) -> Any:
    import s3fs

    return s3fs.S3FileSystem(
        key=KEY_ID,
        secret=SECRET,
        endpoint_url=endpoint,
        client_kwargs={"region_name": "us-east-1"},
        skip_instance_cache=True,
        # what the test sees must be the bucket now, not a listing from before a run
        use_listings_cache=False,
    )


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on a free port of 127.0.0.1, for the whole session."""
    pytest.importorskip("s3fs")
    server_mod = pytest.importorskip("moto.server")
    port = free_port()
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def _new_bucket(server: str, monkeypatch: pytest.MonkeyPatch) -> S3:
    """A new, empty bucket on the server; ``ETL_TEST_S3_SECRET`` set for pipelines (and no
    AWS account of this machine's in sight) until ``monkeypatch`` undoes it."""
    from tests.objstore.s3data import make_bucket

    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("ETL_TEST_S3_SECRET", SECRET)
    bucket = f"news{next(_buckets)}"
    make_bucket(server, bucket, KEY_ID, SECRET)
    return S3(server, bucket)


@pytest.fixture
def s3(s3_server, monkeypatch) -> S3:
    """A new, empty bucket on the session's server; ``ETL_TEST_S3_SECRET`` set for pipelines."""
    return _new_bucket(s3_server, monkeypatch)


@pytest.fixture(scope="module")
def s3_module(s3_server) -> Iterator[S3]:
    """``s3``, one bucket for a whole module (for tests that share a cluster and inputs)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield _new_bucket(s3_server, monkeypatch)
