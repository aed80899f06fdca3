"""Test articles: a few varied samples, and the forms a test may give articles in.

A test gives articles as a list of dicts (only ``text`` is required; ``published_at`` may be
an ISO string), a pyarrow table or batch, or a list of files (read with the builtin ``text``
source). :func:`articles_batch` turns the first two into the article batch a source would
have produced (ids derived from the text, counts, ``source``, ``run_id``...).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from etl.context import Context

_SAMPLES = (
    {
        "title": "Council approves new bike lanes",
        "text": "The city council voted 7-2 on Tuesday to add 12 km of protected bike lanes "
        "downtown. Construction starts in March.",
        "publisher": "Metro Daily",
        "published_at": "2024-02-06T18:30:00+00:00",
        "authors": ["Ana Lopez"],
        "language": "en",
    },
    {
        "title": "Storm closes mountain pass",
        "text": "Heavy snow closed the northern pass overnight. Officials expect to reopen "
        "the road by Friday if the weather clears.",
        "publisher": "Valley News",
        "published_at": "2024-02-07T07:05:00+00:00",
        "authors": ["Sam Reed", "Kim Cho"],
        "language": "en",
    },
    {
        "title": "Local bakery wins national prize",
        "text": "A family bakery on Elm Street won the national bread award for its rye "
        "sourdough, beating 340 entries.",
        "publisher": "Metro Daily",
        "published_at": "2024-02-08T12:00:00+00:00",
        "authors": [],
        "language": "en",
    },
    {
        "title": "Election turnout hits record",
        "text": "Turnout in Sunday's regional election reached 71 percent, the highest since "
        "records began, the electoral office said.",
        "publisher": "Valley News",
        "published_at": "2024-02-11T21:40:00+00:00",
        "authors": ["Kim Cho"],
        "language": "en",
    },
    {
        "title": None,
        "text": "Short note.",
        "publisher": None,
        "published_at": None,
        "authors": None,
        "language": None,
    },
)


def sample_articles(n: int = 5) -> list[dict[str, Any]]:
    """Small, varied articles to feed a plugin.

    Args:
        n: how many; past five they repeat with a numbered suffix on the text (so every
            article still has its own id).

    Returns:
        A list of ``n`` dicts with the keys ``title``, ``text``, ``publisher``,
        ``published_at`` (an ISO string), ``authors`` (a list) and ``language``; the fifth
        has only a ``text`` (every other value None).
    """
    out = []
    for i in range(n):
        article = dict(_SAMPLES[i % len(_SAMPLES)])
        if i >= len(_SAMPLES):
            article["text"] = f"{article['text']} ({i})"
        out.append(article)
    return out


def _timestamp(value: Any) -> Any:
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return value


def articles_batch(articles: Any, ctx: Context) -> pa.RecordBatch:
    """Dicts or a table as one article batch, core columns derived as a source's would be.

    Args:
        articles: a list of dicts (each with a ``text``), or a pyarrow table or batch.
        ctx: the context whose ``articles()`` builds the batch (it sets ``source`` and
            ``run_id``).

    Returns:
        One ``pyarrow.RecordBatch`` of the article schema, plus any extra columns given, in
        the order first seen.
    """
    import pyarrow as pa

    from etl.schema import ARTICLE_SCHEMA, conform

    if isinstance(articles, pa.RecordBatch):
        articles = pa.Table.from_batches([articles])
    if isinstance(articles, pa.Table):
        if set(ARTICLE_SCHEMA.names) <= set(articles.column_names):
            table = articles.combine_chunks()
            if not table.num_rows:
                return pa.RecordBatch.from_pylist([], schema=ARTICLE_SCHEMA)
            batch = table.to_batches()[0]
            extra = [n for n in batch.schema.names if n not in ARTICLE_SCHEMA.names]
            core = conform(batch, ARTICLE_SCHEMA)
            for name in extra:
                core = core.append_column(batch.schema.field(name), batch.column(name))
            return core
        rows = articles.to_pylist()
    else:
        rows = [dict(a) for a in articles]
    for i, row in enumerate(rows):
        if "text" not in row:
            raise ValueError(f"article #{i + 1} has no 'text': {sorted(row)}")
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    stamps = {f.name for f in ARTICLE_SCHEMA if pa.types.is_timestamp(f.type)}
    core = {
        k: [_timestamp(r.get(k)) if k in stamps else r.get(k) for r in rows]
        for k in keys
        if k in ARTICLE_SCHEMA.names
    }
    batch = ctx.articles(**core)
    for name in keys:
        if name not in ARTICLE_SCHEMA.names:
            batch = batch.append_column(name, pa.array([r.get(name) for r in rows]))
    return batch


def is_files(articles: Any) -> bool:
    """True when ``articles`` is a non-empty list of paths (to read with the ``text`` source)."""
    return (
        isinstance(articles, Sequence)
        and not isinstance(articles, str)
        and len(articles) > 0
        and all(isinstance(a, str | os.PathLike) for a in articles)
    )
