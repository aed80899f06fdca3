"""ETL_LOAD_PLUGINS and --disable-plugin with real installed entry-point distributions.

The distributions are the scaffolded etl-flagdemo and etl-brokendemo, pip-installed into the
session's throwaway virtualenv (conftest.py); etl-brokendemo fails to import when BREAK_ENV is set.
"""

from __future__ import annotations

import json

import pytest

from tests.helpers import ROOT, write_pipeline
from tests.helpers.plugin_dev import BREAK_ENV

pytestmark = pytest.mark.slow

SEEDS = ROOT / "seeds"


def names(proc) -> set[str]:
    assert proc.returncode == 0, proc.stderr
    return {p["name"] for p in json.loads(proc.stdout) if p["kind"] == "transform"}


@pytest.fixture
def pipeline(tmp_path):
    return write_pipeline(
        tmp_path / "p.toml",
        f'[[sources]]\nplugin = "text"\npaths = ["{SEEDS}"]\n'
        '[[transforms]]\nplugin = "flagdemo"\n'
        '[sink]\nplugin = "parquet"\npath = "out"\n',
    )


def test_all_installed_distributions_load_by_default(plugin_env):
    assert {"flagdemo", "brokendemo"} <= names(plugin_env.etl("plugins", "--json"))


def test_etl_load_plugins_limits_to_the_named_distributions(plugin_env):
    only = plugin_env.etl("plugins", "--json", env={"ETL_LOAD_PLUGINS": "etl-flagdemo"})
    assert "flagdemo" in names(only) and "brokendemo" not in names(only)
    # distribution names compare canonically (etl_flagdemo is etl-flagdemo), spaces ignored
    both = plugin_env.etl(
        "plugins", "--json", env={"ETL_LOAD_PLUGINS": " etl_Flagdemo, etl-brokendemo"}
    )
    assert {"flagdemo", "brokendemo"} <= names(both)


def test_empty_etl_load_plugins_means_builtins_only(plugin_env, pipeline):
    from etl.plugins import get_plugin_manager

    builtins = {(r.cls.kind, r.cls.name) for r in get_plugin_manager(entry_points=False).all()}
    listed = plugin_env.etl("plugins", "--json", env={"ETL_LOAD_PLUGINS": ""})
    assert listed.returncode == 0, listed.stderr
    assert {(p["kind"], p["name"]) for p in json.loads(listed.stdout)} == builtins
    assert ("source", "text") in builtins
    proc = plugin_env.etl("run", str(pipeline), env={"ETL_LOAD_PLUGINS": ""})
    assert proc.returncode == 2
    assert "no transform plugin named 'flagdemo' ([[transforms]] #1 in p.toml)" in proc.stderr


def test_etl_load_plugins_naming_an_unknown_distribution_is_an_error(plugin_env):
    proc = plugin_env.etl("plugins", env={"ETL_LOAD_PLUGINS": "etl-flagdemo,etl-nope"})
    assert proc.returncode == 2
    assert "ETL_LOAD_PLUGINS names etl-nope" in proc.stderr
    assert "etl-flagdemo" in proc.stderr  # the installed ones are listed
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("name", ["flagdemo", "etl-flagdemo"])
def test_disable_plugin_by_plugin_or_distribution_name_on_every_command(plugin_env, pipeline, name):
    listed = plugin_env.etl("plugins", "--json", "--disable-plugin", name)
    assert "flagdemo" not in names(listed) and "brokendemo" in names(listed)
    for command in ("run", "validate"):
        proc = plugin_env.etl(command, str(pipeline), "--disable-plugin", name)
        assert proc.returncode == 2, (command, proc.stderr)
        assert "no transform plugin named 'flagdemo'" in proc.stderr
    ok = plugin_env.etl("validate", str(pipeline), "--disable-plugin", "brokendemo")
    assert ok.returncode == 0, ok.stderr


def test_disable_plugin_is_repeatable_and_can_disable_a_builtin(plugin_env):
    proc = plugin_env.etl(
        "plugins", "--json", "--disable-plugin", "flagdemo", "--disable-plugin", "text"
    )
    assert proc.returncode == 0, proc.stderr
    found = {(p["kind"], p["name"]) for p in json.loads(proc.stdout)}
    assert ("transform", "flagdemo") not in found and ("source", "text") not in found
    assert ("transform", "brokendemo") in found and ("sink", "parquet") in found


def test_a_plugin_that_fails_to_import_names_its_distribution(plugin_env, pipeline):
    env = {BREAK_ENV: "1"}
    for args in (("plugins",), ("validate", str(pipeline)), ("run", str(pipeline))):
        proc = plugin_env.etl(*args, env=env)
        assert proc.returncode == 2, (args, proc.stderr)
        assert (
            "plugin 'brokendemo' from the distribution etl-brokendemo 0.1.0 failed to import: "
            "ModuleNotFoundError: No module named 'no_such_module_for_etl_test'"
        ) in proc.stderr
        assert "--disable-plugin brokendemo" in proc.stderr
        assert "Traceback" not in proc.stderr
    verbose = plugin_env.etl("plugins", "-v", env=env)
    assert verbose.returncode == 2
    assert "Traceback" in verbose.stderr and "etl_brokendemo.py" in verbose.stderr
    # the way out the hint gives works, and so does ETL_LOAD_PLUGINS
    assert (
        plugin_env.etl(
            "validate", str(pipeline), "--disable-plugin", "brokendemo", env=env
        ).returncode
        == 0
    )
    env_only = {**env, "ETL_LOAD_PLUGINS": "etl-flagdemo"}
    assert plugin_env.etl("run", str(pipeline), env=env_only).returncode == 0
