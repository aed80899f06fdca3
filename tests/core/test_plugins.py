import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from etl import Option, Source, Transform
from etl.errors import ConfigError, PluginError
from etl.plugins import get_plugin_manager
from tests.helpers import WITH_PANDAS


def test_builtins_registered_with_supplier(etl_pm):
    names = {(r.cls.kind, r.cls.name) for r in etl_pm.all()}
    assert {("source", "text"), ("sink", "parquet"), ("executor", "local")} <= names
    assert etl_pm.registry["source"]["text"].supplier == "etl (builtin)"


def test_two_plugins_with_one_name_is_an_error_naming_both(etl_pm):
    class Other(Source):
        name = "text"

    with pytest.raises(PluginError) as info:
        etl_pm.add_plugin_class(Other, supplier="acme-plugins", module="acme")
    message = str(info.value)
    assert "etl (builtin)" in message and "acme-plugins" in message


def test_option_declared_twice_is_refused(etl_pm):
    class Twice(Transform):
        name = "twice"
        options = (Option("a"), Option("a", "int"))

    with pytest.raises(PluginError, match="declares option 'a' twice"):
        etl_pm.add_plugin_class(Twice, supplier="me")


def test_unknown_plugin_lists_installed(etl_pm):
    with pytest.raises(ConfigError, match=r"no source plugin named 'rsss' \(\[\[sources\]\] #2\)"):
        etl_pm.get("source", "rsss", "[[sources]] #2")


def test_options_are_validated_with_hints(etl_pm):
    cls = etl_pm.get("sink", "parquet")
    with pytest.raises(
        ConfigError, match="unknown option 'compresion'.*\n.*did you mean 'compression'"
    ):
        cls({"path": "x", "compresion": "zstd"}, section="[sink]")
    with pytest.raises(ConfigError, match="option 'row_group_size' must be int"):
        cls({"path": "x", "row_group_size": "big"}, section="[sink]")
    with pytest.raises(ConfigError, match="missing required option 'path'"):
        cls({}, section="[sink]")
    with pytest.raises(ConfigError, match="choose one of"):
        cls({"path": "x", "mode": "upsert"}, section="[sink]")


def test_local_plugin_file_is_loaded(tmp_path: Path):
    (tmp_path / "shout.py").write_text(
        "from etl import Transform, hookimpl\n"
        "class Shout(Transform):\n"
        "    '''Upper-cases titles.'''\n"
        "    name = 'shout'\n"
        "@hookimpl\n"
        "def etl_register_plugins(register):\n"
        "    register(Shout)\n"
    )
    pm = get_plugin_manager(local=["shout.py"], base_dir=tmp_path, entry_points=False)
    assert pm.get("transform", "shout").supplier.startswith("local file")
    with pytest.raises(ConfigError, match="no such plugin file"):
        get_plugin_manager(local=["nope.py"], base_dir=tmp_path, entry_points=False)


@pytest.mark.slow
def test_start_up_imports_nothing_heavy():
    """`etl --help` needs no pyarrow and `etl plugins` no pandas (pyarrow imports pandas the
    first time an array or scalar is built from Python values: not at module level)."""
    code = (
        "import sys, etl, etl.cli\n"
        "print('pyarrow' in sys.modules)\n"
        "from etl.plugins import get_plugin_manager\n"
        "get_plugin_manager()\n"
        "print('pandas' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **WITH_PANDAS},  # pandas importable: the test is that none imports it
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["False", "False"]


@pytest.mark.slow
def test_logging_is_set_up_only_when_something_is_logged(tmp_path: Path):
    """A quiet run logs nothing and never imports structlog (nor asyncio with it); -v logs."""
    (tmp_path / "a.txt").write_text("A short article about nothing much at all.\n")
    (tmp_path / "p.toml").write_text(
        '[[sources]]\nplugin = "text"\npaths = ["a.txt"]\n'
        '[sink]\nplugin = "parquet"\npath = "out"\n'
    )
    code = (
        "import sys\n"
        "from etl.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('structlog' in sys.modules)\n"
    )
    run = [sys.executable, "-c", code, "run", str(tmp_path / "p.toml")]
    quiet = subprocess.run([*run, "-q"], capture_output=True, text=True, check=True)
    assert quiet.stdout.split()[-1] == "False"
    assert quiet.stderr == ""
    verbose = subprocess.run([*run, "-v", "--log-format", "json"], capture_output=True, text=True)
    assert verbose.stdout.split()[-1] == "True"
    events = [json.loads(line) for line in verbose.stderr.splitlines()]
    # one event per stage and plugin
    assert [e["event"] for e in events] == [
        "run started",
        "source done",
        "sink done",
        "run committed",
    ]
    assert all(e["level"] == "info" and e["run_id"] for e in events)
