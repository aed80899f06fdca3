"""Issue 16: ways to hang a run, lose or double-count data, leak a secret or leave the inputs.

Each test reproduces one case of the issue and failed before its fix (docs/reliability.md,
"Hardening (issue 16)", lists them). Runs that could hang run in a subprocess with a
timeout, so a regression fails the test instead of stopping the suite; the ones whose
memory matters measure the child's peak RSS.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from etl.config import pipeline_from_dict
from etl.plugins import get_plugin_manager
from etl.run import build_plan, run_plan
from etl.testing import last_run_inputs
from tests.helpers.reliability import make_corpus

PM = get_plugin_manager()
#: the bound on a child run's peak memory in the cases that used to grow without limit
MAX_RSS_MB = 500


def run_spec(tmp: Path, spec: dict) -> dict:
    """Run a pipeline given as data, in this process; the summary."""
    return run_plan(build_plan(pipeline_from_dict(spec, base_dir=tmp), pm=PM))


def assert_accounted(dataset: Path, summary: dict) -> dict[str, dict]:
    """records = written + duplicates + dropped + rejected, per input and in total."""
    rows = last_run_inputs(dataset)
    for name, row in rows.items():
        parts = row["written"] + row["duplicates"] + row["dropped"] + row["rejected"]
        assert row["records"] == parts, (name, row)
        assert min(row["written"], row["duplicates"], row["dropped"], row["rejected"]) >= 0
    for column in ("written", "duplicates", "dropped", "rejected"):
        assert sum(r[column] for r in rows.values()) == summary[column], column
    return rows


# 12. accounting when a transform fails on every article


FAILING = """
import pyarrow as pa


def per_article(article: dict):
    raise ValueError("no")


def per_batch(batch: pa.RecordBatch):
    raise ValueError("no")
"""


@pytest.mark.parametrize("function", ["per_article", "per_batch"])
def test_a_transform_failing_on_every_article_rejects_each_once(tmp_path, function):
    """Case 12: 300 articles (60 repeating the text of another file, and JSON lines that
    repeat within a file) all rejected by a python transform: each is counted once, as a
    reject of its own input, never as dropped."""
    (tmp_path / "fns.py").write_text(FAILING, encoding="utf-8")
    make_corpus(tmp_path / "text", 300, duplicates=60)
    lines = tmp_path / "lines"
    lines.mkdir()
    for i in range(3):
        body = "".join(json.dumps({"text": f"same text {k % 5}"}) + "\n" for k in range(100))
        (lines / f"{i}.jsonl").write_text(body, encoding="utf-8")
    for plugin, folder in (("text", "text"), ("jsonl", "lines")):
        dataset = tmp_path / f"ds-{plugin}"
        summary = run_spec(
            tmp_path,
            {
                "sources": [{"plugin": plugin, "paths": [str(tmp_path / folder)]}],
                "transforms": [{"plugin": "python", "function": f"fns.py:{function}"}],
                "sink": {"plugin": "parquet", "path": str(dataset)},
            },
        )
        assert (summary["written"], summary["dropped"], summary["rejected"]) == (0, 0, 300)
        rows = assert_accounted(dataset, summary)
        assert all(r["rejected"] == r["records"] for r in rows.values())
