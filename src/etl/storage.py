"""Where inputs and datasets live: fsspec filesystems and their ``storage_options``.

A source or sink section of a pipeline may hold ``storage_options``, a table passed to
fsspec (and so to pyarrow, which writes through fsspec's file objects) when a path of that
section is a URL (``s3://``, ``gs://``, ``az://``, ``memory://``...)::

    [sink]
    plugin = "parquet"
    path = "s3://news/out"
    storage_options = { endpoint_url = "http://127.0.0.1:9000", region = "eu-west-1",
                        key = "${S3_KEY}", secret = "${S3_SECRET}" }

The table goes to the filesystem as it is (``anon``, ``profile``, ``client_kwargs``...: each
filesystem's own keyword arguments), with one convenience: for ``s3://``, ``region`` is put
into ``client_kwargs.region_name`` (s3fs has no ``region`` argument). Values whose key is
named like a credential (key, secret, token, password...) are secrets, like values from
``${ENV}`` (:func:`storage_secrets`): shown as ``***`` everywhere.

fsspec and the store's package (s3fs for ``s3://``) are optional extras imported only when
such a path appears (``pip install 'etl[s3]'``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from etl.errors import ConfigError

#: the option name, in every source and sink section that reads or writes paths
STORAGE_OPTIONS = "storage_options"
#: keys of a storage_options table whose values are credentials
_CREDENTIAL_KEY = re.compile(r"key|secret|token|pass|pwd|sas|credential|session|sig", re.I)
#: keys that look like credentials but are not (``key_prefix``-like names are not used by
#: fsspec's stores; these are)
_NOT_SECRET = frozenset({"endpoint_url", "region", "region_name", "profile", "anon"})
#: shorter values are not taken for credentials (they would be replaced everywhere)
_MIN_SECRET = 4
#: the package that gives fsspec each protocol, for the message when it is missing
_PACKAGES = {
    "s3": ("s3fs", "'etl[s3]'"),
    "s3a": ("s3fs", "'etl[s3]'"),
    "gs": ("gcsfs", "gcsfs"),
    "gcs": ("gcsfs", "gcsfs"),
    "az": ("adlfs", "adlfs"),
    "abfs": ("adlfs", "adlfs"),
    "abfss": ("adlfs", "adlfs"),
}


def is_url(path: str) -> bool:
    """True for ``scheme://...`` (fsspec or http), False for a local path."""
    return "://" in path


def protocol(url: str) -> str:
    """The scheme of a URL (``s3``), or ``file`` for a local path."""
    return url.split("://", 1)[0].lower() if is_url(url) else "file"


def storage_secrets(value: Any, *, inside: bool = False) -> set[str]:
    """The credentials in every ``storage_options`` table found in ``value`` (a pipeline's
    data): string values whose key is named like a key, secret, token or password, at any
    depth of the table (``client_kwargs.aws_secret_access_key`` too)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            here = inside or key == STORAGE_OPTIONS
            if (
                inside
                and isinstance(item, str)
                and str(key) not in _NOT_SECRET
                and _CREDENTIAL_KEY.search(str(key))
                and len(item) >= _MIN_SECRET
            ):
                found.add(item)
            else:
                found |= storage_secrets(item, inside=here)
    elif isinstance(value, list):
        for item in value:
            found |= storage_secrets(item, inside=inside)
    return found


def fsspec_options(url: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The keyword arguments for fsspec's filesystem of ``url``, from a section's
    ``storage_options`` (``region`` moved into ``client_kwargs`` for ``s3://``)."""
    opts = dict(options or {})
    if protocol(url) in ("s3", "s3a") and "region" in opts:
        client = dict(opts.get("client_kwargs") or {})
        client.setdefault("region_name", opts.pop("region"))
        opts["client_kwargs"] = client
    return opts


def fsspec_module(plugin: str = "inputs", url: str = "") -> Any:
    """fsspec itself, or the message saying what to install."""
    try:
        import fsspec
    except ImportError:
        from etl.errors import MissingDependency

        raise MissingDependency(
            plugin, "fsspec", _PACKAGES.get(protocol(url), ("", "'etl[s3]'"))[1]
        ) from None
    return fsspec


def filesystem(
    url: str, options: Mapping[str, Any] | None = None, *, plugin: str = "inputs"
) -> tuple[Any, str]:
    """The fsspec filesystem of ``url`` with ``options``, and the path inside it.

    Raises:
        MissingDependency: fsspec, or the package of the URL's protocol, is not installed.
        ConfigError: fsspec does not know the protocol or refuses the options.
    """
    fsspec = fsspec_module(plugin, url)
    try:
        return fsspec.core.url_to_fs(url, **fsspec_options(url, options))
    except ImportError:
        from etl.errors import MissingDependency

        package, install = _PACKAGES.get(protocol(url), (protocol(url), protocol(url)))
        raise MissingDependency(plugin, package, install) from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"plugin '{plugin}': cannot open '{url}': {exc}",
            hint="check the URL and the section's storage_options",
        ) from exc
