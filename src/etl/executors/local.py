"""In-process streaming: read, transform and write one batch at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from etl.plugin import Executor

if TYPE_CHECKING:
    from etl.runner import Plan
    from etl.stream import StreamStats


class LocalExecutor(Executor):
    """One process, streaming: memory holds one batch per stage, whatever the corpus size."""

    name = "local"
    options = ()

    def execute(self, plan: Plan) -> tuple[StreamStats, object]:
        from etl.progress import Progress
        from etl.runner import Totals, write_batch

        streamer = plan.streamer()
        totals = Totals()
        progress = Progress(len(plan.units))

        def units():
            for index, unit in enumerate(plan.units):
                progress.update(index, totals.written)
                yield index, unit

        try:
            for batch in streamer.stream(units()):
                write_batch(plan, totals, batch)
        finally:
            progress.close(len(plan.units), totals.written)
        return streamer.stats, totals
