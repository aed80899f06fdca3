"""Scratch folders for the test kit's runs when a test gives no ``tmp_path``.

They are made under one folder per process, removed when the process exits: a plugin's test
suite that calls ``run_source`` a thousand times leaves nothing in the system's temp folder.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

_root: Path | None = None
_owner: int | None = None


def scratch_folder() -> Path:
    """A new empty folder, removed with the others when this process exits."""
    global _root, _owner
    if _root is None or _owner != os.getpid():  # a forked child removes only its own
        _root, _owner = Path(tempfile.mkdtemp(prefix="etl-test-")), os.getpid()
        atexit.register(shutil.rmtree, _root, ignore_errors=True)
    return Path(tempfile.mkdtemp(dir=_root))
