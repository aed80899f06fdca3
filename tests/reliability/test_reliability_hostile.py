"""Hostile input: every registered file source, fed arbitrary bytes, arbitrary Unicode, NUL
bytes, invalid surrogates and huge lines, never crashes the run, and each input ends as rows
or a reject. Runs are in-process (etl.run), a few dozen examples per source."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl.config import pipeline_from_dict
from etl.plugins import get_plugin_manager
from etl.run import build_plan, run_plan
from tests.helpers.reliability import FILE_SOURCES, file_name

PM = get_plugin_manager()


def surrogate_bytes(text: str) -> bytes:
    """UTF-8 with lone surrogates (CESU-style ``\\xed\\xa0\\x80``), invalid for any decoder."""
    return text.encode("utf-8", "surrogatepass")


contents = st.one_of(
    st.binary(max_size=4000),
    st.text(max_size=2000).map(lambda t: t.encode("utf-8")),
    st.text(max_size=500).map(lambda t: t.encode("utf-16")),
    st.text(
        alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=50
    )
    .map(lambda s: "title\n" + s + "\nbody body")
    .map(surrogate_bytes),
    st.lists(
        st.sampled_from([b"\x00", b"text ", b"{", b'"', b"\n", b"<p>", b",", b"\r"]), max_size=400
    ).map(b"".join),
    st.integers(min_value=100_000, max_value=1_500_000).map(
        lambda n: b"word " * (n // 5)
    ),  # one huge line
    st.sampled_from(
        [
            b"",
            b"\x00" * 1000,
            b"\xef\xbb\xbf",
            b'{"text": "\\ud800 lone surrogate escape"}\n',
            b'{"text": "ok"}\n{"text": \n',
            b"text\n\xff\xfe\x00\x00",
            b"<?xml version='1.0'?><rss><channel><item><title>\x00</title></item></channel></rss>",
        ]
    ),
)


def run_one(source: str, data: bytes) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / file_name(source)
        path.write_bytes(data)
        spec = {
            # one hostile input is often all rejected: commit anyway, to see its account
            "run": {"max_reject_ratio": 1},
            "sources": [{"plugin": source, "paths": [str(path)]}],
            "sink": {"plugin": "parquet", "path": str(Path(tmp) / "ds")},
        }
        plan = build_plan(pipeline_from_dict(spec, base_dir=Path(tmp)), pm=PM)
        summary = run_plan(plan)  # raises if the run crashed
    return summary


@pytest.mark.parametrize("source", FILE_SOURCES)
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
@pytest.mark.slow
@given(data=contents)
def test_source_never_crashes_and_accounts_for_its_input(source, data):
    summary = run_one(source, data)
    (entry,) = summary["per_input"]
    assert entry["records"] >= 1, "the input vanished: neither rows nor a reject"
    assert (
        entry["records"]
        == entry["written"] + entry["duplicates"] + entry["dropped"] + entry["rejected"]
    )
    # a crash inside the source would be a 'source error' reject: a bug to fix, not handling
    assert "source error" not in summary["rejects_by_reason"], summary["rejects_by_reason"]


def test_the_sources_under_test_include_the_core_ones():
    assert {"text", "jsonl", "csv"} <= set(FILE_SOURCES)
