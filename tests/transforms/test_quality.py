"""quality: news-text heuristics as a score, a list of failed checks and an optional drop."""

from __future__ import annotations

import pytest

from etl.errors import ConfigError
from etl.testing import check_options, run_transform
from tests.helpers.transforms import article

SPAM = (
    "Subscribe now\nSubscribe now\nSubscribe now\nRead more #news #politics #world #today\n"
    "Subscribe now"
)
ROWS = [{"text": article(n)} for n in ("01-seed.txt", "04-telegraph.txt", "10-short.txt")]
ROWS += [{"text": SPAM}, {"text": "Ein Satz mit genug Wörtern?\n" * 1 + "Nein."}]


def test_options_contract():
    from etl.transforms.quality import QualityTransform

    check_options(QualityTransform)


def test_scores_and_issues():
    result = run_transform("quality", ROWS)
    got = result.table.select(["word_count", "quality_score", "quality_issues"]).to_pylist()
    assert got == [
        {"word_count": 960, "quality_score": 1.0, "quality_issues": []},
        {"word_count": 3123, "quality_score": 1.0, "quality_issues": []},
        # "MISSED ENTIRE ARTICLE BECAUSE IT'S LOADED DYNAMICALLY BY JAVASCRIPT"
        {"word_count": 9, "quality_score": 0.6, "quality_issues": ["words", "punctuation"]},
        {
            "word_count": 14,
            "quality_score": 0.2,
            "quality_issues": ["words", "punctuation", "symbols", "repeated_lines"],
        },
        {"word_count": 6, "quality_score": 0.8, "quality_issues": ["words"]},
    ]
    assert result.summary["dropped"] == 0


def test_drop_below_counts_drops():
    result = run_transform("quality", ROWS, {"drop_below": 0.8, "min_words": 5})
    assert result.table.column("word_count").to_pylist() == [960, 3123, 9, 6]
    assert result.summary["counters"] == {"quality dropped": 1}


def test_repeated_lines_and_word_length_bounds():
    checks = run_transform(
        "quality",
        [{"text": "Alpha beta gamma.\nAlpha beta gamma.\nDelta.\n"}, {"text": "a b c d e."}],
        {"min_words": 1, "max_repeated_lines": 0.2},
    ).table.column("quality_issues")
    assert checks.to_pylist() == [["repeated_lines"], ["word_length"]]


def test_bad_option_is_a_config_error():
    with pytest.raises(ConfigError, match="option 'drop_below' must be between 0 and 1, got 2"):
        run_transform("quality", ROWS, {"drop_below": 2})
    with pytest.raises(ConfigError, match="unknown option 'min_word'"):
        run_transform("quality", ROWS, {"min_word": 2})


def test_byte_counts_equal_the_regex_counts_they_replace():
    # the checks count on the UTF-8 bytes with numpy; the regexes they replaced define them
    import random

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from etl.schema import _WHITESPACE
    from etl.transforms.quality import _byte_counts

    rng = random.Random(5)
    alphabet = [*"ab .\n\t#…”’»!?)", "\u00a0", "\u3000", "\u2009", "é", "..", "\r"]
    texts = ["", " ", "\n", ".", "...", "......", "a...b....", "x.\n \n y” \t\n\t»", "end.  "]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))) for _ in range(600)]
    values = pa.array(texts)
    regexes = [
        f"[^{_WHITESPACE}]+",
        f"[{_WHITESPACE}]",
        r"[^ \t\n][ \t]*(?:\n|$)",
        r"[.!?…:;\"'”’»)\]][ \t]*(?:\n|$)",
        r"#|…|\.\.\.",
    ]
    for regex, got in zip(regexes, _byte_counts(values), strict=True):
        expected = pc.count_substring_regex(values, regex).to_numpy(zero_copy_only=False)
        wrong = np.flatnonzero(expected != got)
        assert not len(wrong), (regex, [texts[i] for i in wrong[:3]])
