"""Every bundled transform's throughput and accuracy, beside an ingest-only run of the same
corpus, in one command.

    python benchmarks/transforms/report.py [--articles 4096] [--repeat 3]

* Ingest only: the corpus (throughput.py's generated articles, one text file each) through
  ``etl run`` text -> parquet as a child process, ``--repeat`` times; the median wall time
  and its CPU time (user + system, from ``os.wait4``). Its rate is what the ratios divide.
* Throughput: throughput.py's cases (each transform's ``process`` on the same batches of
  1,024 articles, best of ``--repeat``), articles per wall second and per CPU second.
* Accuracy: ``language`` on the multilingual gold texts and on the 436 spaCy example
  sentences (language_set.py), at the default ``max_chars`` and at 300; near dedup's recall
  and false positives on near_dedup.py's generated corpus (4,000 articles, threshold 0.8).

The machine is shared: compare the ratios measured in one run. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import language_set  # noqa: E402
import near_dedup  # noqa: E402
import pyarrow as pa  # noqa: E402
import throughput  # noqa: E402
from corpus import corpus  # noqa: E402


def ingest_only(articles: int, repeat: int) -> tuple[float, float]:
    """(median wall seconds, its CPU seconds) of text -> parquet over ``articles`` articles
    (1: the start-up and closing of a run, nearly all of it)."""
    work = Path(tempfile.mkdtemp(prefix="etl-transforms-"))
    try:
        texts, _ = corpus(articles, seed=3)
        inputs = work / "in"
        inputs.mkdir()
        for i, text in enumerate(texts):
            (inputs / f"{i:06d}.txt").write_text(text, encoding="utf-8")
        out = work / "out"
        pipeline = work / "p.toml"
        pipeline.write_text(
            f'[[sources]]\nplugin = "text"\npaths = ["{inputs}"]\n\n'
            f'[sink]\nplugin = "parquet"\npath = "{out}"\nmode = "overwrite"\n',
            encoding="utf-8",
        )
        samples = []
        for _ in range(repeat):
            shutil.rmtree(out, ignore_errors=True)
            started = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, "-m", "etl.cli", "run", "-q", str(pipeline)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - started
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit(f"ingest-only run failed: {proc.stderr.read().decode()[-2000:]}")
            samples.append((wall, usage.ru_utime + usage.ru_stime))
        return sorted(samples)[len(samples) // 2]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def language_accuracy() -> dict[str, str]:
    import etl_nlp

    gold = [
        r for r in language_set.load(language_set.DATA / "language_gold.jsonl") if r["language"]
    ]
    sentences = language_set.load(language_set.OUT)
    out = {}
    for label, options in (("language", {}), ("language (max_chars 300)", {"max_chars": 300})):
        transform = etl_nlp.LanguageTransform(options)

        def detect(texts, transform=transform):
            return transform.detect(pa.array(texts))[0].to_pylist()

        g = language_set.score(detect, gold)[0]
        s = language_set.score(detect, sentences)[0]
        out[label] = (
            f"gold {g}/{len(gold)} = {g / len(gold):.0%}; "
            f"sentences {s}/{len(sentences)} = {s / len(sentences):.1%}"
        )
    out["language (real news in 15 languages)"] = out["language"] + " (the same transform)"
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated throughput case names")
    args = parser.parse_args()
    base = throughput.batches(args.articles)
    size = sum(len(t.as_py().encode()) for b in base for t in b.column("text")) / args.articles
    print(
        f"{args.articles} generated articles, mean {size / 1024:.1f} KB of text; "
        f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
        flush=True,
    )
    ingest_wall, ingest_cpu = ingest_only(args.articles, args.repeat)
    empty_wall, empty_cpu = ingest_only(1, args.repeat)
    # the ratio compares steady rates: a run's start-up (a one-article run's time) is taken off
    ingest = args.articles / max(ingest_wall - empty_wall, 1e-9)
    print(
        f"ingest only (text -> parquet, etl run): {args.articles / ingest_wall:,.0f} "
        f"articles/s including start-up ({empty_wall:.2f} s for a one-article run), "
        f"{ingest:,.0f} without it; {args.articles / max(ingest_cpu - empty_cpu, 1e-9):,.0f} "
        "per CPU second without it",
        flush=True,
    )
    accuracy = {}
    with contextlib.suppress(ImportError):  # etl-nlp not installed: no language rows
        accuracy.update(language_accuracy())
    if not args.only or "dedup near (256 bins)" in args.only:
        near = near_dedup.evaluate(4000, 0.8, 256)
        accuracy["dedup near (256 bins)"] = (
            f"recall {near['found']}/{near['true']} = {near['found'] / near['true']:.1%}; "
            f"false positives {near['false_positives']}/{near['negatives']} = "
            f"{near['false_positives'] / near['negatives']:.2%}"
        )
    print(
        "\n| transform | articles/s | per CPU second | / ingest-only (without start-up) | accuracy |\n"
        "|---|---:|---:|---:|---|"
    )
    for label, wall, cpu, _ in throughput.measure(base, args.repeat, args.only):
        rate = args.articles / wall
        print(
            f"| {label} | {rate:,.0f} | {args.articles / cpu:,.0f} | {rate / ingest:.2f}x "
            f"| {accuracy.get(label, '')} |",
            flush=True,
        )
    print(f"\nload average at the end: {statistics.fmean(os.getloadavg()):.1f} (1, 5, 15 min mean)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
