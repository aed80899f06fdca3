"""dedup: exact duplicates by id (in the run and against a dataset), near duplicates by
MinHash/LSH with numpy."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from etl.errors import ConfigError
from etl.testing import check_options, run_pipeline, run_transform
from etl.transforms.dedup import (
    _string_hashes,
    minhash_signatures,
    optimal_bands,
    shingle_hashes,
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


def test_string_hashes_depend_on_every_byte_and_only_on_content():
    words = pa.array(["news", "news", "newt", "", "é", "e", "wen", "snew"])
    h = _string_hashes(words)
    assert h[0] == h[1]
    assert len(set(h[1:].tolist())) == 7
    # the same word gives the same hash wherever it sits in the buffer
    assert _string_hashes(pa.array(["x", "y", "news"]))[2] == h[0]
    assert _string_hashes(words.slice(2))[0] == h[2]


def test_shingles_of_short_and_empty_texts():
    hashes, starts = shingle_hashes(pa.array(["one two three", "", None, "a b c d e f"]), 5)
    assert starts.tolist() == [0, 1, 2, 3, 5]
    assert hashes[1] == hashes[2]  # empty and null texts: the same single empty shingle


def test_signature_agreement_estimates_jaccard():
    sigs = minhash_signatures(pa.array([SEED, NEAR, TELEGRAPH]), 256, 5)
    estimate = np.mean(sigs[0] == sigs[1])
    assert abs(estimate - _jaccard(SEED, NEAR)) < 0.06
    assert np.mean(sigs[0] == sigs[2]) < 0.05


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
