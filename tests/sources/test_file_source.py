"""FileSource: the base class that gives every file source (bundled, plugin packages and
third-party ones) the same options, listing and readers.

The sources here are written as a third-party author would: they declare only their own
options and ``read``.
"""

from __future__ import annotations

import gzip

import pytest

from etl.errors import ConfigError
from etl.inputs import InputError
from etl.plugin import Option
from etl.plugins import get_plugin_manager
from etl.sources import DEFAULT_MAX_BYTES, FileSource
from etl.testing import check_source, run_source


class Shouting(FileSource):
    """Text files, upper-cased: one article per file."""

    name = "shouting"
    default_include = ["*.txt"]
    options = (Option("suffix", "str", "!", help="appended to every text"),)

    def read(self, unit, ctx):
        data = self.read_bytes(unit, ctx)
        if data is None:  # rejected (too large, unreadable...)
            return
        yield ctx.articles(text=[data.decode().upper() + self.opts.suffix], uri=[unit.key])


class Lines(FileSource):
    """One article per line, streamed; a read that fails part way is rejected at its line."""

    name = "lines"
    default_max_bytes = None
    remote_options = False

    def read(self, unit, ctx):
        line = 0
        try:
            with self.open_input(unit) as stream:
                for raw in stream:
                    line += 1
                    if raw.strip():
                        yield ctx.articles(text=[raw.decode().strip()], uri=[unit.key])
        except InputError as exc:
            ctx.reject(exc.reason, location=f"line {line + 1}", detail=exc.detail)


def names(cls):
    return [o.name for o in cls.options]


def test_common_options_come_around_the_own_ones():
    assert names(Shouting) == [
        "paths",
        "include",
        "allow_outside_links",
        "suffix",
        "max_bytes",
        "retries",
        "backoff",
        "timeout",
        "deadline",
        "storage_options",
    ]
    options = {o.name: o for o in Shouting.options}
    assert options["include"].default == ["*.txt"]
    assert options["max_bytes"].default == DEFAULT_MAX_BYTES
    assert options["max_bytes"].bounds() == "at least 1"
    assert options["retries"].bounds() == "at least 0"
    assert options["timeout"].bounds() == "more than 0"
    assert Shouting.own_options == (options["suffix"],)
    # no retries/timeout, no size limit by default
    assert names(Lines) == [
        "paths",
        "include",
        "allow_outside_links",
        "max_bytes",
        "storage_options",
    ]
    assert {o.name: o.default for o in Lines.options}["max_bytes"] is None
    assert names(FileSource) == [
        "paths",
        "include",
        "allow_outside_links",
        "max_bytes",
        "retries",
        "backoff",
        "timeout",
        "deadline",
        "storage_options",
    ]


def test_class_attributes_and_overrides_recompose_the_options():
    class NoLimit(Shouting):
        """No max_bytes option; own options inherited, include default changed."""

        default_include = ["*.md"]
        max_bytes_option = False

    assert names(NoLimit) == [
        "paths",
        "include",
        "allow_outside_links",
        "suffix",
        "retries",
        "backoff",
        "timeout",
        "deadline",
        "storage_options",
    ]
    assert {o.name: o.default for o in NoLimit.options}["include"] == ["*.md"]

    class Stricter(FileSource):
        """max_bytes replaced in place: another default and help."""

        name = "stricter"
        options = (
            Option("max_bytes", "int", 1000, min=1, help="larger pages are rejected"),
            Option("mode", "str", "a", help="a mode"),
        )

    assert names(Stricter) == [
        "paths",
        "include",
        "allow_outside_links",
        "mode",
        "max_bytes",
        "retries",
        "backoff",
        "timeout",
        "deadline",
        "storage_options",
    ]
    assert {o.name: o.default for o in Stricter.options}["max_bytes"] == 1000


def test_a_file_source_lists_and_reads_with_the_common_options(tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("first story")
    (folder / "sub" / "b.txt.gz").write_bytes(gzip.compress(b"second story"))
    (folder / "c.md").write_text("not included")
    (folder / ".hidden.txt").write_text("hidden")
    (folder / "big.txt").write_text("x" * 500)
    result = check_source(Shouting, folder, {"max_bytes": 100, "suffix": "?"}, tmp_path=tmp_path)
    assert sorted(result.table.column("text").to_pylist()) == ["FIRST STORY?", "SECOND STORY?"]
    rejects = result.rejects.to_pylist()
    assert [(r["reason"], r["input"].rsplit("/", 1)[-1]) for r in rejects] == [
        ("too large", "big.txt")
    ]
    # include and a glob, as for every file source
    unit_names = [
        u.key.rsplit("/", 1)[-1]
        for u in Shouting({"paths": [str(folder)], "include": ["*.md"]}).units()
    ]
    assert unit_names == ["c.md"]
    globbed = run_source(Shouting, {"paths": [str(folder / "*.txt")]}, tmp_path=tmp_path)
    assert sorted(globbed.table.column("text").to_pylist()) == ["FIRST STORY!", "XXXXX" * 100 + "!"]


def test_a_streaming_reader_gets_limits_and_decompression(tmp_path):
    (tmp_path / "news.txt").write_text("one\ntwo\n\nthree\n")
    (tmp_path / "more.txt.gz").write_bytes(gzip.compress(b"four\nfive\n"))
    (tmp_path / "big.txt").write_text("x" * 2000 + "\n")
    result = run_source(Lines, {"paths": ["*.txt*"], "max_bytes": 1000}, tmp_path=tmp_path)
    assert sorted(result.table.column("text").to_pylist()) == [
        "five",
        "four",
        "one",
        "three",
        "two",
    ]
    rejects = [(r["reason"], r["location"]) for r in result.rejects.to_pylist()]
    assert rejects == [("too large", "line 1")]


def test_bounds_and_paths_are_checked_for_every_file_source(tmp_path):
    with pytest.raises(ConfigError, match="option 'max_bytes' must be at least 1, got -1"):
        Shouting({"paths": ["x"], "max_bytes": -1}, section="[[sources]] #1 in p.toml")
    with pytest.raises(ConfigError, match="missing required option 'paths'"):
        Shouting({})
    with pytest.raises(ConfigError, match="paths: nothing matches"):
        list(Shouting({"paths": [str(tmp_path / "nothing-*.txt")]}).units())


def test_the_six_file_sources_are_file_sources():
    pm = get_plugin_manager()
    found = {name for name, reg in pm.registry["source"].items() if issubclass(reg.cls, FileSource)}
    assert {"text", "jsonl", "csv", "html", "feed", "warc"} <= found
