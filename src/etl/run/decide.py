"""The driver's side of :class:`~etl.plugin.DecidesOnDriver`: decide on workers' notes.

Workers ship the notes of the transform that decides on the driver (``etl.decisions``);
the job calls :meth:`Decider.dropped` on each chunk's, strictly in chunk order (as it
answers the id questions and adopts files), on the transform the driver opened: one index
for the whole run, fed in unit order, as ``local`` feeds it. What it drops is counted as
that transform's: its counters, its rows out, and each row as dropped from its input.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from etl.context import Context
from etl.errors import PluginError

if TYPE_CHECKING:
    from etl.decisions import Noted
    from etl.run.plan import Plan
    from etl.stream import StreamStats


class Decider:
    """Runs the deciding transform's ``decide`` on the driver, counting into ``stats``.

    Args:
        plan: the run's plan (its transforms are opened on the driver).
        stats: the job's merged stats (by input index).
    """

    def __init__(self, plan: Plan, stats: StreamStats) -> None:
        from etl.run.plan import deciding

        self.stats = stats
        found = deciding(plan) if plan.executor.name != "local" else []
        self.transform: Any = found[0] if found else None
        self.ctx = (
            Context(plan.run, self.transform.name, self.transform.section)
            if self.transform is not None
            else None
        )
        #: decisions given with an answer, kept for the chunk's adoption
        self.given: dict[int, np.ndarray] = {}

    def dropped(self, noted: Noted) -> np.ndarray:
        """For each numbered row of a chunk, whether the transform drops it."""
        transform, ctx = self.transform, self.ctx
        if transform is None or ctx is None or transform.section != noted.section:
            raise PluginError(
                f"a worker took notes for the transform {noted.section}, which does not "
                "decide on the driver here",
                hint="install the same plugins on every worker as on the driver",
            )
        out = np.zeros(noted.rows, bool)
        offset = 0
        started = time.perf_counter()
        for notes, size in zip(noted.notes, noted.sizes, strict=True):
            verdict = transform.decide(notes, ctx)
            if len(verdict) != size:
                raise PluginError(
                    f"plugin '{transform.name}' ({transform.section}): decide returned "
                    f"{len(verdict)} answers for {size} rows",
                    hint="return one answer per row of the notes: None, or the kept row's id",
                )
            out[offset : offset + size] = [v is not None for v in verdict]
            offset += size
        self.stats.seconds[transform.section] += time.perf_counter() - started
        if ctx.counters:
            self.stats.counters.update(ctx.counters)
            ctx.counters.clear()
        ctx.take_rejects()  # decide rejects nothing: its rows are dropped, and counted so
        rows = self.stats.transform_rows.setdefault(transform.section, [0, 0])
        rows[1] -= int(out.sum())
        return out

    def decide(self, chunk: int, noted: Noted) -> np.ndarray:
        """The decision of a chunk: given with its answer, or taken now."""
        given = self.given.pop(chunk, None)
        return given if given is not None else self.dropped(noted)

    def count_dropped(self, inputs: np.ndarray) -> None:
        """Rows it dropped that reached the end of the chain, by input index."""
        if len(inputs):
            counts = np.bincount(inputs)
            for index in np.flatnonzero(counts).tolist():
                self.stats.dropped[index] += int(counts[index])
