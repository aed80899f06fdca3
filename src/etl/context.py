"""What a plugin sees of the run: the run's facts, and a context per unit or batch.

A :class:`Context` is how a plugin reports a bad record (``ctx.reject``), counts something
for the run summary (``ctx.count``), and builds article batches (``ctx.articles``). Rejects
are plain rows, so they can cross process boundaries and land in the dataset's rejects table.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from etl.schema import ARTICLE_SCHEMA, make_articles

REJECTS_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string()),
        pa.field("plugin", pa.string()),
        pa.field("section", pa.string()),
        pa.field("input", pa.string()),
        pa.field("location", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("detail", pa.string()),
        pa.field("article_id", pa.string()),
        pa.field("rejected_at", pa.timestamp("us", tz="UTC")),
    ]
)

#: the longest ``detail`` kept in a reject row (a snippet of the bad record, an error line)
MAX_DETAIL_CHARS = 2000
#: rejects a context holds before its ``overflow`` takes them
OVERFLOW_REJECTS = 10_000


@dataclass
class RunInfo:
    """Facts about the run, the same for every plugin and every worker.

    Args:
        run_id: unique id of this run (sortable by start time).
        started_at: when the run started (UTC).
        pipeline_path: the pipeline file, if the run came from one.
        base_dir: the folder relative paths resolve against.
        full: ignore what the dataset remembers of earlier runs (``etl run --full``).
        reprocess: read every input again and replace the rows they gave before
            (``etl run --reprocess``).
    """

    run_id: str
    started_at: datetime
    pipeline_path: Path | None = None
    base_dir: Path = field(default_factory=Path.cwd)
    full: bool = False
    reprocess: bool = False
    batch_size: int = 1024
    extra: dict[str, Any] = field(default_factory=dict)


class Context:
    """Given to ``Source.read`` and ``Transform.process``.

    Args:
        run: the run's facts.
        plugin: the plugin's name.
        section: where the plugin was configured (``[[sources]] #1``).
        input: the work unit's key (path or URL) that the batches come from.
    """

    def __init__(self, run: RunInfo, plugin: str, section: str, input: str = "") -> None:
        self.run = run
        self.plugin = plugin
        self.section = section
        self.input = input
        self.rejects: list[dict[str, Any]] = []
        #: called with this context once it holds OVERFLOW_REJECTS rejects, to take them
        #: (the streamer moves them to the run's rejects, which spill to disk); None: keep
        self.overflow: Callable[[Context], None] | None = None
        self.counters: Counter[str] = Counter()
        #: content hash (etl.store.content_hash) of an input's raw bytes, by input key, when the source had them in
        #: memory anyway: the sink remembers inputs without reading them a second time
        self.digests: dict[str, str] = {}

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def batch_size(self) -> int:
        return self.run.batch_size

    def articles(
        self, schema: pa.Schema = ARTICLE_SCHEMA, *, lf_only: bool = False, **columns: Any
    ) -> pa.RecordBatch:
        """An article batch from the given columns; see :func:`etl.schema.make_articles`.

        ``lf_only=True``: the source knows its text has no CR (newlines are normalised
        already), which saves a pass over the text.
        """
        return make_articles(
            columns,
            source=columns.pop("source", None) or self.plugin,
            run_id=self.run.run_id,
            ingested_at=self.run.started_at,
            schema=schema,
            lf_only=lf_only,
        )

    def reject(
        self,
        reason: str,
        *,
        location: str | None = None,
        detail: str | None = None,
        input: str | None = None,
        article_id: str | None = None,
    ) -> None:
        """Record a bad record or file; it goes to the rejects table, the run goes on.

        Args:
            reason: a short, stable phrase (``"empty file"``, ``"malformed JSON"``); the
                summary groups rejects by it.
            location: where in the input (``"line 12"``, ``"record 3"``, ``"offset 4096"``).
            detail: more about it (an error message, a snippet); truncated.
            input: the input, if not the work unit's own key.
            article_id: the article's id, when a transform rejects an article.
        """
        if detail is not None and len(detail) > MAX_DETAIL_CHARS:
            detail = detail[:MAX_DETAIL_CHARS] + "…"
        self.rejects.append(
            {
                "run_id": self.run.run_id,
                "plugin": self.plugin,
                "section": self.section,
                "input": input if input is not None else self.input,
                "location": location,
                "reason": reason,
                "detail": detail,
                "article_id": article_id,
                "rejected_at": datetime.now(UTC),
            }
        )
        if self.overflow is not None and len(self.rejects) >= OVERFLOW_REJECTS:
            self.overflow(self)

    def count(self, key: str, n: int = 1) -> None:
        """Add ``n`` to a named counter shown in the run summary (e.g. dropped by a filter)."""
        self.counters[key] += n

    def take_rejects(self) -> list[dict[str, Any]]:
        rejects, self.rejects = self.rejects, []
        return rejects


def rejects_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=REJECTS_SCHEMA)
