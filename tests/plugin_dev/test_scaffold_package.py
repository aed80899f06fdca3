"""`etl new plugin` end to end: scaffold, pip install -e, run its tests, list it, use it.

This is the path docs/plugins.md walks a new user through; each step runs the real commands
in a subprocess, in a throwaway virtualenv (see conftest.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib

import duckdb
import pytest

from etl.scaffold import new_plugin, plugin_names
from tests.helpers import ROOT, run_etl, write_pipeline

SEEDS = ROOT / "seeds"


def test_scaffold_writes_the_first_party_layout(tmp_path):
    proc = run_etl("new", "plugin", "keyword-tagger", "--dir", str(tmp_path / "pkg"))
    assert proc.returncode == 0, proc.stderr
    pkg = tmp_path / "pkg"
    files = sorted(p.relative_to(pkg).as_posix() for p in pkg.rglob("*") if p.is_file())
    assert files == [
        ".gitignore",
        "README.md",
        "etl_keyword_tagger.py",
        "pyproject.toml",
        "tests/test_etl_keyword_tagger.py",
    ]
    for rel in files:
        assert rel in proc.stdout
    meta = tomllib.loads((pkg / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "etl-keyword-tagger"
    assert meta["project"]["entry-points"]["etl"] == {"keyword-tagger": "etl_keyword_tagger"}
    assert meta["tool"]["setuptools"]["py-modules"] == ["etl_keyword_tagger"]
    readme = (pkg / "README.md").read_text()
    assert 'plugin = "keyword-tagger"' in readme and "{{" not in readme
    assert "- `min_words` (int, default `0`, at least 0): drop articles with fewer words" in readme
    module = (pkg / "etl_keyword_tagger.py").read_text()
    assert "class KeywordTaggerTransform(Transform):" in module and "{{" not in module


def test_scaffold_refuses_bad_names_and_non_empty_folders(tmp_path):
    proc = run_etl("new", "plugin", "9 lives", "--dir", str(tmp_path / "a"))
    assert proc.returncode == 2
    assert "'9 lives' is not a usable plugin name" in proc.stderr
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "keep.txt").write_text("mine")
    proc = run_etl("new", "plugin", "ok", "--dir", str(tmp_path / "b"))
    assert proc.returncode == 2
    assert "already exists and is not empty" in proc.stderr
    assert (tmp_path / "b" / "keep.txt").read_text() == "mine"
    assert "Traceback" not in proc.stderr
    assert plugin_names("etl-Feed_Plus")["dist"] == "etl-feed-plus"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["source", "transform", "sink"])
def test_generated_tests_pass_and_code_is_lint_clean(tmp_path, kind):
    pkg = new_plugin(f"demo-{kind}", kind, tmp_path / "pkg")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(pkg)],
        capture_output=True,
        text=True,
        cwd=pkg,
        env={**__import__("os").environ, "PYTHONPATH": str(pkg)},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " passed" in proc.stdout and "failed" not in proc.stdout
    ruff = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "."],
        capture_output=True,
        text=True,
        cwd=pkg,
    )
    if "No module named ruff" in ruff.stderr:
        pytest.skip("ruff is not installed")
    assert ruff.returncode == 0, ruff.stdout
    fmt = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--no-cache", "--check", "."],
        capture_output=True,
        text=True,
        cwd=pkg,
    )
    assert fmt.returncode == 0, fmt.stdout


@pytest.mark.slow
def test_installed_package_tests_pass_in_its_own_environment(plugin_env):
    proc = plugin_env.run("-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=plugin_env.flagdemo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "5 passed" in proc.stdout


@pytest.mark.slow
def test_installed_package_is_listed_by_etl_plugins(plugin_env):
    proc = plugin_env.etl("plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    found = {(p["kind"], p["name"]): p for p in json.loads(proc.stdout)}
    flagdemo = found[("transform", "flagdemo")]
    assert (flagdemo["supplier"], flagdemo["version"]) == ("etl-flagdemo", "0.1.0")
    assert flagdemo["summary"].startswith("Flags articles whose text mentions a keyword")
    assert [o["name"] for o in flagdemo["options"]] == ["keywords", "column", "min_words"]
    text = plugin_env.etl("plugins").stdout
    assert "transform flagdemo  (etl-flagdemo 0.1.0)" in text


@pytest.mark.slow
def test_a_pipeline_uses_the_installed_plugin_at_once(plugin_env, tmp_path):
    pipeline = write_pipeline(
        tmp_path / "p.toml",
        f'[[sources]]\nplugin = "text"\npaths = ["{SEEDS}"]\n'
        '[[transforms]]\nplugin = "flagdemo"\nkeywords = ["Putin", "football"]\n'
        '[sink]\nplugin = "parquet"\npath = "out"\n',
    )
    proc = plugin_env.etl("run", str(pipeline))
    assert proc.returncode == 0, proc.stderr
    assert "1 read, 1 written" in proc.stdout
    assert "flagdemo:matched: 1" in proc.stdout
    rows = duckdb.sql(
        f"SELECT flagdemo_match, source FROM read_parquet('{tmp_path / 'out'}/**/*.parquet')"
    ).fetchall()
    assert rows == [(True, "text")]
    validate = plugin_env.etl("validate", str(pipeline))
    assert validate.returncode == 0, validate.stderr
    assert "[etl-flagdemo 0.1.0]" in validate.stdout


@pytest.mark.slow
def test_etl_pm_fixture_keeps_installed_plugins_out(plugin_env, tmp_path):
    test = tmp_path / "test_isolation.py"
    test.write_text(
        "from etl.plugins import get_plugin_manager\n"
        "def test_builtins_only(etl_pm):\n"
        "    assert 'flagdemo' not in etl_pm.registry['transform']\n"
        "    assert 'text' in etl_pm.registry['source']\n"
        "    assert 'flagdemo' in get_plugin_manager().registry['transform']\n"
    )
    proc = plugin_env.run("-m", "pytest", "-q", "-p", "no:cacheprovider", str(test), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed" in proc.stdout


def test_installed_package_is_importable_only_in_its_venv():
    # the scaffolded packages must never leak into the environment running the tests
    from etl.plugins import get_plugin_manager

    assert "flagdemo" not in get_plugin_manager().registry["transform"]
