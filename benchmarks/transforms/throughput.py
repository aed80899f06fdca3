"""Throughput of each transform, in articles per second, on generated 2-8 KB news articles.

    python benchmarks/transforms/throughput.py [--articles 4096] [--repeat 3]

Each transform's ``process`` runs on the same batches of 1,024 articles (built once, as a
source would build them), outside the runner, so the numbers are the transform's own cost.
The best of ``--repeat`` passes is reported (the machine is shared; the best pass is the
least disturbed). Transforms that keep state across batches (dedup) are reopened per pass.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from corpus import corpus  # noqa: E402

from etl.context import Context, RunInfo  # noqa: E402
from etl.plugins import get_plugin_manager  # noqa: E402
from etl.schema import ARTICLE_SCHEMA, conform, make_articles  # noqa: E402
from etl.stream import INPUT_COLUMN  # noqa: E402

FNS = HERE / "fns.py"

CASES = [
    ("normalize", "normalize", {}),
    ("language", "language", {}),
    ("language (max_chars 300)", "language", {"max_chars": 300}),
    # the generated articles are made-up words, on which the model is never sure, so every
    # text is read to max_chars; real news is what users run (see real_batches)
    ("language (real news in 15 languages)", "language", {}),
    ("dedup exact", "dedup", {}),
    ("dedup near (256 bins)", "dedup", {"method": "near"}),
    ("filter", "filter", {"where": "word_count >= 50 and language in ('en', 'de')"}),
    ("quality", "quality", {}),
    ("fields", "fields", {"derive": {"published_date": "date(published_at)", "host": "host(uri)"}}),
    ("python per batch", "python", {"function": f"{FNS}:title_case_batch"}),
    ("python per article", "python", {"function": f"{FNS}:title_case_article"}),
]


def batches(n: int, size: int = 1024) -> list[pa.RecordBatch]:
    texts, _ = corpus(n, seed=3)
    titles = [t.split("\n", 1)[0] for t in texts]
    bodies = [t.split("\n\n", 1)[1] for t in texts]
    stamp = datetime(2024, 3, 1, tzinfo=UTC)
    out = []
    for start in range(0, n, size):
        b = make_articles(
            {
                "text": bodies[start : start + size],
                "title": titles[start : start + size],
                "uri": [f"https://news.example/a/{i}" for i in range(start, min(start + size, n))],
                "published_at": stamp,
                "language": "en",
            },
            source="bench",
        )
        out.append(b)
    return out


GOLD_TEXTS = HERE.parents[1] / "tests" / "data" / "transforms" / "language_gold.jsonl"


def real_batches(n: int, size: int = 1024) -> list[pa.RecordBatch]:
    """``n`` real articles: the 63 multilingual gold texts, over and over."""
    texts = [json.loads(line)["text"] for line in GOLD_TEXTS.read_text("utf-8").splitlines()]
    texts = (texts * (n // len(texts) + 1))[:n]
    return [
        make_articles({"text": texts[start : start + size]}, source="bench")
        for start in range(0, n, size)
    ]


def text_bytes(batches: list[pa.RecordBatch]) -> int:
    return sum(pc.sum(pc.binary_length(b.column("text"))).as_py() or 0 for b in batches)


def measure(
    base: list[pa.RecordBatch], repeat: int, only: str = ""
) -> list[tuple[str, float, float, float]]:
    """(case, best wall seconds, CPU seconds of that pass, text bytes per article) for each
    case over ``base``."""
    pm = get_plugin_manager()
    run = RunInfo(run_id="bench", started_at=datetime.now(UTC))
    results = []
    for label, name, options in CASES:
        if only and label not in only.split(","):
            continue
        transform = pm.get("transform", name)(options, section=label)
        schema = transform.output_schema(ARTICLE_SCHEMA)
        rows = real_batches(sum(b.num_rows for b in base)) if "real news" in label else base
        prepared = [
            conform(b, schema).append_column(INPUT_COLUMN, pa.array([0] * b.num_rows, pa.int32()))
            for b in rows
        ]
        best, best_cpu = float("inf"), float("inf")
        for _ in range(repeat):
            transform.open(run)
            ctx = Context(run, name, label)
            t0, c0 = time.perf_counter(), time.process_time()
            for b in prepared:
                transform.process(b, ctx)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            if wall < best:
                best, best_cpu = wall, cpu
            transform.close()
        results.append((label, best, best_cpu, text_bytes(rows) / sum(b.num_rows for b in rows)))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated case names")
    args = parser.parse_args()
    base = batches(args.articles)
    size = text_bytes(base) / args.articles
    print(f"{args.articles} articles, mean {size / 1024:.1f} KB of text, batches of 1024")
    print(
        "| transform | articles/s | articles per CPU second | MB/s of text |\n|---|---:|---:|---:|"
    )
    for label, wall, cpu, size in measure(base, args.repeat, args.only):
        rate = args.articles / wall
        print(
            f"| {label} | {rate:,.0f} | {args.articles / cpu:,.0f} | {rate * size / 1e6:,.1f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
