"""docs/plugins.md stays true: its generated reference is fresh, and its examples run as shown."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import duckdb
import pytest

from tests.helpers import ROOT, read_dataset, run_etl

DOC = ROOT / "docs" / "plugins.md"
SCRIPT = ROOT / "scripts" / "gen_plugin_docs.py"


def load_script():
    spec = importlib.util.spec_from_file_location("gen_plugin_docs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def code_blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_generated_reference_is_fresh():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr


def test_check_notices_a_stale_reference_and_every_hook_is_documented(tmp_path):
    gen = load_script()
    text = DOC.read_text(encoding="utf-8")
    from etl import hookspecs

    hooks = [name for name in dir(hookspecs) if name.startswith("etl_")]
    assert len(hooks) >= 5
    for name in hooks:
        assert f"#### `{name}(" in text
    stale = tmp_path / "plugins.md"
    stale.write_text(text.replace("Fires once when the run ends", "Fires at the end"))
    assert gen.main(["--check", "--path", str(stale)]) == 1
    assert gen.main(["--path", str(stale)]) == 0
    assert stale.read_text() == text
    for cls in ("Source", "Transform", "Sink", "Option", "Context", "WorkUnit", "InputRef"):
        assert f"### `etl.{cls}`" in text


def test_the_local_file_walkthrough_runs_as_documented(tmp_path):
    plugin = code_blocks("python")[0]
    pipeline = next(b for b in code_blocks("toml") if 'plugins = ["my_plugin.py"]' in b)
    (tmp_path / "my_plugin.py").write_text(plugin)
    (tmp_path / "pipeline.toml").write_text(pipeline)
    (tmp_path / "articles").mkdir()
    (tmp_path / "articles" / "vote.txt").write_text(
        "Election results\nTurnout was 71 percent, a record.\n"
    )
    (tmp_path / "articles" / "snow.txt").write_text("Snow\nThe pass is closed.\n")
    proc = run_etl("validate", "pipeline.toml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "imports   my_plugin.py (from plugins = [...])" in proc.stdout
    proc = run_etl("run", "pipeline.toml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "2 read, 2 written" in proc.stdout
    assert "keyword_flag:found: 1" in proc.stdout
    rows = duckdb.sql(
        "SELECT title, mentions_keyword FROM "
        f"read_parquet('{tmp_path}/out/articles/**/*.parquet') ORDER BY title"
    ).fetchall()
    assert rows == [("Election results", True), ("Snow", False)]


@pytest.mark.slow
def test_the_testing_snippet_passes_as_documented(tmp_path):
    (tmp_path / "my_plugin.py").write_text(code_blocks("python")[0])
    snippet = next(b for b in code_blocks("python") if "def test_flags" in b)
    (tmp_path / "test_my_plugin.py").write_text("from my_plugin import KeywordFlag\n" + snippet)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_plugin.py"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout


def test_example_local_plugin_pipeline(tmp_path):
    out = tmp_path / "tagged"
    proc = run_etl("run", str(ROOT / "examples" / "local_plugin.toml"), "--set", f"sink.path={out}")
    assert proc.returncode == 0, proc.stderr
    assert "topic_tagger:diplomacy: 1" in proc.stdout
    table = read_dataset(out)
    assert table.column("tags").to_pylist() == [["diplomacy"]]
    validate = run_etl("validate", str(ROOT / "examples" / "local_plugin.toml"))
    assert validate.returncode == 0, validate.stderr
    assert "local file" in validate.stdout and "topic_tagger.py" in validate.stdout


def test_example_local_plugin_checks_its_options_and_passes_the_contract(etl_pm, tmp_path):
    import pytest

    from etl.errors import ConfigError
    from etl.testing import check_transform, sample_articles

    spec = importlib.util.spec_from_file_location(
        "topic_tagger", ROOT / "examples" / "plugins" / "topic_tagger.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tagger = module.TopicTagger
    topics = {"weather": ["snow"], "politics": ["election", "council"]}
    result = check_transform(
        tagger, sample_articles(), {"topics": topics, "drop_untagged": True}, tmp_path=tmp_path
    )
    assert result.table.column("tags").to_pylist() == [["politics"], ["weather"], ["politics"]]
    assert result.counts["counters"]["topic_tagger:untagged"] == 2
    with pytest.raises(ConfigError, match="option 'topics': weather must be a list"):
        tagger({"topics": {"weather": "snow"}}, section="[[transforms]] #1")
