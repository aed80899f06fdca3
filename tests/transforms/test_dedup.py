"""dedup: exact duplicates by id (in the run and against a dataset), near duplicates by
MinHash/LSH with numpy."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from etl.errors import ConfigError
from etl.testing import check_options, run_pipeline, run_transform
from etl.transforms.dedup import (
    minhash_signatures,
    optimal_bands,
    shingle_hashes,
    word_hashes,
)
from tests.helpers.transforms import ARTICLES, article

SEED = article("01-seed.txt")
# the seed with a few words changed: Jaccard of 5-word shingles about 0.9
NEAR = article("03-seed-near.txt")
TELEGRAPH = article("04-telegraph.txt")
ROWS = [
    {"text": SEED, "uri": "seed"},
    {"text": TELEGRAPH, "uri": "telegraph"},
    {"text": SEED, "uri": "seed again"},
    {"text": NEAR, "uri": "seed edited"},
]


def _jaccard(a: str, b: str, k: int = 5) -> float:
    import re

    def shingles(t):
        words = re.sub(r"[^\w]+", " ", t.lower()).split()
        return {tuple(words[i : i + k]) for i in range(max(len(words) - k + 1, 1))}

    x, y = shingles(a), shingles(b)
    return len(x & y) / len(x | y)


def test_options_contract():
    from etl.transforms.dedup import DedupTransform

    check_options(DedupTransform)


def test_exact_drops_repeated_ids_within_the_run():
    result = run_transform("dedup", ROWS, batch_size=2)
    assert result.table.column("uri").to_pylist() == ["seed", "telegraph", "seed edited"]
    assert result.summary["counters"] == {"dedup exact duplicates": 1}


def test_near_drops_the_edited_copy():
    assert 0.85 < _jaccard(SEED, NEAR) < 0.95
    result = run_transform("dedup", ROWS, {"method": "near"})
    assert result.table.column("uri").to_pylist() == ["seed", "telegraph"]
    assert result.summary["counters"] == {
        "dedup exact duplicates": 1,
        "dedup near duplicates": 1,
    }


def test_near_mark_names_the_kept_article():
    result = run_transform("dedup", ROWS, {"method": "near", "action": "mark"}, batch_size=1)
    ids = result.table.column("id").to_pylist()
    # the exact copy is marked too, but a dataset holds one row per id: the framework drops
    # it before the sink (counted as a duplicate)
    assert result.table.column("duplicate_of").to_pylist() == [None, None, ids[0]]
    assert result.summary["duplicates"] == 1
    # above the pair's similarity, the edited copy is no longer a duplicate
    strict = run_transform("dedup", ROWS, {"method": "near", "action": "mark", "threshold": 0.97})
    assert strict.table.column("duplicate_of").to_pylist() == [None, None, None]


def test_exact_against_an_existing_dataset(tmp_path):
    first = run_pipeline(
        {"sink": {"plugin": "parquet", "path": "ds"}}, articles=ROWS[:1], tmp_path=tmp_path
    )
    assert first.table.num_rows == 1
    result = run_pipeline(
        {
            "transforms": [{"plugin": "dedup", "dataset": "ds"}],
            "sink": {"plugin": "parquet", "path": "ds"},
        },
        articles=ROWS,
        tmp_path=tmp_path,
    )
    # the seed was committed before: the transform drops both copies, the sink sees none
    assert result.summary["counters"] == {"dedup exact duplicates": 2}
    assert result.summary["duplicates"] == 0
    assert sorted(result.table.column("uri").to_pylist()) == ["seed", "seed edited", "telegraph"]


def test_dataset_sink_reads_the_sinks_dataset_through_the_cli(tmp_path):
    from tests.helpers import run_etl

    for name in ("01-seed.txt", "04-telegraph.txt"):
        (tmp_path / name).write_bytes((ARTICLES / name).read_bytes())
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(
        '[[sources]]\nplugin = "text"\npaths = ["*.txt"]\n'
        '[[transforms]]\nplugin = "dedup"\ndataset = "sink"\n'
        '[sink]\nplugin = "parquet"\npath = "ds"\n'
    )
    first = run_etl("run", str(pipeline), "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["written"] == 2
    (tmp_path / "02-seed-copy.txt").write_bytes((ARTICLES / "01-seed.txt").read_bytes())
    second = run_etl("run", str(pipeline), "--json")
    summary = json.loads(second.stdout)
    # only the new file is read; its article is already in the dataset: dedup drops it
    assert (summary["read"], summary["written"]) == (1, 0)
    assert summary["counters"] == {"dedup exact duplicates": 1}
    # the sink path given on the command line is the one dedup reads
    other = run_etl("run", str(pipeline), "--json", "--set", f"sink.path={tmp_path / 'other'}")
    assert json.loads(other.stdout)["written"] == 2
    assert json.loads(other.stdout)["counters"] == {"dedup exact duplicates": 1}


def test_word_hashes_depend_on_every_byte_and_only_on_content():
    texts = ["news News newt é e wen snew", "x y news", "internationalisation internationalization"]
    h, starts = word_hashes(pa.array(texts))
    assert starts.tolist() == [0, 7, 10, 12]
    assert h[0] == h[1]  # lower-cased
    assert len(set(h[1:7].tolist())) == 6
    # the same word gives the same hash wherever it sits in the buffer
    assert h[9] == h[0]
    assert word_hashes(pa.array(texts).slice(1))[0][2] == h[0]
    # words longer than 8 bytes differ past their first 8 bytes too
    assert h[10] != h[11]


def test_shingles_of_short_and_empty_texts():
    hashes, starts = shingle_hashes(pa.array(["one two three", "", None, "a b c d e f"]), 5)
    assert starts.tolist() == [0, 1, 2, 3, 5]
    assert hashes[1] == hashes[2]  # empty and null texts: the same single empty shingle


def test_signature_agreement_estimates_jaccard():
    sigs = minhash_signatures(pa.array([SEED, NEAR, TELEGRAPH]), 256, 5)
    estimate = np.mean(sigs[0] == sigs[1])
    assert abs(estimate - _jaccard(SEED, NEAR)) < 0.06
    assert np.mean(sigs[0] == sigs[2]) < 0.05


def _near_dedup_benchmark():
    """benchmarks/transforms/near_dedup.py as a module, without leaving its folder on
    sys.path or its ``corpus`` in sys.modules (benchmarks/corpus.py has the same name)."""
    folder = Path(__file__).resolve().parents[2] / "benchmarks" / "transforms"
    saved_path, saved_corpus = list(sys.path), sys.modules.pop("corpus", None)
    try:
        spec = importlib.util.spec_from_file_location("bench_near_dedup", folder / "near_dedup.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved_path
        sys.modules.pop("corpus", None)
        if saved_corpus is not None:
            sys.modules["corpus"] = saved_corpus
    return module


def test_near_recall_and_false_positives_stay_as_good_on_the_generated_corpus():
    # the benchmark's corpus at 2,000 articles (71 true duplicates): MinHash/LSH with 128
    # permutations found 69 with 2 false positives; the one-permutation signature at the
    # default length must not do worse
    result = _near_dedup_benchmark().evaluate(2000, 0.8, 256, unrelated_pairs=0)
    assert result["true"] == 71
    assert result["found"] >= 69, result["lines"]
    assert result["false_positives"] <= 2, result["lines"]


def test_near_keeps_the_same_ids_whatever_the_batch_size():
    texts, _ = _near_dedup_benchmark().corpus(300, seed=5)
    rows = [{"text": t, "uri": str(i)} for i, t in enumerate(texts)]
    kept = [
        run_transform("dedup", rows, {"method": "near"}, batch_size=size)
        .table.column("uri")
        .to_pylist()
        for size in (1, 7, 64, 300)
    ]
    assert 250 < len(kept[0]) < 300
    assert all(k == kept[0] for k in kept[1:])


def test_words_are_cut_as_the_unicode_regex_cuts_them():
    # letters and digits of any script are word characters, everything else (curly quotes,
    # dashes, no-break spaces, combining marks, underscores) separates words
    texts = [
        "\u201cÇa va\u201d\u2014dit-elle\u00a0: \u00abOUI\u00bb, 2024\u5e74 \u6771\u4eac_\u0394\u03b5\u03bb\u03c6\u03bf\u03af",
        "Stra\u00dfe STRASSE e\u0301t\u00e9 \u0410\u0411\u0412 \U0001f600 \U00010400word \u0661\u0662 end",
        "ascii only, with   spaces\tand\nnew lines; and_under_scores 42",
        "",
        "\u2014 \u00a0 \u2026",
        "One two THREE four five six",
    ]
    import pyarrow.compute as pc

    lowered = pc.utf8_lower(pa.array(texts))
    cleaned = pc.utf8_trim(pc.replace_substring_regex(lowered, r"[^\pL\pN]+", " "), " ")
    for k in (1, 2, 5):
        ours, starts = shingle_hashes(pa.array(texts), k)
        reference, ref_starts = shingle_hashes(cleaned, k)
        assert starts.tolist() == ref_starts.tolist()
        assert ours.tolist() == reference.tolist()
    # a word never runs from one text into the next
    joined, _ = shingle_hashes(pa.array(["alpha beta gammadelta"]), 1)
    split, split_starts = shingle_hashes(pa.array(["alpha beta gamma", "delta"]), 1)
    assert joined[2] not in split.tolist() and split_starts.tolist() == [0, 3, 4]


def test_a_signature_depends_on_its_text_only():
    # not on the array's layout, the batch around it, whether the batch is ASCII (no
    # lower-casing pass) or not, nor where the 1 MB slices of a batch fall
    rng = np.random.default_rng(0)
    words = [
        "alpha",
        "Beta",
        "gamma",
        "d\u00e9lta",
        "\u03b5",
        "\u6771\u4eac",
        "internationalization",
        "A1",
    ]
    texts = [" ".join(rng.choice(words, rng.integers(0, 900))) for _ in range(700)]
    texts += ["", None, "...", "Hello world, this is a test of the system"]
    batch = pa.array(texts)
    sigs = minhash_signatures(batch, 256, 5)
    assert (minhash_signatures(batch.cast(pa.large_string()), 256, 5) == sigs).all()
    assert (minhash_signatures(pa.chunked_array([batch[:5], batch[5:]]), 256, 5) == sigs).all()
    assert (minhash_signatures(pa.array(["x", *texts]).slice(1), 256, 5) == sigs).all()
    for i in [*range(0, 700, 97), 700, 701, 702, 703]:
        assert (minhash_signatures(pa.array([texts[i]], pa.string()), 256, 5)[0] == sigs[i]).all()
    for bins in (2, 100, 200, 1024):
        assert minhash_signatures(batch, bins, 5, seed=-7).shape == (len(texts), bins)


def test_band_choice_follows_the_threshold():
    assert optimal_bands(0.8, 128) == (16, 8)
    bands, rows = optimal_bands(0.5, 128)
    assert bands * rows <= 128 and rows < 8


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "fuzzy"}, "option 'method' is 'fuzzy'"),
        ({"threshold": 1.5}, "option 'threshold' must be more than 0 and at most 1, got 1.5"),
        ({"threshold": 0}, "option 'threshold' must be more than 0 and at most 1, got 0"),
        ({"num_perm": 1}, "option 'num_perm' must be between 2 and 1024, got 1"),
        ({"shingle": 0}, "option 'shingle' must be between 1 and 32, got 0"),
        ({"treshold": 0.5}, "did you mean 'threshold'?"),
    ],
)
def test_mistakes_are_config_errors(options, message):
    with pytest.raises(ConfigError, match="plugin 'dedup'") as info:
        run_transform("dedup", ROWS, options)
    assert message in str(info.value)
