"""Checkpointed runs: the plan's units in slices, each slice committed as a run of its own.

With ``[run] checkpoint`` a run does not wait for its last input to commit: it runs its
units in slices and commits each slice through the store's protocol, with its own run id
(``<run>``, then ``<run>-c0002``...), manifest, rejects, per-input table and id file, under
the writer lock it holds for the whole run. The inputs memory then holds every input of a
committed slice, so a run interrupted (Ctrl-C, SIGTERM, ``kill -9``, a crash) loses at most
the slice it was in, and the next run reads only what no checkpoint committed.

A slice is a number of inputs, or, for a duration, as many inputs as the rate of the slices
before says fit into it: the check happens between slices (the executor runs a slice at a
time), not inside one, so a checkpoint every ``"5m"`` commits about every five minutes.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from etl.accounting import InputRows, changed
from etl.errors import EtlError

if TYPE_CHECKING:
    from etl.config import Checkpoint
    from etl.run.plan import Plan

#: the first slice of a run checkpointed by time: small, to measure the rate cheaply
FIRST_TIMED_SLICE = 16
#: a timed slice is at most this many times the one before (its rate may be a poor guess)
MAX_GROWTH = 8
#: counts the run summary adds up over its checkpoints
SUMMED = (
    "inputs",
    "read",
    "written",
    "duplicates",
    "dropped",
    "rejected",
    "replaced",
    "inputs_to_retry",
    "inputs_other_pipeline",
    "reread",
)


def checkpoint_id(run_id: str, number: int) -> str:
    """The run id of a run's checkpoint ``number`` (from 1): the run's own id for the first.

    Later ones add ``-c0002``...: sorted after the first and before any later run, and
    among themselves in order (up to 9999 checkpoints; manifests sort by finish time anyway).
    """
    return run_id if number == 1 else f"{run_id}-c{number:04d}"


class Slices:
    """The ``(start, stop)`` of each slice of a run's ``total`` units, in order.

    Without a checkpoint there is one slice, all units (also when there are none: the run
    still commits its manifest). For a duration, tell :meth:`took` how long each slice took
    (streaming and commit): the next slice is sized from that rate.

    Args:
        total: the run's units.
        checkpoint: the pipeline's ``[run] checkpoint``, or None.
    """

    def __init__(self, total: int, checkpoint: Checkpoint | None) -> None:
        self.total = total
        self.checkpoint = checkpoint
        self._last = 0
        self._rate: float | None = None

    def __iter__(self) -> Iterator[tuple[int, int]]:
        start = 0
        while True:
            stop = min(self.total, start + self._size())
            self._last = stop - start
            yield start, stop
            start = stop
            if start >= self.total:
                return

    def _size(self) -> int:
        every = self.checkpoint
        if every is None:
            return self.total
        if every.inputs is not None:
            return every.inputs
        if self._rate is None:
            return FIRST_TIMED_SLICE
        assert every.seconds is not None
        fits = math.floor(self._rate * every.seconds)
        return max(1, min(fits, self._last * MAX_GROWTH))

    def took(self, seconds: float) -> None:
        """The last slice took this long: the next one is sized to the checkpoint's duration."""
        if self._last:
            self._rate = self._last / max(seconds, 1e-6)


def part_of(plan: Plan, number: int, start: int, stop: int, last: bool) -> Plan:
    """The plan of one slice: its units, and its checkpoint's run id (articles, rejects,
    staging and manifest carry it). Plugins are the run's; the first slice alone counts
    what the run did before reading (inputs skipped, rows an overwrite replaces)."""
    units = plan.units if (start, stop) == (0, len(plan.units)) else plan.units[start:stop]
    first = number == 1
    part = replace(
        plan,
        run=replace(plan.run, run_id=checkpoint_id(plan.run.run_id, number)),
        units=units,
        skipped_inputs=plan.skipped_inputs if first else 0,
        stale_inputs=plan.stale_inputs if first else 0,
        replaced_rows=plan.replaced_rows if first else 0,
    )
    if plan.pipeline.checkpoint is not None:
        part.run.extra = {
            **plan.run.extra,
            "checkpoint": {
                "run": plan.run.run_id,
                "number": number,
                "inputs_before": start,
                "last": last,
            },
        }
    return part


def total(plan: Plan, parts: list[dict[str, Any]], started: float) -> dict[str, Any]:
    """The summary of a whole run from its checkpoints' summaries (one per committed slice).

    A run without checkpoints has one part: its summary is that part's. A checkpointed run's
    summary adds the counts up, says how many checkpoints were committed (``checkpoints``)
    and lists their run ids (``run_ids``); its ``run_id`` is the run's (the first one's).
    """
    if plan.pipeline.checkpoint is None:
        return parts[0]
    reasons: Counter[str] = Counter()
    counters: Counter[str] = Counter()
    transforms: dict[str, dict[str, int]] = {}
    timings: Counter[str] = Counter()
    seconds: Counter[str] = Counter()
    first: dict[str, list[str]] = {}
    for part in parts:
        seconds.update(part.get("plugin_seconds", {}))
        for reason, places in part.get("rejects_first", {}).items():
            first[reason] = (first.get(reason, []) + places)[:3]
        reasons.update(part["rejects_by_reason"])
        counters.update(part["counters"])
        for key, rows in part["transforms"].items():
            mine = transforms.setdefault(key, {"in": 0, "out": 0})
            mine["in"] += rows["in"]
            mine["out"] += rows["out"]
        timings.update({k: v for k, v in part["timings"].items() if k != "total"})
    summary: dict[str, Any] = {
        "run_id": plan.run.run_id,
        "inputs_skipped": plan.skipped_inputs,
        **{key: sum(part.get(key, 0) for part in parts) for key in SUMMED},
        "rejects_by_reason": dict(reasons.most_common()),
        "rejects_first": first,
        "plugin_seconds": {k: round(v, 4) for k, v in seconds.items()},
        "counters": dict(counters),
        "transforms": transforms,
        "per_input": InputRows(pa.concat_tables([p["per_input"].table for p in parts])),
        "checkpoints": len(parts),
        "run_ids": [part["run_id"] for part in parts],
        "timings": {k: round(v, 4) for k, v in timings.items()},
    }
    summary["timings"]["total"] = round(time.perf_counter() - started, 4)
    summary["changed"] = changed(summary)
    return summary


def so_far(committed: list[dict[str, Any]], summary: dict[str, Any]) -> dict[str, Any]:
    """The counts of the run so far: its committed checkpoints and the slice ``summary``
    (what the reject limit of :mod:`etl.run.limits` is checked against at each commit)."""
    if not committed:
        return summary
    parts = [*committed, summary]
    counts = ("written", "duplicates", "dropped", "rejected")
    return {key: sum(part[key] for part in parts) for key in counts}


def check_checkpoint_modes(plan: Plan) -> None:
    """Refuse, before anything is read, what checkpoints cannot do.

    ``overwrite`` and ``error`` mode append after the first checkpoint (which replaced or
    created the dataset): the runner sets the sink's ``mode`` option, so the sink must have
    one. ``--reprocess`` replaces the old rows of the inputs it reads again at the commit;
    split over checkpoints, an article that moved from one input to another could be
    replaced after it was written again, so it needs one commit.
    """
    sink = plan.sink
    if plan.pipeline.checkpoint is None:
        return
    if plan.run.reprocess:
        raise sink.error(
            "etl run --reprocess replaces the rows of every input it reads in one commit, "
            "so it does not take [run] checkpoint",
            hint="add --set run.checkpoint=0 to this command",
        )
    if sink.mode() in ("overwrite", "error") and not any(
        option.name == "mode" for option in type(sink).options
    ):
        raise sink.error(
            f"mode {sink.mode()!r} with [run] checkpoint: the sink has no `mode` option to "
            "append with after the first checkpoint",
            hint="run without [run] checkpoint, or in append mode",
        )


def checkpoints_append(plan: Plan) -> None:
    """After the first checkpoint an overwrite or error run appends: the first replaced or
    created the dataset, the later ones add to it (merge mode stays merge)."""
    sink = plan.sink
    if sink.mode() in ("overwrite", "error"):
        sink.opts.mode = "append"


def say_checkpoints(error: EtlError, committed: list[dict[str, Any]]) -> EtlError:
    """A failed checkpointed run's error says what its checkpoints committed before it."""
    done = [part for part in committed if "checkpoint" in part]
    if done:
        n = len(done)
        error.message += (
            f"\n  {n} checkpoint{'s' if n != 1 else ''} of this run committed before it (the "
            f"last: run {done[-1]['run_id']}) stay; the next run carries on after them"
        )
        error.args = (error.message,)
    return error
