"""Every input accounted for: per input, ``records = written + duplicates + dropped + rejected``
and ``records >= 1`` (rows or a reject), on the corpora tree in tests/data/corpora (real files
of every kind; see tests/data/MANIFEST.tsv) with a sample of the HTML pages of
plugins/etl-html/tests/data/html (its own MANIFEST.tsv; one copy of them in the repository),
with every file source that is installed pointed at all of it (so each also meets files it
cannot parse)."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from etl.config import pipeline_from_dict
from etl.errors import EtlError
from etl.plugins import get_plugin_manager
from etl.run import build_plan, run_plan
from tests.helpers import CORPORA

PLUGINS = Path(__file__).parent / "plugins"
#: the real HTML pages: the html plugin's test data (its MANIFEST.tsv says where they come from)
PAGES = Path(__file__).parents[2] / "plugins" / "etl-html" / "tests" / "data" / "html"


#: HTML pages kept per corpus of corpora/html, besides those with odd names: the pages are
#: four fifths of the tree's bytes and most of this test's time, and every one of them is
#: run through the html source and accounted for by plugins/etl-html's corpus test (its
#: tests/data/html is the same tree)
PAGES_PER_CORPUS = 3


def corpora(tmp_path: Path) -> Path:
    """The corpora tree (a missing one is an error: it is part of the repository), copied with
    every file but most HTML pages: of each corpus of corpora/html, the first pages by name
    and every page whose name is not plain ASCII without spaces, each with the files beside
    it that share its stem (gold text, metadata)."""
    assert CORPORA.is_dir(), f"the corpora tree is missing: {CORPORA}"
    assert PAGES.is_dir(), f"the HTML pages are missing: {PAGES}"
    tree = tmp_path / "corpora"
    for root, into, keep in ((CORPORA, tree, None), (PAGES, tree / "html", _kept)):
        for path in sorted(root.rglob("*")):
            if path.is_file() and (keep is None or keep(path)):
                rel = path.relative_to(root)
                (into / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, into / rel)
    return tree


def _kept(path: Path) -> bool:
    stems = sorted(p.name.split(".html")[0] for p in path.parent.iterdir() if ".html" in p.name)
    mine = [stem for stem in stems if path.name.startswith(stem + ".")]
    keep = set(stems[:PAGES_PER_CORPUS]) | {s for s in stems if not s.isascii() or " " in s}
    if path.name == "MANIFEST.tsv":  # the plugin's sources list: the corpora's is copied
        return False
    return not mine or any(stem in keep for stem in mine)


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
    tree = corpora(tmp_path)
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
