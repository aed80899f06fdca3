"""Every input accounted for: per input, ``records = written + duplicates + dropped + rejected``
and ``records >= 1`` (rows or a reject), on the whole corpora tree in tests/data/corpora (real
files of every kind; see tests/data/MANIFEST.tsv), with every file source that is installed
pointed at all of it (so each also meets files it cannot parse)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from etl.config import pipeline_from_dict
from etl.errors import EtlError
from etl.plugins import get_plugin_manager
from etl.run import build_plan, run_plan
from tests.helpers import CORPORA

PLUGINS = Path(__file__).parent / "plugins"


def corpora() -> Path:
    """The corpora tree; a missing one is an error (it is part of the repository)."""
    assert CORPORA.is_dir(), f"the corpora tree is missing: {CORPORA}"
    return CORPORA


def file_sources() -> list[str]:
    """Every installed source that reads local paths (an option named ``paths``)."""
    pm = get_plugin_manager()
    return sorted(
        name
        for name, reg in pm.registry["source"].items()
        if any(o.name == "paths" for o in reg.cls.options)
    )


def check_accounting(summary: dict, dataset: Path) -> None:
    entries = summary["per_input"]
    assert len(entries) == summary["inputs"]
    for e in entries:
        assert e["records"] >= 1, f"{e['input']} gave neither rows nor a reject"
        assert e["records"] == e["written"] + e["duplicates"] + e["dropped"] + e["rejected"], e
        assert e["read"] >= e["written"] + e["duplicates"]
    for key in ("written", "duplicates", "dropped", "rejected", "read"):
        assert summary[key] == sum(e[key] for e in entries), key
    run = summary["run_id"]
    con = duckdb.connect()
    rows = con.execute(
        f"select count(*), count(distinct id) from read_parquet('{dataset}/**/*.parquet', "
        "hive_partitioning = false, union_by_name = true) where run_id = ?",
        [run],
    ).fetchone()
    assert rows == (summary["written"], summary["written"])
    rejects = dataset / "_etl" / "rejects" / f"{run}.rejects.pq"
    n_rejects = (
        con.execute(f"select count(*) from read_parquet('{rejects}')").fetchone()[0]
        if rejects.exists()
        else 0
    )
    assert n_rejects == summary["rejected"]


@pytest.mark.slow
def test_every_input_accounted_for_on_the_corpora(tmp_path):
    tree = corpora()
    sources = file_sources()
    assert "text" in sources
    dataset = tmp_path / "ds"
    spec = {
        "plugins": [str(PLUGINS / "accounting_transforms.py")],
        "run": {"batch_size": 64},
        "sources": [{"plugin": name, "paths": [str(tree)]} for name in sources],
        "transforms": [
            {"plugin": "sometimes_fails", "prefix": "f"},
            {"plugin": "drop_short", "min_words": 40},
        ],
        "sink": {"plugin": "parquet", "path": str(dataset)},
    }
    try:
        plan = build_plan(pipeline_from_dict(spec, base_dir=tmp_path))
    except EtlError as exc:  # a source that needs options we cannot guess generically
        pytest.fail(f"cannot build the all-sources pipeline: {exc}")
    summary = run_plan(plan)
    check_accounting(summary, dataset)
    # every kind of outcome happened, so the identity was tested on each
    assert summary["written"] and summary["duplicates"] and summary["dropped"]
    assert summary["rejected"]
    assert summary["inputs"] >= 200

    # a second run: every input skipped or re-read, and still accounted for
    again = run_plan(build_plan(pipeline_from_dict(spec, base_dir=tmp_path)))
    assert again["inputs_skipped"] > 0
    check_accounting(again, dataset)
    assert again["inputs"] + again["inputs_skipped"] == summary["inputs"]


def test_an_input_that_gives_nothing_still_ends_as_a_reject(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "quiet.txt").write_text("would be an article\n")
    (folder / "quiet.txt.silent").write_text("")
    (folder / "loud.txt").write_text("an article\n")
    dataset = tmp_path / "ds"
    spec = {
        "plugins": [str(PLUGINS / "flaky_source.py")],
        "sources": [{"plugin": "flaky", "paths": [str(folder)]}],
        "sink": {"plugin": "parquet", "path": str(dataset)},
    }
    summary = run_plan(build_plan(pipeline_from_dict(spec, base_dir=tmp_path)))
    quiet = next(e for e in summary["per_input"] if e["input"].endswith("quiet.txt"))
    assert (quiet["records"], quiet["rejected"], quiet["written"]) == (1, 1, 0)
    assert summary["rejects_by_reason"] == {"no articles": 1}
    check_accounting(summary, dataset)
