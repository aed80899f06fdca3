"""filter: a restricted expression language (Python's ast) evaluated with pyarrow.compute."""

from __future__ import annotations

import pytest

from etl.errors import ConfigError
from etl.testing import check_options, run_transform
from tests.helpers.transforms import article

ARTICLES = [
    {"text": article("01-seed.txt"), "language": "en", "title": "Seed"},
    {"text": article("04-telegraph.txt"), "language": "en", "title": None},
    {"text": article("08-spanish.txt"), "language": "es", "title": "La creación"},
    {"text": article("10-short.txt"), "language": "en", "title": None},
    {"text": "Kurz.", "language": None, "title": None},
]


def _run(where, **opts):
    return run_transform("filter", ARTICLES, {"where": where, **opts})


def test_options_contract():
    from etl.transforms.filter import FilterTransform

    check_options(FilterTransform)


def test_word_count_and_language_sql_spelling():
    result = _run("word_count >= 50 and language = 'en'")
    assert result.table.column("word_count").to_pylist() == [960, 3123]
    assert result.summary["counters"] == {"filter dropped: word_count >= 50 and language = 'en'": 3}
    assert result.summary["dropped"] == 3


def test_in_not_in_is_null_and_functions():
    assert _run("language in ('es', 'de')").table.column("title").to_pylist() == ["La creación"]
    assert _run("language is None").table.column("text").to_pylist() == ["Kurz."]
    # null language: `not in` is null, so the row is dropped, as SQL's WHERE does
    assert _run("language not in ('en')").table.column("language").to_pylist() == ["es"]
    kept = _run("contains(lower(text), 'global times') or startswith(title, 'La')", label="gt")
    assert kept.table.column("word_count").to_pylist() == [960, 1402]
    assert kept.summary["counters"] == {"filter dropped: gt": 3}
    assert _run("length(text) < 100 AND NOT language IS NULL").table.column(
        "word_count"
    ).to_pylist() == [9]


def test_timestamp_compared_with_iso_string():
    rows = [
        {"text": "one", "published_at": "2024-02-06T18:30:00+00:00"},
        {"text": "two", "published_at": "2023-12-31T23:59:00+00:00"},
        {"text": "three"},
    ]
    result = run_transform("filter", rows, {"where": "published_at >= '2024-01-01'"})
    assert result.table.column("text").to_pylist() == ["one"]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("word_count >", "cannot read the expression"),
        ("__import__('os').system('true')", "unknown function '__import__('os').system'"),
        ("text.upper() == 'A'", "unknown function 'text.upper'"),
        ("word_cont > 5", "no column 'word_cont'"),
        ("word_count > 'many'", "no kernel matching input types (int64, string)"),
        ("word_count + 1", "gives int64, not a true/false condition"),
        ("[x for x in text]", "is not supported"),
    ],
)
def test_mistakes_are_config_errors(where, message):
    with pytest.raises(ConfigError, match="plugin 'filter'") as info:
        _run(where)
    assert message in str(info.value)
