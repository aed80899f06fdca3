"""Preloaded by each worker of a local cluster the dask executor starts (``preload``).

Python reports an exception it cannot raise (one in a ``__del__``) by printing it to stderr,
and a local cluster's workers share the run's stderr. A worker stopped while a task runs (a
failed run closes its cluster at once) can meet such an error as its Dask client is torn
down after its event loop, and its traceback would then follow the run's one-line message.
Those reports go to the worker's log instead, which the executor silences as it does the
rest of Dask's logging. Only processes the executor started are touched.
"""

from __future__ import annotations

import logging
import sys
from typing import Any


def dask_setup(worker: Any) -> None:
    """Called by Dask as the worker starts."""

    def to_log(unraisable: Any) -> None:
        logging.getLogger("distributed.worker").debug(
            "exception ignored in %r: %r", unraisable.object, unraisable.exc_value
        )

    sys.unraisablehook = to_log
