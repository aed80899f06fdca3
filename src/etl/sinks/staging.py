"""The folder workers stage a run's files in, and the check that a worker can write there."""

from __future__ import annotations

import os
import secrets
from typing import TYPE_CHECKING

from etl.errors import RunError

if TYPE_CHECKING:
    from pathlib import Path

    from etl.store import Layout

_HINT = (
    "the dataset path must be on a filesystem that the driver and every worker mount at the "
    "same path, writable by the workers"
)


def worker_folder(layout: Layout, run_id: str, *, probe: bool = False) -> Path:
    """``_etl/staging/<run>/workers`` of the dataset at ``layout``, made if missing.

    The driver made the run's staging folder when it opened the sink; a worker that does not
    see it is on another filesystem. With ``probe`` a file is written and removed there, the
    one test a read-only mount or a permission cannot fool (the preflight of a worker).

    Raises:
        RunError: saying which folder the worker cannot see or write.
    """
    folder = layout.staging(run_id) / "workers"
    # an object store has no folders to see (a prefix exists once it holds a key): the
    # probe is the test there
    if not layout.remote and not folder.parent.is_dir():
        raise RunError(f"cannot see the run's staging folder {folder.parent}", hint=_HINT)
    try:
        folder.mkdir(exist_ok=True)
        if probe:
            path = folder / f".probe-{os.getpid()}-{secrets.token_hex(4)}"
            path.write_bytes(b"")
            path.unlink()
    except OSError as exc:
        raise RunError(
            f"cannot write the run's staging folder {folder}: "
            f"{type(exc).__name__}: {exc.strerror or exc}",
            hint=_HINT,
        ) from exc
    return folder
