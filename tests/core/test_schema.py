import hashlib

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.schema import (
    ARTICLE_SCHEMA,
    article_ids,
    char_counts,
    conform,
    make_articles,
    normalize_newlines,
    word_counts,
)

# every character Python's str.split() splits on, plus look-alikes it does not
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2005\u200a\u2028\u2029\u202f\u205f\u3000"
)
NOT_WHITESPACE = "\u200b\ufeff\u180e"


@given(
    st.text(alphabet=st.sampled_from(list("ab.é中" + WHITESPACE + NOT_WHITESPACE)), max_size=300)
)
@pytest.mark.slow
@settings(max_examples=300)
def test_word_count_equals_str_split(text):
    assert word_counts(pa.array([text])).to_pylist() == [len(text.split())]


@pytest.mark.parametrize("length", range(1, 300))
def test_word_count_on_one_row_arrays_of_every_length(length):
    # pyarrow 26's utf8_split_whitespace drops a trailing token on 1-row arrays whose byte
    # length is a multiple of 64; our count must not
    text = ("word " * 100)[: length - 1] + "z"
    assert word_counts(pa.array([text])).to_pylist() == [len(text.split())]
    assert char_counts(pa.array([text])).to_pylist() == [len(text)]


def test_ids_are_sha256_of_text_and_stable():
    texts = ["hello", "", "Grüße, 世界", None]
    ids = article_ids(pa.array(texts)).to_pylist()
    assert ids[:3] == [hashlib.sha256(t.encode()).hexdigest()[:32] for t in texts[:3]]
    assert ids[3] is None
    # slicing (non-zero offset) gives the same ids
    assert article_ids(pa.array(texts).slice(1)).to_pylist() == ids[1:]


def test_newlines_are_normalised_before_hashing():
    batch = make_articles({"text": ["a\r\nb\rc\n"]}, source="t")
    assert batch.column("text").to_pylist() == ["a\nb\nc\n"]
    assert batch.column("id")[0].as_py() == hashlib.sha256(b"a\nb\nc\n").hexdigest()[:32]
    assert normalize_newlines(pa.array(["x"])).to_pylist() == ["x"]


def test_make_articles_fills_derived_columns_and_nulls():
    batch = make_articles(
        {"text": ["one two", "three"], "title": ["T", None], "metadata": [{"k": "v"}, None]},
        source="src",
        run_id="r1",
    )
    assert batch.schema == ARTICLE_SCHEMA
    rows = batch.to_pylist()
    assert [r["word_count"] for r in rows] == [2, 1]
    assert [r["source"] for r in rows] == ["src", "src"]
    assert [r["run_id"] for r in rows] == ["r1", "r1"]
    assert rows[0]["metadata"] == [("k", "v")]
    assert rows[1]["publisher"] is None


def test_conform_adds_missing_columns_as_null():
    schema = ARTICLE_SCHEMA.append(pa.field("score", pa.float64()))
    batch = conform(make_articles({"text": ["x"]}, source="s"), schema)
    assert batch.schema == schema
    assert batch.column("score").null_count == 1


def test_first_seen_marks_new_ids_and_remembers_them():
    from etl.schema import first_seen

    seen = {"old"}
    assert first_seen(["a", "b"], seen) is None  # all new: no mask
    assert seen == {"old", "a", "b"}
    assert first_seen(["c", "a", "c", "old", "d"], seen) == [True, False, False, False, True]
    assert seen == {"old", "a", "b", "c", "d"}
    assert first_seen([], seen) is None
    # a question only: the same answer, nothing claimed
    assert first_seen(["e", "a", "e", "f"], seen, claim=False) == [True, False, False, True]
    assert first_seen(["e", "f"], seen, claim=False) is None
    assert seen == {"old", "a", "b", "c", "d"}


def test_set_column_replaces_a_present_column_and_appends_a_new_one():
    import pyarrow as pa

    from etl import set_column

    batch = pa.RecordBatch.from_pydict({"a": [1, 2], "b": ["x", "y"]})
    replaced = set_column(batch, "a", pa.array([1.5, 2.5]))
    assert replaced.schema.names == ["a", "b"]
    assert replaced.schema.field("a").type == pa.float64()
    assert replaced.column("a").to_pylist() == [1.5, 2.5]
    added = set_column(batch, "c", pa.chunked_array([["p"], ["q"]]))
    assert added.schema.names == ["a", "b", "c"]
    assert added.column("c").to_pylist() == ["p", "q"]
    assert set_column(batch, "d", [True, False]).column("d").type == pa.bool_()
