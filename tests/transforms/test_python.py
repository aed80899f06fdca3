"""python: user code per article or per batch; an exception rejects that article."""

from __future__ import annotations

import pytest

from etl.errors import ConfigError
from etl.testing import check_options, run_transform
from tests.helpers.transforms import article

FNS = "userfns/fns.py"
HERE = __import__("pathlib").Path(__file__).resolve().parent

ROWS = [
    {"text": article("01-seed.txt"), "title": "US eyes nuclear deal", "uri": "a"},
    {"text": article("10-short.txt"), "title": None, "uri": "b"},
    {"text": article("07-french.txt"), "title": "Molière", "uri": "c"},
]


def _run(function, rows=ROWS, **opts):
    return run_transform(
        "python",
        rows,
        # the functions live here, outside the temporary pipeline's folder: opt in
        {"function": f"{HERE / FNS}:{function}", "allow_outside": True, **opts},
        batch_size=1024,
    )


def test_options_contract():
    from etl.transforms.python import PythonTransform

    check_options(PythonTransform)


def test_per_article_updates_adds_and_drops():
    result = _run("shout_title", columns={"title_words": "int"})
    assert result.table.column("title").to_pylist() == ["US EYES NUCLEAR DEAL", "MOLIÈRE"]
    assert result.table.column("title_words").to_pylist() == [4, 1]
    assert result.table.column("uri").to_pylist() == ["a", "c"]
    assert result.summary["counters"] == {"python dropped": 1}


def test_exception_rejects_that_article_only():
    result = _run("fails_on_short")
    assert result.table.column("uri").to_pylist() == ["a", "c"]
    assert result.reject_reasons == ["python function error"]
    reject = result.rejects.to_pylist()[0]
    assert reject["detail"] == "ValueError: too short: 9 words"
    assert reject["input"] == "b"
    assert len(reject["article_id"]) == 32


def test_undeclared_columns_are_named():
    result = _run("shout_title")  # returns title_words, not declared here
    assert result.table.num_rows == 0
    assert result.reject_reasons == ["python function returned an unknown column"] * 2
    assert result.rejects.column("detail")[0].as_py() == (
        "'title_words' is not a column; declare it in the pipeline: "
        'columns = {title_words = "string"}'
    )
    example = str(HERE.parents[1] / "examples" / "clean.py") + ":strip_signature"
    assert (
        run_transform("python", ROWS, {"function": example, "allow_outside": True}).table.num_rows
        == 3
    )


def test_changing_id_is_a_reject():
    result = _run("changes_id")
    assert result.table.num_rows == 0
    assert result.reject_reasons == ["python function changed id"] * 3


def test_per_batch_changes_text_and_counts_follow():
    result = _run("upper_first_line")
    assert result.table.column("text")[0].as_py().startswith("CHINESE PRESIDENT XI JINPING, ")
    example = str(HERE.parents[1] / "examples" / "clean.py") + ":strip_signature"
    result = run_transform("python", ROWS, {"function": example, "allow_outside": True})
    text = result.table.column("text")[0].as_py()
    assert text.endswith("their own small clique mindset.")
    # the trailing "(Global Times)" is gone: two words fewer, counts recomputed
    assert result.table.column("word_count").to_pylist() == [958, 9, 525]
    assert result.table.column("char_count")[0].as_py() == len(text)


def test_annotation_declares_batch_mode_and_rows_may_be_dropped():
    result = _run("keep_long")
    assert result.table.column("uri").to_pylist() == ["a", "c"]
    assert result.summary["counters"] == {"python dropped": 1}


def test_batch_exception_is_narrowed_to_the_failing_article():
    result = _run("batch_fails_on_short")
    assert result.table.column("uri").to_pylist() == ["a", "c"]
    rejects = result.rejects.to_pylist()
    assert [(r["reason"], r["input"], r["detail"]) for r in rejects] == [
        ("python function error", "b", "RuntimeError: a short article in this batch")
    ]


def test_module_path_and_example_file():
    result = run_transform(
        "python",
        ROWS,
        {
            "function": str(HERE.parents[1] / "examples" / "clean.py") + ":tag_topic",
            "allow_outside": True,
            "columns": {"topic": "string"},
        },
    )
    assert result.table.column("topic").to_pylist() == ["security", "other", "other"]
    result = run_transform("python", ROWS, {"function": "json:dumps", "mode": "article"})
    assert result.reject_reasons == ["python function error"] * 3


@pytest.mark.parametrize(
    ("function", "opts", "message"),
    [
        ("undeclared", {}, "cannot tell whether"),
        ("nosuch", {}, "has no function 'nosuch'"),
        ("shout_title", {"columns": {"x": "varchar"}}, "option 'columns': x has type 'varchar'"),
        ("shout_title", {"mode": "rows"}, "option 'mode' is 'rows'"),
    ],
)
def test_mistakes_are_config_errors(function, opts, message):
    with pytest.raises(ConfigError, match="plugin 'python'") as info:
        _run(function, **opts)
    assert message in str(info.value)


def test_missing_module_is_a_config_error():
    with pytest.raises(ConfigError, match="module 'no_such_module_xyz' failed to import"):
        run_transform("python", ROWS, {"function": "no_such_module_xyz:f"})
