"""Byte-range units: big inputs split into parts that run on different workers.

The framework splits, never the executor: when the executor says it runs units in parallel
(:meth:`~etl.plugin.Executor.split_bytes` is not 0), each input larger than that whose
source implements :class:`~etl.plugin.SplitsInputs` becomes parts (``WorkUnit.part`` set).
The executor runs the parts like any units; the :class:`~etl.run.job.DriverJob` maps what
each part gave back to its input (:class:`Parts`) before it counts anything, so the
account, the inputs memory, the id index and the rejects see inputs only. See
docs/design.md, "Byte-range units".
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from etl import log
from etl.accounting import Totals
from etl.context import Context
from etl.errors import EtlError, PluginError
from etl.plugin import SplitsInputs, WorkUnit
from etl.stream import NOTHING_REASON, StreamStats

if TYPE_CHECKING:
    from etl.run.plan import Plan


class Parts:
    """The units an executor runs and, for each, the index of the input it belongs to.

    Args:
        units: what the executor runs (parts in place of the inputs that were split).
        owner: for each unit, the index of its input in the plan's units; None when no
            input was split (the units are the inputs).
    """

    def __init__(self, units: Sequence[WorkUnit], owner: np.ndarray | None) -> None:
        self.units = units
        self.owner = owner

    def counts(self) -> tuple[int, int]:
        """(inputs split, parts they became)."""
        if self.owner is None:
            return 0, 0
        counts = np.bincount(self.owner)
        split = counts > 1
        return int(split.sum()), int(counts[split].sum())

    def rows(self, units: np.ndarray) -> np.ndarray:
        """Each row's input index, from its unit index."""
        return units if self.owner is None else self.owner[units]

    def totals(self, totals: Totals) -> Totals:
        """A worker's account (by unit index) by input index."""
        if self.owner is None or not len(totals.unit_written):
            return totals
        # the arrays grow by doubling: past the units they hold zeros
        n = min(len(totals.unit_written), len(self.owner))
        owner = self.owner[:n]
        size = int(owner.max()) + 1 if n else 0
        out = Totals(totals.inputs, totals.written, totals.duplicates)
        for name in ("unit_written", "unit_duplicates"):
            counts = np.zeros(size, np.int64)
            np.add.at(counts, owner, getattr(totals, name)[:n])
            setattr(out, name, counts)
        return out

    def stats(self, stats: StreamStats) -> StreamStats:
        """What the streamer counted by unit index, by input index (in place)."""
        owner = self.owner
        if owner is None:
            return stats

        def counter(counts: Counter[int]) -> Counter[int]:
            out: Counter[int] = Counter()
            for index, n in counts.items():
                out[int(owner[index])] += n
            return out

        stats.read = counter(stats.read)
        stats.dropped = counter(stats.dropped)
        stats.rejected = counter(stats.rejected)
        stats.rows_rejected = counter(stats.rows_rejected)
        stats.retry = {int(owner[i]) for i in stats.retry}
        stats.digests = {int(owner[i]): d for i, d in stats.digests.items()}
        return stats


def split_units(plan: Plan) -> Parts:
    """The plan's units with every big input of a source that splits cut into parts."""
    units = plan.units
    size = plan.executor.split_bytes()
    splitters = [isinstance(s, SplitsInputs) for s in plan.sources]
    if size <= 0 or not any(splitters):
        return Parts(units, None)
    out: list[WorkUnit] = []
    owner: list[int] = []
    split = 0
    for index, unit in enumerate(units):
        parts = [unit]
        known = unit.input.size
        if splitters[unit.source_index] and known is not None and known > size:
            parts = _split(plan, unit, math.ceil(known / size))
            split += len(parts) > 1
        out.extend(parts)
        owner.extend([index] * len(parts))
    if not split:
        return Parts(units, None)
    log.get_logger(run_id=plan.run.run_id, stage="plan").info(
        "inputs split", inputs=split, parts=len(out) - len(units) + split
    )
    return Parts(out, np.asarray(owner, np.int64))


def _split(plan: Plan, unit: WorkUnit, hint: int) -> list[WorkUnit]:
    """The source's parts of ``unit``, checked; the unit whole if splitting failed."""
    source: Any = plan.sources[unit.source_index]
    try:
        parts = list(source.split(unit, hint))
    except EtlError:
        raise
    except Exception as exc:  # read whole instead: reading reports what is wrong with it
        log.get_logger(run_id=plan.run.run_id, stage="plan").debug(
            "split failed", input=unit.key, error=f"{type(exc).__name__}: {exc}"
        )
        return [unit]
    if len(parts) == 1 and parts[0] is unit:
        return parts
    _check(source, unit, parts)
    return parts


def _check(source: Any, unit: WorkUnit, parts: list[WorkUnit]) -> None:
    """Parts that cover the input in order, without gap or overlap, else PluginError."""
    problem = None
    if not parts:
        problem = "no part"
    elif any(p.part is None or p.input != unit.input for p in parts):
        problem = "a part without `part`, or with another `input`"
    else:
        ranges = [(p.part.start, p.part.end) for p in parts if p.part is not None]
        if ranges[0][0] != 0 or any(a[1] != b[0] for a, b in zip(ranges, ranges[1:], strict=False)):
            problem = f"ranges {ranges} leave a gap or overlap"
        elif unit.input.size is not None and ranges[-1][1] != unit.input.size:
            problem = f"ranges end at {ranges[-1][1]}, the input has {unit.input.size} bytes"
    if problem is not None:
        raise PluginError(
            f"plugin '{source.name}' ({source.section}): split({unit.key!r}) returned {problem}",
            hint="parts must cover the input in order: the first starts at 0, each starts "
            "where the one before ends, the last ends at the input's size",
        )


def nothing_rejects(plan: Plan, parts: Parts, stats: StreamStats) -> None:
    """Reject each split input whose parts gave no row and no reject, as a whole input that
    gives nothing is (a part alone may give nothing: the streamer leaves parts alone)."""
    if parts.owner is None:
        return
    inputs, counts = np.unique(parts.owner, return_counts=True)
    for index in inputs[counts > 1].tolist():  # a whole input was checked as it was read
        if stats.read.get(index) or stats.rejected.get(index):
            continue
        unit = plan.units[index]
        source = plan.sources[unit.source_index]
        ctx = Context(plan.run, source.name, source.section, unit.key)
        ctx.reject(NOTHING_REASON, detail="the input gave no articles and no reject")
        stats.rejects.extend(ctx.take_rejects())
        stats.rejected[index] += 1
