"""A one-line progress display on a terminal; nothing when stderr is not a terminal."""

from __future__ import annotations

import os
import sys
import time


class Progress:
    """Shows ``inputs done/total, articles written`` at most a few times a second."""

    def __init__(self, total: int, *, enabled: bool | None = None) -> None:
        self.total = total
        if enabled is None:
            enabled = sys.stderr.isatty() and os.environ.get("ETL_PROGRESS", "1") != "0"
        self.enabled = enabled
        self._last = 0.0

    def update(self, done: int, written: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.2:
            return
        self._last = now
        sys.stderr.write(f"\r  {done}/{self.total} inputs, {written} articles written ")
        sys.stderr.flush()

    def close(self, done: int, written: int) -> None:
        if self.enabled:
            sys.stderr.write(f"\r  {done}/{self.total} inputs, {written} articles written\n")
            sys.stderr.flush()
