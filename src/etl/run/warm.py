"""Imported once by the ``processes`` executor's fork server, before it forks any worker.

A ``forkserver`` worker is a fork of that server, so whatever is imported here is paid for
once per run instead of once per worker (a ``spawn`` worker imports everything itself):
pyarrow and numpy, the framework's worker side and its bundled plugins, and pandas, which
pyarrow imports on the first ``pa.array`` of a Python list (every source does one). Only the
bundled plugins: installed and local ones are loaded by each worker from the run's spec, so
a plugin the run disables is never imported. Import errors are ignored by the fork server.
"""

from __future__ import annotations

import importlib

import pyarrow as pa

import etl.run.worker  # noqa: F401 - the worker's side: plan, streamer, schema
from etl.plugins.manager import DEFAULT_PLUGINS

for _name in DEFAULT_PLUGINS:
    importlib.import_module(_name)

# pyarrow's pandas shim imports pandas (when installed) on the first array made from a
# Python list; do it here, once, rather than in every worker's first batch
pa.array([b""], pa.binary())
