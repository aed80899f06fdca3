"""examples/analytics: the DuckDB SQL, the Polars script and the pandas notebook-style script
run over the seed dataset and the larger (grown, and partitioned) example datasets, and agree."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tests.helpers import WITH_PANDAS
from tests.helpers.analytics import EXAMPLES, written

pytestmark = pytest.mark.slow


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


duckdb_queries = _load("duckdb_queries")


def script_summary(script: str, dataset) -> dict:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), str(dataset)],
        env={**os.environ, **WITH_PANDAS},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith("SUMMARY ")][-1]
    return json.loads(line[len("SUMMARY ") :])


@pytest.mark.parametrize("name", ["seed", "news", "parted"])
def test_examples_agree(datasets, name):
    root = datasets[name]
    sql = duckdb_queries.run(root)
    total = sql["totals"][0][0]
    assert total == sum(written(root))
    assert sql["ids_check"] == [(0,)]  # every id is the sha256 of its text
    assert [r[1] for r in sql["per_run"]] == written(root)
    duck_publishers = {p: n for p, n, _ in sql["per_publisher"]}
    duck_rejects = dict(sql["rejects_by_reason"])
    for script in ("polars_analysis.py", "pandas_notebook.py"):
        got = script_summary(script, root)
        assert got["articles"] == total, script
        assert got["per_publisher"] == duck_publishers, script
        assert got["rejects"] == duck_rejects, script
    if name == "seed":
        assert duck_publishers == {"Global Times": 1} and duck_rejects == {}
    else:
        assert duck_rejects == {"empty text": sum(r for r in duck_rejects.values())} != {}
        assert len(duck_publishers) == 7
