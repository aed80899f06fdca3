"""`etl plugins` answers from a cache keyed by all it depends on (benchmarks/cli_startup.py)."""

from __future__ import annotations

import json

import etl.plugins
from etl.commands.plugin_cache import ENTRY_POINT_GROUP
from etl.plugins.manager import ENTRY_POINT_GROUP as MANAGER_GROUP
from tests.helpers import run_etl


def listed(*args, env):
    proc = run_etl("plugins", "--json", *args, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_plugins_are_listed_from_the_cache_until_what_they_depend_on_changes(tmp_path, monkeypatch):
    env = {"ETL_CACHE_DIR": str(tmp_path / "cache")}
    first = listed(env=env)
    assert len(list((tmp_path / "cache").glob("plugins-*.json"))) == 1

    def no_import(**kwargs):
        raise AssertionError("the plugins were imported again")

    monkeypatch.setattr(etl.plugins, "get_plugin_manager", no_import)
    assert listed(env=env) == first  # from the cache: nothing imported
    monkeypatch.undo()
    # another --disable-plugin, another ETL_LOAD_PLUGINS: another listing
    fewer = listed("--disable-plugin", "csv", env=env)
    assert "csv" not in {p["name"] for p in fewer} and "csv" in {p["name"] for p in first}
    builtins = listed(env={**env, "ETL_LOAD_PLUGINS": ""})
    assert {p["supplier"] for p in builtins} == {"etl (builtin)"}
    assert len(list((tmp_path / "cache").glob("plugins-*.json"))) == 1  # the latest only
    off = listed(env={"ETL_CACHE_DIR": ""})
    assert off == first


def test_the_cache_names_the_entry_point_group_the_manager_loads():
    assert ENTRY_POINT_GROUP == MANAGER_GROUP
