"""Progress of a run: a live bar on a terminal, a log line every few seconds elsewhere.

Executors make one :class:`Progress` per run and tell it what is *finished* (an input whose
articles were all written or dropped, a chunk a worker returned), never what has started, so
the counts shown are never ahead of the work. What it shows: inputs done of all, articles
written, rejects, articles/s and MB/s (of the finished inputs' bytes), elapsed time, ETA and
the stage.

The mode is chosen once per command (``etl run --progress auto|bar|log|none``; the
environment variable ``ETL_PROGRESS`` gives the default, ``0`` meaning none): ``auto`` is a bar
when stderr is a terminal, else log lines. The bar uses rich, imported only when a bar is
shown; without rich it falls back to a one-line display.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

MODES = ("auto", "bar", "log", "none")

#: the mode ``etl run --progress`` chose; None: from ETL_PROGRESS, else auto
_mode: str | None = None


def configure(mode: str | None) -> None:
    """Set the progress mode for the runs this process makes (None: the default)."""
    global _mode
    _mode = mode


def resolve_mode() -> str:
    """``bar``, ``log`` or ``none``: what a run shows now."""
    from etl import log

    settings = log.settings()
    if settings is not None and settings[1] < 0:  # -q: errors only
        return "none"
    mode = _mode
    if mode is None:
        env = os.environ.get("ETL_PROGRESS", "auto").strip().lower()
        mode = {"0": "none", "1": "auto", "": "auto", "off": "none"}.get(env, env)
    if mode not in MODES:
        mode = "auto"
    if mode == "auto":
        mode = "bar" if _is_terminal(sys.stderr) else "log"
    return mode


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def interval() -> float:
    """Seconds between two log lines (``ETL_PROGRESS_INTERVAL``, default 5)."""
    try:
        return max(0.01, float(os.environ.get("ETL_PROGRESS_INTERVAL", "5")))
    except ValueError:
        return 5.0


def clock(seconds: float | None) -> str:
    """``1:02:03`` or ``2:03``; ``?`` when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    s = int(seconds + 0.5)
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """What an executor reports; shown as its mode says.

    Args:
        units: the run's work units (their sizes give MB/s), or just how many there are.
        rejected: returns the rejects so far (the job knows them).
        mode: bar, log or none (default: :func:`resolve_mode`).
        owner: for each unit, the index of the input it is part of, where big inputs were
            split into parts (``etl.run.split``): inputs are counted done when all their
            parts are, so one file in 16 parts shows as one input, not 16.
    """

    def __init__(
        self,
        units: Sequence[Any] | int,
        *,
        rejected: Callable[[], int] | None = None,
        mode: str | None = None,
        owner: Any = None,
    ) -> None:
        self._units = None if isinstance(units, int) else units
        self.total = units if isinstance(units, int) else len(units)
        #: parts left of each input, when units are parts (None: a unit is an input)
        self._left: Any = None
        self._owner = owner
        if owner is not None and len(owner):
            import numpy as np

            self._left = np.bincount(owner)
            self.total = len(self._left)
        #: bytes of units 0..i-1 at [i] (made when first needed: a run shown no progress
        #: never pays for it)
        self._bytes: Any = None
        self._ranges_bytes = 0.0
        self._prefix = True
        self._rejected = rejected
        self.mode = mode or resolve_mode()
        self.done = 0
        #: units finished, in order (``finished_prefix``): what ``bytes_done`` sums
        self._units_done = 0
        self.written = 0
        self.stage = "starting"
        self.started = time.monotonic()
        # a bar is drawn at once; the first log line comes after an interval, so a short
        # run off a terminal prints no progress at all
        self._last = 0.0 if self.mode == "bar" else self.started
        self._lines = 0
        self._view: Any = None
        if self.mode == "bar":
            self._view = _Bar(self.total) if _rich() else _Line()

    # what executors report

    def finished_prefix(self, done: int, written: int) -> None:
        """Units ``0 .. done-1`` are finished (a single process works through them in order).

        Called for every unit: kept to a comparison or two unless something is shown.
        """
        if done > self._units_done:
            self._units_done = done
            if self._left is not None:
                # in order: the inputs before the one of the first unit not done are done
                done = int(self._owner[done]) if done < len(self._owner) else self.total
            self.done = min(done, self.total)
        self.update(written)

    def finished_range(self, start: int, stop: int, written: int) -> None:
        """Units ``start .. stop-1`` (a chunk a worker returned) are finished."""
        self._prefix = False
        if self._left is not None:
            import numpy as np

            inputs, parts = np.unique(self._owner[start:stop], return_counts=True)
            self._left[inputs] -= parts
            self.done = min(self.done + int((self._left[inputs] == 0).sum()), self.total)
        else:
            self.done = min(self.done + stop - start, self.total)
        sizes = self._sizes()
        if sizes is not None:
            self._ranges_bytes += float(sizes[stop] - sizes[start])
        self.update(written)

    def _sizes(self) -> Any:
        """Cumulative input sizes (None when only a count of units was given)."""
        if self._bytes is None and self._units is not None:
            import numpy as np

            sizes = [_size(u) for u in self._units]
            self._bytes = np.concatenate([[0.0], np.cumsum(np.asarray(sizes, np.float64))])
        return self._bytes

    @property
    def bytes_done(self) -> float:
        """Input bytes of the finished units."""
        if not self._prefix:
            return self._ranges_bytes
        sizes = self._sizes()
        return float(sizes[min(self._units_done, len(sizes) - 1)]) if sizes is not None else 0.0

    def update(self, written: int, stage: str = "streaming") -> None:
        """New counts; shown at most a few times a second (a log line every few seconds)."""
        self.written = max(written, self.written)
        self.stage = stage
        if self.mode == "none":
            return
        now = time.monotonic()
        if now - self._last < (0.1 if self.mode == "bar" else interval()):
            return
        self._last = now
        self._show()

    def close(self, written: int, *, ok: bool = True) -> None:
        """The stream ended: the last counts, and what comes next."""
        self.written = max(written, self.written)
        self.stage = "committing" if ok else "stopped"
        if ok:
            self.done = self.total
            self._units_done = len(self._units) if self._units is not None else self.total
            if not self._prefix:
                sizes = self._sizes()
                self._ranges_bytes = float(sizes[-1]) if sizes is not None else 0.0
        if self.mode == "log":
            if self._lines:  # the end of what was reported; nothing for a short run
                self._show()
        elif self._view is not None:
            self._view.stop(self.snapshot())

    # what is shown

    def snapshot(self) -> dict[str, Any]:
        """The counts and rates shown, as plain data."""
        elapsed = time.monotonic() - self.started
        rejected = self._rejected() if self._rejected is not None else 0
        eta = None
        if 0 < self.done < self.total and elapsed > 0:
            eta = elapsed * (self.total - self.done) / self.done
        elif self.done >= self.total:
            eta = 0.0
        return {
            "stage": self.stage,
            "inputs_done": self.done,
            "inputs": self.total,
            "written": self.written,
            "rejected": rejected,
            "articles_per_s": round(self.written / elapsed, 1) if elapsed > 0 else 0.0,
            "mb_per_s": round(self.bytes_done / 1e6 / elapsed, 2) if elapsed > 0 else 0.0,
            "elapsed_s": round(elapsed, 1),
            "eta_s": None if eta is None else round(eta, 1),
        }

    def _show(self) -> None:
        snap = self.snapshot()
        self._lines += 1
        if self.mode == "log":
            _log_line(snap)
        elif self._view is not None:
            self._view.show(snap)


def _size(unit: Any) -> int:
    """The bytes a unit reads: its range for a part of a split input, else its input's."""
    part = getattr(unit, "part", None)
    if part is not None:
        return part.end - part.start
    return getattr(getattr(unit, "input", None), "size", None) or 0


def describe(s: dict[str, Any]) -> str:
    """One line of progress in words."""
    share = f" ({100 * s['inputs_done'] / s['inputs']:.0f}%)" if s["inputs"] else ""
    return (
        f"{s['inputs_done']:,}/{s['inputs']:,} inputs{share}, {s['written']:,} written, "
        f"{s['rejected']:,} rejected, {s['articles_per_s']:,.0f} articles/s, "
        f"{s['mb_per_s']:.1f} MB/s, elapsed {clock(s['elapsed_s'])}, "
        f"ETA {clock(s['eta_s'])}, {s['stage']}"
    )


def _log_line(snap: dict[str, Any]) -> None:
    """A progress line on stderr, in the log's format (JSON lines when logs are JSON)."""
    from etl import log

    settings = log.settings()
    fmt = settings[0] if settings else ("console" if _is_terminal(sys.stderr) else "json")
    if fmt == "json":
        line = json.dumps({"event": "progress", "level": "info", **snap})
    else:
        line = f"progress: {describe(snap)}"
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr gone: progress is not worth failing a run
        pass


def _rich() -> bool:
    try:
        import rich.progress  # noqa: F401
    except ImportError:
        return False
    return True


class _Bar:
    """rich's live progress bar on stderr."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn

        self._progress = Progress(
            TextColumn("{task.fields[stage]:<10}"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[line]}"),
            console=Console(stderr=True),
            transient=False,
            auto_refresh=False,
        )
        self._task = self._progress.add_task("run", total=total, stage="starting", line="")
        self._progress.start()

    def show(self, snap: dict[str, Any]) -> None:
        self._progress.update(
            self._task,
            completed=snap["inputs_done"],
            stage=snap["stage"],
            line=describe(snap).rsplit(", ", 1)[0],
        )
        self._progress.refresh()

    def stop(self, snap: dict[str, Any]) -> None:
        self.show(snap)
        self._progress.stop()


class _Line:
    """A one-line display without rich: rewritten in place with a carriage return."""

    def show(self, snap: dict[str, Any]) -> None:
        sys.stderr.write(f"\r  {describe(snap)} ")
        sys.stderr.flush()

    def stop(self, snap: dict[str, Any]) -> None:
        sys.stderr.write(f"\r  {describe(snap)}\n")
        sys.stderr.flush()
