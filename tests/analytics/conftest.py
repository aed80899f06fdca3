"""Datasets the analytics tests read: the seed, a larger example dataset whose schema grew
across two runs, and a partitioned one (built once per session by the real CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.helpers.analytics import EXAMPLES, etl_ok


@pytest.fixture(scope="session")
def datasets(tmp_path_factory) -> dict[str, Path]:
    """name -> dataset folder: ``seed``, ``news`` (grown: 2 runs, +2 columns), ``parted``
    (grown too, hive-partitioned by language)."""
    base = tmp_path_factory.mktemp("analytics")
    out = {"seed": base / "seed", "news": base / "news", "parted": base / "parted"}
    etl_ok("run", str(ROOT / "examples" / "seed.toml"), "--set", f"sink.path={out['seed']}")
    for pipeline in ("news.toml", "news_enriched.toml"):
        etl_ok("run", str(EXAMPLES / pipeline), "--set", f"sink.path={out['news']}")
        etl_ok(
            "run",
            str(EXAMPLES / pipeline),
            "--set",
            f"sink.path={out['parted']}",
            "--set",
            'sink.partition_by=["language"]',
            "--set",
            "sources.1.count=400",
        )
    return out
