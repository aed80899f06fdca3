"""Scaling benchmark: the same CPU-bound pipeline under the local, processes and dask executors.

Run it (it starts clusters, so everything runs under the ``__main__`` guard)::

    python benchmarks/scaling.py                       # 2,000 and 20,000 articles, 3 rounds
    python benchmarks/scaling.py --sizes 5000 --rounds 5

It generates a deterministic corpus (news-like English, 2-8 KB per article, one file per
article in nested folders, ~5% exact duplicates), then runs ``etl run`` alternately under
each executor, a fresh dataset each time, and prints a Markdown table of median wall time,
throughput, speed-up over ``local`` and peak RSS of the driver and of the largest worker
(sampled with psutil every 100 ms).

The pipeline is text -> normalize -> dedup -> parquet when those transforms are installed;
otherwise text -> ``burn`` -> parquet, where ``burn`` is the CPU-bound stand-in defined in this
file (Unicode NFKC, whitespace clean-up and a 64-permutation MinHash signature per article,
all holding the GIL): the pipeline names this very file in ``plugins = [...]``, which also
exercises shipping a local plugin file to the workers.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pyarrow as pa

import etl
from etl.schema import extend_schema

HERE = Path(__file__).resolve()


class Burn(etl.Transform):
    """CPU-bound stand-in for normalize + near-dup signatures (benchmarks only)."""

    name = "burn"
    options = (etl.Option("permutations", "int", 64, help="MinHash permutations"),)

    def output_schema(self, schema):
        return extend_schema(schema, [pa.field("signature", pa.string())])

    def process(self, batch, ctx):
        import re
        import unicodedata

        import numpy as np

        rng = np.random.default_rng(7)
        n = self.opts.permutations
        a = rng.integers(1, 2**31 - 1, n, dtype=np.uint64)
        b = rng.integers(0, 2**31 - 1, n, dtype=np.uint64)
        prime = np.uint64(2**31 - 1)
        texts, signatures = [], []
        for text in batch.column("text").to_pylist():
            text = unicodedata.normalize("NFKC", text or "")
            text = re.sub(r"[ \t]+", " ", text).strip()
            words = text.lower().split()
            shingles = [" ".join(words[i : i + 5]) for i in range(max(1, len(words) - 4))]
            hashes = np.fromiter((zlib.crc32(s.encode()) for s in shingles), np.uint64)
            mins = ((np.outer(hashes, a) + b) % prime).min(axis=0)
            texts.append(text)
            signatures.append(mins.astype(np.uint32).tobytes().hex()[:64])
        batch = batch.set_column(batch.schema.get_field_index("text"), "text", pa.array(texts))
        index = batch.schema.get_field_index("signature")
        return batch.set_column(index, "signature", pa.array(signatures, pa.string()))


@etl.hookimpl
def etl_register_plugins(register):
    register(Burn)


# the corpus

WORDS = [
    "government",
    "minister",
    "said",
    "officials",
    "council",
    "city",
    "economy",
    "market",
    "growth",
    "report",
    "police",
    "court",
    "election",
    "vote",
    "parliament",
    "company",
    "shares",
    "investors",
    "energy",
    "prices",
    "climate",
    "water",
    "school",
    "hospital",
    "health",
    "workers",
    "union",
    "strike",
    "talks",
    "agreement",
    "trade",
    "exports",
    "imports",
    "bank",
    "rates",
    "inflation",
    "budget",
    "tax",
    "spending",
    "reform",
    "party",
    "leader",
    "president",
    "week",
    "month",
    "year",
    "people",
    "local",
    "national",
    "international",
    "security",
    "defence",
    "border",
    "region",
    "province",
    "capital",
    "news",
    "statement",
    "spokesman",
    "announced",
    "expected",
    "according",
    "analysts",
    "data",
    "percent",
    "million",
]
PUBLISHERS = ["Xinhua", "Reuters", "AP", "Global Times", "AFP", None]


def make_corpus(folder: Path, n: int, seed: int = 1) -> Path:
    """``n`` articles of 2-8 KB, one file each in nested folders; ~5% exact duplicates."""
    marker = folder / f".complete-{n}-{seed}"
    if marker.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    rng = random.Random(seed)
    written: list[str] = []
    for i in range(n):
        if written and rng.random() < 0.05:
            text = rng.choice(written)
        else:
            target = rng.randint(2000, 8000)
            parts = [f"Headline {i}: {rng.choice(WORDS).title()} {rng.choice(WORDS)} talks\n\n"]
            size = len(parts[0])
            while size < target:
                sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20)))
                sentence = sentence.capitalize() + rng.choice(
                    [".", ".", ".", " \u2014 sources say."]
                )
                if rng.random() < 0.1:
                    sentence = f"\u201c{sentence}\u201d"
                parts.append(sentence + (" " if rng.random() < 0.8 else "\n\n"))
                size += len(sentence) + 1
            publisher = rng.choice(PUBLISHERS)
            text = "".join(parts).strip() + (f"\n({publisher})\n" if publisher else "\n")
            written.append(text)
        path = folder / f"{i % 10:02d}" / f"{i // 10 % 10:02d}" / f"article-{i:06d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    marker.write_text("")
    return folder


def benchmark_corpus(work: Path, n: int) -> tuple[Path, str]:
    """The performance benchmark's corpus (benchmarks/corpus.py) when present, else ours."""
    try:
        sys.path.insert(0, str(HERE.parent))
        from corpus import make_corpus as shared  # benchmarks/corpus.py
    except ImportError:
        return make_corpus(work / f"corpus-{n}", n), "benchmarks/scaling.py's own generator"
    finally:
        sys.path.remove(str(HERE.parent))
    return shared(work / f"shared-corpus-{n}", n) / "text", "benchmarks/corpus.py"


# running


def _has_plugin(kind: str, name: str) -> bool:
    from etl.plugins import get_plugin_manager

    return name in get_plugin_manager().registry[kind]


def write_pipeline(folder: Path, corpus: Path, kind: str = "auto") -> tuple[Path, str]:
    """``nlp``: text -> normalize -> dedup (near) -> parquet; ``normalize``: text ->
    normalize -> parquet (the pipeline of issue 20's targets); ``burn``: the stand-in."""
    if kind == "auto":
        found = _has_plugin("transform", "normalize") and _has_plugin("transform", "dedup")
        kind = "nlp" if found else "burn"
    if kind == "nlp":
        plugins = ""
        transforms = (
            '[[transforms]]\nplugin = "normalize"\n'
            '[[transforms]]\nplugin = "dedup"\nmethod = "near"\n'
        )
        label = "text -> normalize -> dedup (near: MinHash/LSH) -> parquet"
    elif kind == "normalize":
        plugins = ""
        transforms = '[[transforms]]\nplugin = "normalize"\n'
        label = "text -> normalize -> parquet"
    else:
        plugins = f"plugins = [{str(HERE)!r}]\n"
        transforms = '[[transforms]]\nplugin = "burn"\n'
        label = "text -> burn (stand-in, benchmarks/scaling.py) -> parquet"
    path = folder / "scaling.toml"
    path.write_text(
        f"{plugins}[run]\nbatch_size = 1024\n"
        f'[[sources]]\nplugin = "text"\npaths = [{str(corpus)!r}]\n'
        f"{transforms}"
        f'[sink]\nplugin = "parquet"\npath = {str(folder / "out")!r}\n',
        encoding="utf-8",
    )
    return path, label


def run_once(pipeline: Path, executor: str, workers: int, chunk_size: int = 0) -> dict:
    """One `etl run` into a fresh dataset; wall time and peak RSS of driver and workers."""
    import psutil

    out = pipeline.parent / "out"
    shutil.rmtree(out, ignore_errors=True)
    args = [sys.executable, "-m", "etl.cli", "run", str(pipeline), "--json"]
    args += ["--set", f"executor.plugin={executor}"]
    if executor != "local":
        args += ["--set", f"executor.workers={workers}"]
        args += ["--set", f"executor.chunk_size={chunk_size}"]
    start = time.perf_counter()
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ETL_PROGRESS": "0"},
    )
    driver = psutil.Process(proc.pid)
    peaks: dict[int, int] = {}
    while proc.poll() is None:
        try:
            for p in [driver, *driver.children(recursive=True)]:
                try:
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                peaks[p.pid] = max(peaks.get(p.pid, 0), rss)
        except psutil.Error:
            pass
        time.sleep(0.1)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{executor} failed:\n{stderr}")
    import json

    summary = json.loads(stdout)
    workers_rss = [rss for pid, rss in peaks.items() if pid != proc.pid]
    return {
        "wall": wall,
        "written": summary["written"],
        "read": summary["read"],
        "driver_rss": peaks.get(proc.pid, 0),
        "worker_rss": max(workers_rss) if workers_rss else 0,
    }


def trace_worker_memory(pipeline: Path, chunks_to_run: int, chunk_size: int) -> None:
    """Run chunks through one in-process worker (as a worker process does); print RSS after each.

    A leak shows as a trend; a flat worker shows a band.
    """
    import psutil

    from etl.config import load_pipeline
    from etl.executors.api import chunk_bounds, chunks, open_worker
    from etl.run import build_plan
    from etl.run.job import DriverJob
    from etl.store import Store

    out = pipeline.parent / "out-trace"
    shutil.rmtree(out, ignore_errors=True)
    plan = build_plan(load_pipeline(pipeline, [f"sink.path={out}"]))
    Store(out).begin(plan.run.run_id)
    plan.sink.open(plan.run, plan.schema)
    try:
        worker = open_worker(DriverJob(plan, set()).worker_spec(), "trace", "trace")
        me = psutil.Process()
        bounds = chunk_bounds(len(plan.units), 1, chunk_size)[:chunks_to_run]
        rss = []
        for number, units in chunks(plan.units, bounds):
            worker.run_chunk(number, units)
            rss.append(me.memory_info().rss / 2**20)
        print(f"worker RSS after each of {len(rss)} chunks of {chunk_size} units (MiB):")
        print(" ".join(f"{r:.0f}" for r in rss))
        half = len(rss) // 2
        print(
            f"first half: median {statistics.median(rss[:half]):.0f}, max {max(rss[:half]):.0f}; "
            f"second half: median {statistics.median(rss[half:]):.0f}, max {max(rss[half:]):.0f}"
        )
    finally:
        plan.sink.abort()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,20000", help="corpus sizes (articles)")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds per size")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--pipeline",
        choices=("auto", "nlp", "normalize", "burn"),
        default="auto",
        help="nlp: normalize + near dedup (needs etl-nlp); normalize: normalize only; "
        "burn: the stand-in in this file",
    )
    parser.add_argument(
        "--chunk-size", type=int, default=0, help="work units per task (0: automatic)"
    )
    parser.add_argument(
        "--executors", default="local,processes,dask", help="comma-separated executors"
    )
    parser.add_argument("--work", default="/tmp/etl-scaling", help="corpus and output folder")
    parser.add_argument(
        "--trace-worker-memory",
        type=int,
        default=0,
        metavar="CHUNKS",
        help="instead: run CHUNKS chunks in one in-process worker and print RSS after each",
    )
    args = parser.parse_args()
    if args.trace_worker_memory:
        size = int(args.sizes.split(",")[-1])
        corpus, _ = benchmark_corpus(Path(args.work), size)
        pipeline, _ = write_pipeline(Path(args.work), corpus, args.pipeline)
        trace_worker_memory(pipeline, args.trace_worker_memory, args.chunk_size or 500)
        return
    executors = args.executors.split(",")
    work = Path(args.work)
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, etl {etl.__version__}"
    )
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        corpus, generator = benchmark_corpus(work, size)
        print(f"corpus: {size} articles from {generator}", file=sys.stderr)
        pipeline, label = write_pipeline(work, corpus, args.pipeline)
        results: dict[str, list[dict]] = {e: [] for e in executors}
        for round_no in range(args.rounds):
            order = executors if round_no % 2 == 0 else executors[::-1]
            for executor in order:
                result = run_once(pipeline, executor, args.workers, args.chunk_size)
                results[executor].append(result)
                print(
                    f"  {size} articles, round {round_no + 1}, {executor}: "
                    f"{result['wall']:.2f} s, driver {result['driver_rss'] / 2**20:.0f} MiB, "
                    f"worker {result['worker_rss'] / 2**20:.0f} MiB",
                    file=sys.stderr,
                )
        base = statistics.median(r["wall"] for r in results.get("local", results[executors[0]]))
        for executor in executors:
            walls = [r["wall"] for r in results[executor]]
            wall = statistics.median(walls)
            rows.append(
                (
                    size,
                    executor,
                    wall,
                    results[executor][0]["read"] / wall,
                    base / wall,
                    statistics.median(r["driver_rss"] for r in results[executor]) / 2**20,
                    statistics.median(r["worker_rss"] for r in results[executor]) / 2**20,
                    min(walls),
                    max(walls),
                )
            )
    chunking = f"chunk_size {args.chunk_size}" if args.chunk_size else "automatic chunks"
    print(
        f"\npipeline: {label}; {args.workers} workers, {chunking}; "
        f"medians of {args.rounds} alternated rounds\n"
    )
    print(
        "| articles | executor | wall s (min-max) | articles/s | vs local "
        "| driver peak RSS MiB | largest worker peak RSS MiB |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|")
    for size, executor, wall, rate, speedup, driver, worker in (r[:7] for r in rows):
        lo, hi = next((r[7], r[8]) for r in rows if r[0] == size and r[1] == executor)
        print(
            f"| {size:,} | {executor} | {wall:.2f} ({lo:.2f}-{hi:.2f}) | {rate:,.0f} | "
            f"{speedup:.2f}x | {driver:.0f} | {worker:.0f} |"
            if executor != "local"
            else f"| {size:,} | {executor} | {wall:.2f} ({lo:.2f}-{hi:.2f}) | {rate:,.0f} | "
            f"1.00x | {driver:.0f} | - |"
        )


if __name__ == "__main__":
    main()
