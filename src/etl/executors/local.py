"""In-process streaming: read, transform and write one batch at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from etl.plugin import Executor

if TYPE_CHECKING:
    from etl.executors.api import Job
    from etl.stream import StreamStats


class LocalExecutor(Executor):
    """One process, streaming: memory holds one batch per stage, whatever the corpus size."""

    name = "local"
    options = ()

    def execute(self, job: Job) -> StreamStats:
        progress = job.progress()
        ok = False
        try:
            job.stream_here(progress.finished_prefix if progress.mode != "none" else None)
            ok = True
        finally:
            progress.close(job.written(), ok=ok)
        return job.stats()
