"""Recall and false positives of ``dedup`` (method = "near") on a generated corpus.

    python benchmarks/transforms/near_dedup.py [--articles 4000] [--threshold 0.8]

Ground truth: the exact Jaccard similarity of 5-word shingle sets (Python sets) of every
pair within a family (an article and the copies made from it, by corpus.py), and of a
sample of 20,000 unrelated pairs (which stay far below any threshold). An article is a true
duplicate when some earlier article is at least ``threshold`` similar to it.

* recall: true duplicates the transform marked / true duplicates;
* false positives: marked articles whose most similar earlier article is below the
  threshold / all marked articles (and / all articles that are not duplicates).
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import corpus  # noqa: E402

from etl.context import Context, RunInfo  # noqa: E402
from etl.schema import make_articles  # noqa: E402
from etl.stream import INPUT_COLUMN  # noqa: E402
from etl.transforms.dedup import DedupTransform  # noqa: E402


def shingles(text: str, k: int = 5) -> set[tuple[str, ...]]:
    words = re.sub(r"[^\w]+", " ", text.lower()).split()
    return {tuple(words[i : i + k]) for i in range(max(len(words) - k + 1, 1))}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=4000)
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--num-perm", type=int, default=256)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    result = evaluate(args.articles, args.threshold, args.num_perm, args.seed)
    for line in result["lines"]:
        print(line)
    return 0


def evaluate(
    articles: int, threshold: float, num_perm: int, seed: int = 1, unrelated_pairs: int = 20000
) -> dict:
    """Recall and false positives of near dedup on ``articles`` generated articles.

    ``unrelated_pairs``: how many random unrelated pairs to sample for the report's "most
    similar unrelated pair" (0 skips it: the tests, which need only the counts).
    """
    args = argparse.Namespace(articles=articles, threshold=threshold, num_perm=num_perm, seed=seed)
    texts, origin = corpus(args.articles, seed=args.seed)
    sets = [shingles(t) for t in texts]
    root = list(range(len(texts)))
    for i, o in enumerate(origin):
        if o is not None:
            root[i] = root[o]
    families = defaultdict(list)
    for i, r in enumerate(root):
        families[r].append(i)
    best_earlier = [0.0] * len(texts)
    similar = {}
    for members in families.values():
        for x, i in enumerate(members):
            for j in members[x + 1 :]:
                s = jaccard(sets[i], sets[j])
                similar[(i, j)] = s
                best_earlier[j] = max(best_earlier[j], s)
    rng = random.Random(7)
    unrelated = 0.0
    for _ in range(unrelated_pairs):
        i, j = rng.randrange(len(texts)), rng.randrange(len(texts))
        if root[i] != root[j]:
            unrelated = max(unrelated, jaccard(sets[i], sets[j]))

    transform = DedupTransform(
        {"method": "near", "action": "mark", "threshold": args.threshold, "num_perm": args.num_perm}
    )
    run = RunInfo(run_id="bench", started_at=__import__("datetime").datetime.now())
    transform.open(run)
    ctx = Context(run, "dedup", "bench")
    batch = make_articles({"text": texts}, source="bench")
    batch = batch.append_column("duplicate_of", pa.nulls(len(texts), pa.string()))
    batch = batch.append_column(INPUT_COLUMN, pa.array([0] * len(texts), pa.int32()))
    marked = []
    t0 = time.perf_counter()
    for start in range(0, len(texts), 1024):
        out = transform.process(batch.slice(start, 1024), ctx)
        marked.extend(out.column("duplicate_of").to_pylist())
    elapsed = time.perf_counter() - t0

    t = args.threshold
    truth = [s >= t for s in best_earlier]
    flagged = [m is not None for m in marked]
    true_dups = sum(truth)
    found = sum(1 for a, b in zip(truth, flagged, strict=True) if a and b)
    wrong = sum(1 for a, b in zip(truth, flagged, strict=True) if b and not a)
    near_miss = sum(
        1 for s, b in zip(best_earlier, flagged, strict=True) if b and t - 0.05 <= s < t
    )
    pairs_above = sum(1 for s in similar.values() if s >= t)
    lines = [
        f"articles: {len(texts)}; pairs within families: {len(similar)}, {pairs_above} at "
        f"or above {t}; most similar unrelated pair of {unrelated_pairs:,} sampled: {unrelated:.3f}",
        f"bands x rows: {transform.bands} x {transform.rows} of num_perm {args.num_perm}",
        f"true duplicates (an earlier article >= {t}): {true_dups}",
        f"recall: {found}/{true_dups} = {found / max(true_dups, 1):.2%}",
        f"false positives: {wrong}/{sum(flagged)} marked = {wrong / max(sum(flagged), 1):.2%} "
        f"({wrong}/{len(texts) - true_dups} non-duplicates = "
        f"{wrong / max(len(texts) - true_dups, 1):.2%}); of them within 0.05 below the "
        f"threshold: {near_miss}",
        f"time: {elapsed:.2f} s = {len(texts) / elapsed:,.0f} articles/s",
    ]
    return {
        "true": true_dups,
        "found": found,
        "false_positives": wrong,
        "negatives": len(texts) - true_dups,
        "lines": lines,
    }


if __name__ == "__main__":
    sys.exit(main())
