"""Option bounds: ``Option(..., min=..., max=...)`` replaces hand-written range checks.

A value out of bounds is a ConfigError that names the plugin, its section and the bound,
before anything runs (exit 2 from ``etl validate`` and ``etl run``); ``etl plugins`` shows
the bounds.
"""

from __future__ import annotations

import json

import pytest

from etl.errors import ConfigError, PluginError
from etl.plugin import Option, Source
from tests.helpers import run_etl, write_pipeline


class Bounded(Source):
    """A source with bounded options."""

    name = "bounded"
    options = (
        Option("count", "int", 1, min=1, help="at least one"),
        Option("share", "float", 0.5, min=0, max=1, help="a share"),
        Option("timeout", "float", 30.0, min=0, min_exclusive=True, help="seconds"),
        Option("below", "int", None, max=10, max_exclusive=True, help="under ten"),
    )


def build(**config):
    return Bounded(config, section="[[sources]] #1 in p.toml")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"count": -1}, "option 'count' must be at least 1, got -1"),
        ({"count": 0}, "option 'count' must be at least 1, got 0"),
        ({"share": 1.5}, "option 'share' must be between 0 and 1, got 1.5"),
        ({"share": -0.1}, "option 'share' must be between 0 and 1, got -0.1"),
        ({"timeout": 0}, "option 'timeout' must be more than 0, got 0"),
        ({"below": 10}, "option 'below' must be less than 10, got 10"),
    ],
)
def test_a_value_out_of_bounds_names_plugin_section_and_bound(config, message):
    with pytest.raises(ConfigError) as info:
        build(**config)
    assert str(info.value).startswith("plugin 'bounded' ([[sources]] #1 in p.toml): ")
    assert message in str(info.value)
    assert info.value.exit_code == 2


def test_values_within_bounds_and_the_edges_pass():
    opts = build(count=1, share=0, timeout=0.001, below=9).opts
    assert (opts.count, opts.share, opts.timeout, opts.below) == (1, 0.0, 0.001, 9)
    assert build(share=1).opts.share == 1.0
    assert build().opts.below is None  # a None default is not checked


def test_describe_shows_the_bounds():
    described = {o.name: o.describe() for o in Bounded.options}
    assert described["count"]["bounds"] == "at least 1"
    assert (described["count"]["min"], described["count"]["max"]) == (1, None)
    assert described["share"]["bounds"] == "between 0 and 1"
    assert described["timeout"]["bounds"] == "more than 0"
    assert described["below"]["bounds"] == "less than 10"
    assert Option("x", "int", 3).describe()["bounds"] is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"type": "str", "default": "a", "min": 1}, "min and max apply to int and float"),
        ({"type": "int", "default": 5, "min": 3, "max": 2}, "min 3 is more than max 2"),
        ({"type": "int", "default": 0, "min": 1}, "the default 0 breaks its own bound"),
    ],
)
def test_a_bad_bound_declaration_is_a_plugin_error(kwargs, message):
    with pytest.raises(PluginError, match=message):
        Option("x", **kwargs)


def test_builtin_sizes_refuse_negative_values():
    """Issue 15: ``max_bytes = -1`` was accepted, then every file was rejected 'too large'."""
    from etl.sources.jsonl import JsonlSource
    from etl.sources.text import TextSource

    for cls in (TextSource, JsonlSource):
        with pytest.raises(ConfigError, match="option 'max_bytes' must be at least 1, got -1"):
            cls({"paths": ["x"], "max_bytes": -1}, section="[[sources]] #1 in p.toml")
    with pytest.raises(ConfigError, match="option 'retries' must be at least 0, got -2"):
        JsonlSource({"paths": ["x"], "retries": -2})


def test_validate_and_run_exit_2_on_a_value_out_of_bounds(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("A headline\nSome text for the article.\n")
    pipeline = write_pipeline(
        tmp_path / "p.toml",
        '[[sources]]\nplugin = "text"\npaths = ["in"]\nmax_bytes = -1\n'
        '[sink]\nplugin = "parquet"\npath = "out"\n',
    )
    expected = (
        f"plugin 'text' ([[sources]] #1 in {pipeline.name}): option 'max_bytes' must be at "
        "least 1, got -1"
    )
    for command in ("validate", "run"):
        proc = run_etl(command, str(pipeline))
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
        assert expected in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_etl_plugins_shows_bounds():
    proc = run_etl("plugins")
    assert proc.returncode == 0, proc.stderr
    assert "max_bytes: int = 67108864 (at least 1)" in proc.stdout
    listed = json.loads(run_etl("plugins", "--json").stdout)
    text = next(p for p in listed if p["kind"] == "source" and p["name"] == "text")
    max_bytes = next(o for o in text["options"] if o["name"] == "max_bytes")
    assert (max_bytes["min"], max_bytes["bounds"]) == (1, "at least 1")


def test_every_numeric_option_of_the_installed_sources_has_a_bound():
    """Issue 15 asked that every numeric option of the builtin sources be range-checked up
    front; this keeps it so for sources added later (a guard: they all were already)."""
    from etl.plugins import get_plugin_manager

    unbounded = [
        f"{name}.{opt.name}"
        for name, reg in get_plugin_manager().registry["source"].items()
        for opt in reg.cls.options
        if opt.type in ("int", "float") and opt.min is None and opt.max is None
    ]
    assert unbounded == []
