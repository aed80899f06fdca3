"""Checks of where a run will write, made before it runs (``etl validate``, ``--dry-run``).

Nothing is written: a probe file is made and removed in the folder the dataset will live in
(or the nearest folder above it that exists), which is the one test a read-only mount, a
permission or an access list cannot fool.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

from etl.errors import ConfigError

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def scheme_error(sink: Any) -> ConfigError | None:
    """The sink's location is a URL, and the sink writes local folders only (a sink with
    ``object_stores`` writes any fsspec filesystem, and the store lives there too)."""
    location = sink.location()
    match = _SCHEME.match(location) if isinstance(location, str) else None
    if match is None or sink.object_stores:
        return None
    return sink.error(
        f"the dataset folder {location} is a URL ({match.group(1)}://), and the sink "
        f"'{sink.name}' writes a local folder only (the dataset and its state in _etl/ are "
        "committed with local renames)",
        hint="write to a local folder and copy it to the object store afterwards "
        "(aws s3 sync, gsutil rsync, rclone)",
    )


def check_location(plan: Any) -> dict[str, Any]:
    """:func:`_check_location`, the error blamed on ``--set`` when the path came from one."""
    from etl.run.plan import blame_overrides, redact_error

    try:
        return _check_location(plan)
    except ConfigError as exc:
        exc.key = "path"
        blame_overrides(exc, plan.pipeline.sink)
        redact_error(exc, plan.pipeline)  # the path may hold a value from the environment
        raise


def _check_location(plan: Any) -> dict[str, Any]:
    """Check the sink's location: a folder or one that can be made, writable, a local path.

    Returns:
        What was found: ``{"path", "exists", "writable_at"}`` (``path`` None when the sink
        keeps no state).

    Raises:
        ConfigError: naming the sink's table, when the run could not write there.
    """
    sink = plan.sink
    location = sink.location()
    if location is None:
        return {"path": None, "exists": False, "writable_at": None}
    error = scheme_error(sink)
    if error is not None:
        raise error
    if _SCHEME.match(location):
        return _check_url(sink, location)
    root = Path(location)
    if root.exists() and not root.is_dir():
        raise sink.error(
            f"the dataset folder {root} exists and is not a folder",
            hint="point [sink] path at a folder (it is made if missing)",
        )
    parent = root
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise sink.error(
            f"the dataset folder {root} cannot be made: {parent} is a file",
            hint="point [sink] path elsewhere",
        )
    try:
        fd, probe = tempfile.mkstemp(prefix=".etl-probe-", dir=parent)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        why = exc.strerror or str(exc)
        hint = (
            "that filesystem is mounted read-only; point [sink] path elsewhere"
            if exc.errno == 30  # EROFS
            else "check that this user may write there, or point [sink] path elsewhere"
        )
        raise sink.error(
            f"cannot write the dataset folder {root}: {parent} is not writable ({why})",
            hint=hint,
        ) from exc
    return {"path": str(root), "exists": root.is_dir(), "writable_at": str(parent)}


def _check_url(sink: Any, location: str) -> dict[str, Any]:
    """A dataset at a URL: its filesystem opens with the section's ``storage_options``, and
    a probe object is written and removed under it."""
    import secrets

    from etl.store.fs import ObjectPath, store_path

    root = store_path(location, sink.storage_options())
    assert isinstance(root, ObjectPath)
    probe = root / f".etl-probe-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        probe.write_bytes(b"")
        probe.unlink(missing_ok=True)
        exists = root.is_dir()
    except OSError as exc:
        raise sink.error(
            f"cannot write the dataset {location}: {type(exc).__name__}: {exc.strerror or exc}",
            hint="check the bucket, the endpoint and the credentials in [sink] storage_options",
        ) from exc
    return {"path": location, "exists": exists, "writable_at": location}
