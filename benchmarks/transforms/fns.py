"""User functions the throughput benchmark calls through the ``python`` transform."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

import etl


@etl.per_batch
def title_case_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    index = batch.schema.get_field_index("title")
    return batch.set_column(index, "title", pc.utf8_title(batch.column("title")))


@etl.per_article
def title_case_article(article: dict) -> dict:
    return {"title": (article["title"] or "").title()}
