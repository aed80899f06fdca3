"""The benchmark scripts do what they claim: the floor and ``etl run`` give the same rows.

No timing here (benchmarks/run.py measures; tests only check that what it compares is the
same job). Also: the numpy word count equals ``len(str.split())`` on the shapes that trip
pyarrow's utf8_split_whitespace.
"""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from etl.schema import word_counts
from tests.helpers import run_etl

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
COLUMNS = ["id", "uri", "title", "publisher", "char_count", "word_count"]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    return _load("corpus").make_corpus(out, 400, seed=3)


def _etl(pipeline: Path) -> None:
    proc = run_etl("run", "-q", str(pipeline))
    assert proc.returncode == 0, proc.stderr


def _dataset(path: Path) -> pa.Table:
    files = [str(p) for p in sorted(path.glob("*.parquet"))]
    return pads.dataset(files, format="parquet").to_table()


def _rows(table: pa.Table, columns: list[str]) -> list[tuple]:
    return sorted(tuple(r[c] for c in columns) for r in table.select(columns).to_pylist())


def test_corpus_is_deterministic_with_duplicates(corpus, tmp_path):
    again = _load("corpus").make_corpus(tmp_path / "again", 400, seed=3)
    files = sorted(p.relative_to(corpus) for p in (corpus / "text").rglob("*.txt"))
    assert len(files) == 400
    assert files == sorted(p.relative_to(again) for p in (again / "text").rglob("*.txt"))
    for rel in files[:50]:
        assert (corpus / rel).read_bytes() == (again / rel).read_bytes()
    texts = [(corpus / rel).read_text(encoding="utf-8") for rel in files]
    assert 0.02 < 1 - len(set(texts)) / len(texts) < 0.10  # ~5% exact duplicates
    assert all(1900 <= len(t.encode()) <= 8400 for t in texts)
    joined = "".join(texts)
    assert "\u201c" in joined and "\u2014" in joined and "(Xinhua)" in joined
    lines = (corpus / "articles.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 400


def test_floor_and_etl_give_the_same_rows_from_text_files(corpus, tmp_path):
    floor = _load("floor")
    written = floor.run("text", str(corpus / "text"), str(tmp_path / "floor.parquet"))
    pipeline = tmp_path / "text.toml"
    pipeline.write_text(
        f'[[sources]]\nplugin = "text"\npaths = ["{corpus / "text"}"]\n\n'
        f'[sink]\nplugin = "parquet"\npath = "{tmp_path / "out"}"\n',
        encoding="utf-8",
    )
    _etl(pipeline)
    ours = _dataset(tmp_path / "out")
    theirs = pq.read_table(tmp_path / "floor.parquet")
    assert written == ours.num_rows == theirs.num_rows
    assert 340 < written < 400  # the exact duplicates are gone
    assert _rows(ours, COLUMNS) == _rows(theirs, COLUMNS)
    # the texts too, and the rows found publishers and headlines
    assert _rows(ours, ["id", "text"]) == _rows(theirs, ["id", "text"])
    assert ours.column("publisher").null_count < written / 2
    for row in ours.select(["text", "word_count", "char_count"]).to_pylist():
        assert row["word_count"] == len(row["text"].split())
        assert row["char_count"] == len(row["text"])
    assert ours.column("title").null_count < written / 2


def test_floor_and_etl_give_the_same_rows_from_jsonl(corpus, tmp_path):
    floor = _load("floor")
    written = floor.run("jsonl", str(corpus / "articles.jsonl"), str(tmp_path / "floor.parquet"))
    pipeline = tmp_path / "jsonl.toml"
    pipeline.write_text(
        f'[[sources]]\nplugin = "jsonl"\npaths = ["{corpus / "articles.jsonl"}"]\n\n'
        f'[sink]\nplugin = "parquet"\npath = "{tmp_path / "out"}"\n',
        encoding="utf-8",
    )
    _etl(pipeline)
    ours = _dataset(tmp_path / "out")
    theirs = pq.read_table(tmp_path / "floor.parquet")
    assert written == ours.num_rows == theirs.num_rows
    assert _rows(ours, COLUMNS) == _rows(theirs, COLUMNS)


def _split_counts(texts):
    return [None if t is None else len(t.split()) for t in texts]


@pytest.mark.slow
def test_word_counts_equal_str_split_on_many_lengths():
    # 1-row arrays whose byte length is a multiple of 64 (pyarrow 26's split drops a token)
    for length in range(0, 700):
        for unit in ("ab ", "a\u2003b\u201c ", "x\t\u3000y\xa0"):
            text = (unit * 400)[:length]
            assert word_counts(pa.array([text])).to_pylist() == [len(text.split())], length
    chars = [" ", "a", "\t", "\n", "\x0b", "\x0c", "\r", "\x1c", "\x1f", "\x00", "\x1b"]
    chars += ["\x7f", "\x85", "\xa0", "\u1680", "\u2000", "\u200a", "\u200b", "\u2028"]
    chars += ["\u2029", "\u202f", "\u205f", "\u3000", "\u201c", "\u2014", "é", "\U0001f600"]
    chars += ["\ufeff", "\u180e", "\u0100", "\u2080"]
    rng = random.Random(0)
    texts = ["".join(rng.choice(chars) for _ in range(rng.randint(0, 400))) for _ in range(600)]
    texts += [None, "", " "]
    for size in (1, 2, 7, 100, len(texts)):
        for start in range(0, len(texts), size):
            array = pa.array(texts[start : start + size], pa.string())
            assert word_counts(array).to_pylist() == _split_counts(array.to_pylist())
            if len(array) > 1:
                part = array.slice(1)
                assert word_counts(part).to_pylist() == _split_counts(part.to_pylist())
    chunked = pa.chunked_array([pa.array(texts[:10]), pa.array(texts[10:20])])
    assert word_counts(chunked).to_pylist() == _split_counts(texts[:20])
