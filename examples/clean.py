"""User code for the ``python`` transform in examples/clean.toml (and its tests).

One function per way of declaring how it is called: a decorator or an annotation.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

import etl


@etl.per_article
def tag_topic(article: dict) -> dict | None:
    """Per article: a topic from the title and text (None would drop the article)."""
    text = (article["title"] or "") + " " + article["text"]
    lowered = text.lower()
    if "nuclear" in lowered or "military" in lowered:
        topic = "security"
    elif "church" in lowered or "pope" in lowered:
        topic = "religion"
    else:
        topic = "other"
    return {"topic": topic}


def strip_signature(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Per batch (declared by the annotation): drop a trailing "(Global Times)" line."""
    index = batch.schema.get_field_index("text")
    text = pc.replace_substring_regex(batch.column("text"), r"\n*\(Global Times\)\s*$", "")
    return batch.set_column(index, "text", text)
