"""examples/{html,feed,warc,mixed}.toml run as documented, into a temporary dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.mark.parametrize(
    ("name", "sources", "rejects"),
    [
        ("html", {"html"}, set()),
        ("feed", {"feed"}, {"empty entry"}),
        ("warc", {"warc"}, set()),
        (
            "mixed",
            {"text", "jsonl", "html", "feed", "warc"},
            {"empty entry", "malformed JSON", "no text"},
        ),
    ],
)
def test_web_example_runs(tmp_path, etl_cli, name, sources, rejects):
    run_etl, read_dataset, read_rejects = etl_cli
    out = tmp_path / "ds"
    proc = run_etl("run", str(EXAMPLES / f"{name}.toml"), "--set", f"sink.path={out}")
    assert proc.returncode == 0, proc.stderr
    table = read_dataset(out)
    assert set(table.column("source").to_pylist()) == sources
    assert {r["reason"] for r in read_rejects(out).to_pylist()} == rejects
    titles = set(table.column("title").to_pylist())
    if "html" in sources:
        assert any(t and t.startswith("Leslie Clio") for t in titles)
    if "feed" in sources:
        assert "Marcus Aurelius" in titles
    if "warc" in sources:
        assert "Example Domain" in titles
