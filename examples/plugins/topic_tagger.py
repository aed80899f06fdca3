"""An example local-file plugin: a transform that tags articles with topics.

A pipeline loads it with ``plugins = ["plugins/topic_tagger.py"]`` (relative to the pipeline
file); nothing needs installing. See examples/local_plugin.toml and docs/plugins.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from etl import Option, Transform, hookimpl
from etl.schema import extend_schema

if TYPE_CHECKING:
    from etl import Context


class TopicTagger(Transform):
    """Tags each article with the topics whose keywords its text mentions."""

    name = "topic_tagger"
    options = (
        Option(
            "topics",
            "dict",
            required=True,
            help='topic -> keywords, e.g. {diplomacy = ["embassy", "summit"]}',
        ),
        Option("column", "str", "tags", help="the list<string> column to add"),
        Option("drop_untagged", "bool", False, help="drop articles that get no tag"),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for topic, words in self.opts.topics.items():
            if not isinstance(words, list) or not all(isinstance(w, str) and w for w in words):
                raise self.error(
                    f"option 'topics': {topic} must be a list of keywords",
                    hint=f'e.g. {topic} = ["word", "another word"]',
                )

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        return extend_schema(schema, [pa.field(self.opts.column, pa.list_(pa.string()))])

    def process(self, batch: pa.RecordBatch, ctx: Context) -> pa.RecordBatch:
        text = pc.utf8_lower(pc.fill_null(batch.column("text"), ""))
        hits = {}
        for topic, words in self.opts.topics.items():
            found = pa.repeat(False, batch.num_rows)
            for word in words:
                found = pc.or_(found, pc.match_substring(text, word.lower()))
            hits[topic] = found.to_pylist()
            ctx.count(f"topic_tagger:{topic}", pc.sum(found).as_py() or 0)
        tags = [[t for t in hits if hits[t][i]] for i in range(batch.num_rows)]
        # the declared column is already in the batch (null): fill it in place
        index = batch.schema.get_field_index(self.opts.column)
        column = pa.array(tags, pa.list_(pa.string()))
        batch = batch.set_column(index, self.opts.column, column)
        if self.opts.drop_untagged:
            keep = pc.greater(pc.list_value_length(column), 0)
            ctx.count("topic_tagger:untagged", batch.num_rows - (pc.sum(keep).as_py() or 0))
            batch = batch.filter(keep)
        return batch


@hookimpl
def etl_register_plugins(register):
    register(TopicTagger)
