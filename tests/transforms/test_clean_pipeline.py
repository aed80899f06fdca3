"""examples/clean.toml through the real CLI: text -> normalize -> language -> dedup ->
quality -> filter -> python -> parquet, read back with DuckDB."""

from __future__ import annotations

import json

import duckdb
import pytest

from tests.helpers import ROOT, run_etl

pytest.importorskip("etl_nlp", reason="needs the etl-nlp plugin package (requirements-dev.txt)")

EXAMPLE = ROOT / "examples" / "clean.toml"


@pytest.mark.slow
def test_clean_example_end_to_end(tmp_path):
    out = tmp_path / "clean"
    proc = run_etl("run", str(EXAMPLE), "--set", f"sink.path={out}", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert (summary["read"], summary["written"], summary["dropped"], summary["rejected"]) == (
        10,
        6,
        4,
        0,
    )
    assert summary["counters"] == {
        "normalize mojibake fixed": 1,
        "language undetermined": 1,
        "dedup exact duplicates": 1,
        "dedup near duplicates": 1,
        "filter dropped: long, identified, decent": 2,
    }
    rows = duckdb.sql(
        f"""select regexp_extract(uri, '[^/]+$') as file, language, word_count,
                   quality_score, topic, word_count = len(string_split_regex(trim(text), '\\s+'))
            from read_parquet('{out}/*.parquet') order by file"""
    ).fetchall()
    assert rows == [
        ("01-seed.txt", "en", 960, 1.0, "security", True),
        ("04-telegraph.txt", "en", 3123, 1.0, "security", True),
        ("06-dailybeast-mojibake.txt", "en", 809, 1.0, "religion", True),
        ("07-french.txt", "fr", 522, 0.8, "other", True),
        ("08-spanish.txt", "es", 1400, 1.0, "other", True),
        ("11-bengali.txt", "bn", 109, 0.8, "other", True),
    ]
    text = duckdb.sql(
        f"select text from read_parquet('{out}/*.parquet') where uri like '%mojibake%'"
    ).fetchall()[0][0]
    assert "“a certain feminist spirit”" in text and "â€" not in text
    # a second run adds nothing: every input is known, every id is in the dataset
    again = run_etl("run", str(EXAMPLE), "--set", f"sink.path={out}", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["written"] == 0


@pytest.mark.parametrize(
    ("index", "key", "value", "expected"),
    [
        (0, "boilerplat", '["x"]', "unknown option 'boilerplat'"),
        (1, "min_confidense", "0.5", "unknown option 'min_confidense'"),
        (2, "treshold", "0.5", "did you mean 'threshold'?"),
        (3, "min_word", "5", "unknown option 'min_word'"),
        (4, "were", '"word_count > 1"', "did you mean 'where'?"),
        (5, "funtion", '"clean.py:tag_topic"', "did you mean 'function'?"),
    ],
)
def test_validate_catches_misspelt_options(tmp_path, index, key, value, expected):
    proc = run_etl("validate", str(EXAMPLE), "--set", f"transforms.{index + 1}.{key}={value}")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert expected in proc.stderr


def test_validate_catches_a_bad_filter_expression():
    proc = run_etl("validate", str(EXAMPLE), "--set", 'transforms.5.where="language > 5"')
    assert proc.returncode == 2
    assert "plugin 'filter' ([[transforms]] #5 in clean.toml): option 'where'" in proc.stderr
    assert "no kernel matching input types (string, int64)" in proc.stderr


def test_fields_misspelt_option(tmp_path):
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(
        '[[sources]]\nplugin = "text"\npaths = ["x.txt"]\n'
        '[[transforms]]\nplugin = "fields"\nderiv = { d = "date(published_at)" }\n'
        '[sink]\nplugin = "parquet"\npath = "out"\n'
    )
    (tmp_path / "x.txt").write_text("hello")
    proc = run_etl("validate", str(pipeline))
    assert proc.returncode == 2
    assert "plugin 'fields'" in proc.stderr and "did you mean 'derive'?" in proc.stderr


def test_etl_plugins_lists_every_transform_with_its_options():
    proc = run_etl("plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    listed = {
        p["name"]: (p["supplier"], [o["name"] for o in p["options"]])
        for p in json.loads(proc.stdout)
        if p["kind"] == "transform"
    }
    assert listed["filter"] == ("etl (builtin)", ["where", "label"])
    assert listed["fields"] == ("etl (builtin)", ["rename", "derive", "set", "drop"])
    assert listed["python"] == (
        "etl (builtin)",
        ["function", "mode", "columns", "kwargs", "allow_outside"],
    )
    assert listed["dedup"][1] == [
        "method",
        "action",
        "threshold",
        "num_perm",
        "shingle",
        "seed",
        "dataset",
    ]
    assert listed["quality"][1][0] == "min_words" and "drop_below" in listed["quality"][1]
    assert listed["normalize"] == (
        "etl-nlp",
        ["form", "fix_mojibake", "whitespace", "boilerplate", "columns"],
    )
    assert listed["language"] == (
        "etl-nlp",
        ["min_confidence", "languages", "max_chars", "use_title", "overwrite"],
    )
