"""Local plugins for the analytics examples: a deterministic article generator and two
transforms that add columns (to grow a dataset's schema across runs).

Loaded by a pipeline with ``plugins = ["news_plugins.py"]``; nothing needs installing.

* source ``synthetic_news``: ``count`` articles from ``seed`` - the same seed gives the same
  articles (so the same ids) on every machine. Spread over publishers, languages and a year
  of ``published_at``; every ``dup_every``-th article repeats an earlier text (the sink drops
  it as a duplicate) and every ``reject_every``-th record is rejected as "empty text".
* transform ``enrich``: adds ``sentences`` (int64) and ``length_bucket`` (string).
* transform ``constant_column``: adds one column of a given type (to show a refused change).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from etl import Option, Source, Transform, hookimpl
from etl.plugin import InputRef, WorkUnit
from etl.schema import extend_schema

if TYPE_CHECKING:
    from etl import Context

PUBLISHERS = ("Xinhua", "Reuters", "Global Times", "AP", "BBC", "Le Monde", "El País")
LANGUAGES = {"Le Monde": "fr", "El País": "es"}
TOPICS = ("trade", "summit", "football", "election", "climate", "markets", "science", "health")
WORDS = [
    "the",
    "a",
    "of",
    "to",
    "in",
    "and",
    "on",
    "for",
    "with",
    "at",
    "by",
    "from",
    "officials",
    "said",
    "report",
    "new",
    "year",
    "talks",
    "government",
    "minister",
    "city",
    "week",
    "people",
    "country",
    "economic",
    "growth",
    "policy",
    "team",
    "match",
    "market",
    "prices",
    "energy",
    "research",
    "study",
    "hospital",
    "voters",
    "campaign",
    "agreement",
]


class SyntheticNews(Source):
    """Deterministic synthetic news articles (publishers, languages, dates) for examples."""

    name = "synthetic_news"
    options = (
        Option("count", "int", 1000, help="articles to generate"),
        Option("per_unit", "int", 500, help="articles per work unit"),
        Option("seed", "int", 7, help="the same seed gives the same articles"),
        Option("start", "str", "2024-01-01", help="first publication day (ISO date)"),
        Option("days", "int", 365, help="publication days spread over this many days"),
        Option(
            "dup_every", "int", 40, help="every n-th article repeats an earlier text (0: never)"
        ),
        Option("reject_every", "int", 97, help="every n-th record is rejected (0: never)"),
    )

    def units(self):
        n, per = self.opts.count, max(1, self.opts.per_unit)
        for i, first in enumerate(range(0, n, per)):
            key = f"synthetic://seed-{self.opts.seed}/unit-{i:04d}"
            yield WorkUnit(InputRef(key), data=(first, min(n, first + per)))

    def read(self, unit: WorkUnit, ctx: Context):
        first, last = unit.data
        start = datetime.fromisoformat(self.opts.start).replace(tzinfo=UTC)
        cols: dict[str, list] = {
            k: [] for k in ("text", "title", "uri", "published_at", "publisher", "language")
        }
        cols["authors"] = []
        for i in range(first, last):
            if self.opts.reject_every and i % self.opts.reject_every == self.opts.reject_every - 1:
                ctx.reject("empty text", location=f"record {i}", detail="no body")
                continue
            # a duplicate repeats the text of an article 7 before it (same id)
            j = i - 7 if self.opts.dup_every and i % self.opts.dup_every == 0 and i >= 7 else i
            rng = random.Random(self.opts.seed * 1_000_003 + j)
            topic = rng.choice(TOPICS)
            publisher = PUBLISHERS[rng.randrange(len(PUBLISHERS))]
            words = rng.randint(40, 900)
            body = " ".join(rng.choice(WORDS) for _ in range(words))
            title = f"{topic.title()} update {j}: {rng.choice(WORDS)} {rng.choice(WORDS)}"
            cols["text"].append(f"{title}\n\n{body} ({topic}, article {j}).")
            cols["title"].append(title)
            cols["uri"].append(f"https://news.example/{publisher.lower().replace(' ', '-')}/{j}")
            cols["published_at"].append(
                start + timedelta(days=rng.randrange(self.opts.days), minutes=rng.randrange(1440))
            )
            cols["publisher"].append(publisher)
            cols["language"].append(LANGUAGES.get(publisher, "en"))
            cols["authors"].append([f"Reporter {rng.randrange(20)}"])
        if cols["text"]:
            yield ctx.articles(**cols)


class Enrich(Transform):
    """Adds sentences (int64) and length_bucket (short/medium/long) columns."""

    name = "enrich"
    options = ()

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        return extend_schema(
            schema, [pa.field("sentences", pa.int64()), pa.field("length_bucket", pa.string())]
        )

    def process(self, batch: pa.RecordBatch, ctx: Context) -> pa.RecordBatch:
        text = pc.fill_null(batch.column("text"), "")
        sentences = pc.add(pc.count_substring(text, "."), 0).cast(pa.int64())
        words = pc.fill_null(batch.column("word_count"), 0)
        bucket = pc.if_else(
            pc.less(words, 200),
            "short",
            pc.if_else(pc.less(words, 600), "medium", "long"),
        )
        batch = batch.set_column(batch.schema.get_field_index("sentences"), "sentences", sentences)
        return batch.set_column(
            batch.schema.get_field_index("length_bucket"), "length_bucket", bucket
        )


class ConstantColumn(Transform):
    """Adds one column holding the same value in every row, of a declared type."""

    name = "constant_column"
    options = (
        Option("column", "str", required=True, help="the column to add"),
        Option("type", "str", "string", help="string, int32, int64 or float64"),
        Option("value", "any", None, help="the value in every row"),
    )

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        types = {"string": pa.string(), "int32": pa.int32(), "int64": pa.int64()}
        types["float64"] = pa.float64()
        self.type = types[self.opts.type]
        return extend_schema(schema, [pa.field(self.opts.column, self.type)])

    def process(self, batch: pa.RecordBatch, ctx: Context) -> pa.RecordBatch:
        column = pa.array([self.opts.value] * batch.num_rows, self.type)
        index = batch.schema.get_field_index(self.opts.column)
        return batch.set_column(index, self.opts.column, column)


@hookimpl
def etl_register_plugins(register):
    register(SyntheticNews)
    register(Enrich)
    register(ConstantColumn)
