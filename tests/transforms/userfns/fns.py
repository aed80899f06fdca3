"""Functions the python-transform tests call (named by path in their pipelines)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

import etl


@etl.per_article
def shout_title(article: dict) -> dict | None:
    if article["title"] is None:
        return None  # dropped
    return {"title": article["title"].upper(), "title_words": len(article["title"].split())}


@etl.per_article
def fails_on_short(article: dict) -> dict:
    if article["word_count"] < 50:
        raise ValueError(f"too short: {article['word_count']} words")
    return {}


@etl.per_article
def changes_id(article: dict) -> dict:
    return {"id": "0" * 32}


@etl.per_batch
def upper_first_line(batch):
    index = batch.schema.get_field_index("text")
    text = pc.utf8_upper(batch.column("text"))
    return batch.set_column(index, "text", text)


def keep_long(batch: pa.RecordBatch) -> pa.RecordBatch:
    return batch.filter(pc.greater_equal(batch.column("word_count"), 50))


@etl.per_batch
def batch_fails_on_short(batch):
    counts = batch.column("word_count").to_pylist()
    if min(counts) < 50:
        raise RuntimeError("a short article in this batch")
    return batch


def undeclared(x):
    return x
