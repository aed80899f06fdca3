"""Contract checks: call them from a plugin's tests.

Each raises ``AssertionError`` with a message that says what is wrong, and (but for
:func:`check_options`) returns the :class:`~etl.testing.RunResult` of the run it made, for
assertions of the test's own.

* :func:`check_options`: a docstring, help on every option, defaults of the declared types,
  unknown options refused;
* :func:`check_transform`: keeps or drops rows, never invents ids; output matches the
  declared schema; every row accounted for;
* :func:`check_source`: cheap, picklable, stable work units; batches of the article schema
  with content ids;
* :func:`check_sink_roundtrip`: what is written reads back; ``abort`` leaves nothing.
"""

from __future__ import annotations

import os
import pickle
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl.testing.articles import articles_batch, sample_articles
from etl.testing.harness import GIVEN_SOURCE
from etl.testing.running import RunResult, run_pipeline, run_sink, run_source, run_transform
from etl.testing.scratch import scratch_folder

if TYPE_CHECKING:
    import pyarrow as pa

    from etl.plugin import Plugin, WorkUnit


def check_options(cls: type[Plugin]) -> None:
    """Check that a plugin class is well declared.

    Checks: a Source, Transform, Sink or Executor subclass with a ``name`` and a docstring
    (``etl plugins`` shows its first line); no option declared twice; help on every option;
    each default of the option's declared type and within its ``choices``; an unknown
    option refused with an error that names the plugin.

    Args:
        cls: the plugin class.

    Returns:
        None.

    Raises:
        AssertionError: what is wrong, naming the plugin and the option.
    """
    from etl.errors import ConfigError, PluginError
    from etl.plugins.base import KINDS
    from etl.plugins.options import _TYPES, check_option_declarations, validate_options

    label = f"{cls.__qualname__} ({cls.__module__})"
    assert isinstance(cls, type) and cls.kind in KINDS, (
        f"{label} is not a Source, Transform, Sink or Executor subclass"
    )
    assert cls.name, f"{label} has no `name`"
    assert cls.summary(), (
        f"plugin '{cls.name}' ({label}) has no docstring: `etl plugins` shows its first line"
    )
    try:
        check_option_declarations(cls)
    except PluginError as exc:
        raise AssertionError(str(exc)) from exc
    for opt in cls.options:
        assert opt.help, f"plugin '{cls.name}': option '{opt.name}' has no help text"
        if opt.required or opt.default is None:
            continue
        allowed = _TYPES[opt.type]
        ok = isinstance(opt.default, allowed) and not (
            isinstance(opt.default, bool) and bool not in allowed and opt.type != "any"
        )
        assert ok, (
            f"plugin '{cls.name}': option '{opt.name}' is declared {opt.type} but its default "
            f"is {type(opt.default).__name__} {opt.default!r}"
        )
        if opt.choices is not None:
            assert opt.default in opt.choices, (
                f"plugin '{cls.name}': option '{opt.name}' defaults to {opt.default!r}, "
                f"not one of its choices {opt.choices!r}"
            )
    try:
        validate_options(cls, {"no_such_option__": 1}, "[check]", Path.cwd())
    except ConfigError as exc:
        assert cls.name in str(exc), f"the unknown-option error does not name the plugin: {exc}"
    else:
        raise AssertionError(f"plugin '{cls.name}' accepted an unknown option")


def _assert_schema_matches(declared: pa.Schema, actual: pa.Schema, who: str) -> None:
    declared_cols = [(f.name, str(f.type)) for f in declared]
    actual_cols = [(f.name, str(f.type)) for f in actual]
    if declared_cols != actual_cols:
        missing = [c for c in declared_cols if c not in actual_cols]
        extra = [c for c in actual_cols if c not in declared_cols]
        raise AssertionError(
            f"{who}: output does not match the declared schema; missing {missing}, "
            f"undeclared {extra}"
        )


def check_transform(
    transform: type[Plugin],
    articles: Any = None,
    options: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> RunResult:
    """Run a transform in small batches and check its contract.

    Checks :func:`check_options`; the declared ``output_schema`` keeps every article column
    with its type; the output matches the declared schema; every output id was an input id
    (no invented or duplicated rows); every input row is written, dropped or rejected.

    Args:
        transform: the transform class.
        articles: what to feed it (default: :func:`~etl.testing.sample_articles`).
        options: its options.
        kwargs: passed to :func:`~etl.testing.run_pipeline`; ``batch_size`` defaults to 2,
            so a transform that only works on one whole batch shows it.

    Returns:
        The :class:`~etl.testing.RunResult` of the run, with ``input_ids`` set to the ids of
        the articles given, for assertions of the test's own.

    Raises:
        AssertionError: the transform breaks its contract; the message says how.
        etl.errors.PluginError: the runner refused a batch (an undeclared column...).
    """
    from etl.schema import ARTICLE_SCHEMA

    check_options(transform)
    who = f"transform '{transform.name}'"
    instance = transform(dict(options or {}), section="[[transforms]] #1 (check)")
    declared = instance.output_schema(ARTICLE_SCHEMA)
    for f in ARTICLE_SCHEMA:
        index = declared.get_field_index(f.name)
        assert index >= 0, f"{who}: output_schema drops the article column '{f.name}'"
        assert declared.field(index).type == f.type, (
            f"{who}: output_schema changes the type of '{f.name}' "
            f"({f.type} -> {declared.field(index).type})"
        )
    # small batches, so a transform that only works on one whole batch shows it
    kwargs.setdefault("batch_size", 2)
    result = run_transform(transform, articles, options, **kwargs)
    _assert_schema_matches(result.plan.schema, result.table.schema, who)
    # what the source produced, run once more without the transform: ids are content hashes
    baseline = run_pipeline(
        {},
        articles=sample_articles() if articles is None else articles,
        pm=kwargs.get("pm"),
        tmp_path=Path(result.folder) / "_baseline",
    )
    result.input_ids = baseline.ids
    for counts in result.summary["transforms"].values():
        # the sink keeps one row per id, so a repeated row shows in the transform's count
        assert counts["out"] <= counts["in"], (
            f"{who} returned rows more often than it was given them "
            f"({counts['out']} rows out of {counts['in']})"
        )
    before, after = Counter(baseline.ids), Counter(result.ids)
    for counts in result.summary["transforms"].values():
        # the sink keeps one row per id, so a repeated row shows in the transform's count
        assert counts["out"] <= counts["in"], (
            f"{who} returned rows more often than it was given them "
            f"({counts['out']} rows out of {counts['in']})"
        )
    invented = sorted(set(after) - set(before))
    assert not invented, f"{who} returned ids it was not given: {invented[:3]}"
    repeated = [i for i, n in after.items() if n > before[i]]
    assert not repeated, f"{who} returned rows more often than it was given them: {repeated[:3]}"
    c = result.counts
    rejected = result.rejects.column("plugin").to_pylist().count(transform.name)
    assert c["read"] == c["written"] + c["dropped"] + rejected, (
        f"{who}: rows unaccounted for: read {c['read']}, written {c['written']}, "
        f"dropped {c['dropped']}, rejected {rejected}"
    )
    assert c["read"] == len(baseline.ids), (
        f"{who}: the articles given were not all read ({c['read']} of {len(baseline.ids)}): "
        f"{result.reject_reasons[:3]}"
    )
    return result


def check_source(
    source: type[Plugin],
    paths: str | Path | Sequence[str | Path] | Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    *,
    path_option: str = "paths",
    units: int | None = None,
    **kwargs: Any,
) -> RunResult:
    """Run a source and check its contract.

    Checks :func:`check_options`; ``units()`` yields picklable ``WorkUnit``\\ s with distinct
    keys, and lists the same inputs (keys, sizes, mtimes, fingerprints) when called twice
    with nothing changed; the output has the article schema, content ids (hash of the
    text) and the plugin's name as ``source``; every row read is accounted for.

    Args:
        source: the source class.
        paths: for a source of files: the file(s) or folder(s) to read, given as its
            ``path_option``. A source with other options (a database, an API) leaves it
            out and gives ``options``; a dict here is taken as ``options``.
        options: the source's options (relative paths resolve against ``tmp_path``).
        path_option: the option ``paths`` is given as.
        units: the number of work units ``units()`` must list, when the test knows it.
        kwargs: passed to :func:`~etl.testing.run_pipeline` (``pm``, ``tmp_path``,
            ``batch_size``, ``executor``...).

    Returns:
        The :class:`~etl.testing.RunResult` of running the source alone (``table``: every
        article read; ``rejects``: what it rejected), for assertions of the test's own.

    Raises:
        AssertionError: the source breaks its contract; the message says how.
        TypeError: ``paths`` given for a source that has no ``path_option`` option.
    """
    import pyarrow.compute as pc

    from etl.schema import ARTICLE_SCHEMA, article_ids

    if isinstance(paths, Mapping):
        if options is not None:
            raise TypeError("give the source's options once: as `options`")
        paths, options = None, paths
    check_options(source)
    who = f"source '{source.name}'"
    config = dict(options or {})
    if paths is not None:
        if path_option not in {o.name for o in source.options}:
            raise TypeError(
                f"{who} has no option '{path_option}': give its options as "
                "`check_source(cls, options={...})`, or name its path option with `path_option=`"
            )
        if isinstance(paths, str | os.PathLike):
            config[path_option] = str(paths)
        else:
            config[path_option] = [str(p) for p in paths]
    # one folder for the listing here and the run below: relative paths resolve alike
    folder = Path(kwargs.get("tmp_path") or scratch_folder())
    kwargs["tmp_path"] = folder
    instance = source(dict(config), section="[[sources]] #1 (check)", base_dir=folder)
    listed = _check_units(instance, who)
    if units is not None:
        assert len(listed) == units, (
            f"{who}: units() listed {len(listed)} work units, expected {units}: "
            f"{[u.key for u in listed[:3]]}"
        )
    result = run_source(source, config, **kwargs)
    _assert_schema_matches(ARTICLE_SCHEMA, result.table.schema, who)
    if result.table.num_rows:
        text = result.table.column("text").combine_chunks()
        expected = article_ids(text)
        got = result.table.column("id").combine_chunks()
        assert pc.all(pc.equal(expected, got)).as_py(), (
            f"{who}: ids are not the content hash of the text; build batches with ctx.articles()"
        )
        sources = set(result.table.column("source").to_pylist())
        assert sources == {source.name}, f"{who}: the source column is {sources}"
    c = result.counts
    # no transforms run here: every row read reaches the sink (written, or a duplicate)
    assert c["read"] == c["written"] + c["duplicates"], f"{who}: rows unaccounted for: {c}"
    return result


def _check_units(instance: Plugin, who: str) -> list[WorkUnit]:
    """List the units twice: each a picklable WorkUnit, keys distinct, listings equal."""
    from etl.plugin import InputRef, WorkUnit

    listed = list(instance.units())
    keys = []
    for unit in listed:
        assert isinstance(unit, WorkUnit), f"{who}: units() yielded {unit!r}, not a WorkUnit"
        assert isinstance(unit.input, InputRef), (
            f"{who}: work unit {unit!r} has no InputRef as its input"
        )
        try:
            pickle.loads(pickle.dumps(unit))
        except Exception as exc:
            raise AssertionError(f"{who}: work unit {unit.key} is not picklable: {exc}") from exc
        keys.append(unit.key)
    dupes = [k for k, n in Counter(keys).items() if n > 1]
    assert not dupes, f"{who}: units() lists one input twice: {dupes[:3]}"
    # what a later run compares to decide "unchanged": it must not move by itself
    again = {u.key: u.input for u in instance.units()}
    assert set(again) == set(keys), (
        f"{who}: units() lists different inputs when called twice: "
        f"{sorted(set(again) ^ set(keys))[:3]}"
    )
    for unit in listed:
        if again[unit.key] != unit.input:
            raise AssertionError(
                f"{who}: input {unit.key} is listed as {unit.input} then as "
                f"{again[unit.key]} with nothing changed; a size, mtime or fingerprint that "
                "moves by itself makes every run read it again"
            )
    return listed


def check_sink_roundtrip(
    sink: type[Plugin],
    options: Mapping[str, Any],
    read_back: Callable[[Plugin], pa.Table],
    articles: Any = None,
    **kwargs: Any,
) -> RunResult:
    """Write articles through a sink, read them back, and check that ``abort`` leaves nothing.

    First a sink is opened, written to and aborted by hand: ``read_back`` must find nothing.
    Then, by hand in a folder of its own (``tmp_path/_commit_twice``): open, write,
    ``prepare(summary)`` (a JSON payload; nothing visible yet), ``commit(payload)``, and
    ``commit(payload)`` again on a fresh instance never opened, as recovery after a crash
    does: the rows must be there once. Last, a real run writes and commits: ``read_back``
    must find exactly the articles given (compared by ``id`` and ``text``).

    Args:
        sink: the sink class.
        options: its options (relative paths resolve against ``tmp_path``).
        read_back: given the sink instance, returns what it committed as a
            ``pyarrow.Table`` with at least ``id`` and ``text`` (an empty table, None, or
            ``FileNotFoundError`` for nothing).
        articles: what to write (default: :func:`~etl.testing.sample_articles`).
        kwargs: passed to :func:`~etl.testing.run_pipeline` (``tmp_path``, ``pm``...).

    Returns:
        The :class:`~etl.testing.RunResult` of the committed run, its ``table`` replaced by
        what ``read_back`` returned.

    Raises:
        AssertionError: rows left visible after ``abort`` or before ``commit``, a second
            ``commit`` of one payload that wrote again, or rows lost, added or changed.
    """
    from etl.context import RunInfo
    from etl.schema import ARTICLE_SCHEMA

    check_options(sink)
    who = f"sink '{sink.name}'"
    articles = sample_articles() if articles is None else articles
    folder = Path(kwargs.pop("tmp_path", None) or scratch_folder())

    def _read(instance: Plugin) -> pa.Table | None:
        try:
            table = read_back(instance)
        except FileNotFoundError:
            return None
        return table if table is not None and table.num_rows else None

    # abort: nothing written becomes visible
    from etl.context import Context

    aborted = sink(dict(options), section="[sink] (check)", base_dir=folder)
    run = RunInfo(run_id="check-abort", started_at=datetime.now(UTC), base_dir=folder)
    aborted.open(run, ARTICLE_SCHEMA)
    aborted.write(articles_batch(articles, Context(run, GIVEN_SOURCE, "check")))
    aborted.abort()
    left = _read(aborted)
    assert left is None, f"{who}: abort() left {left.num_rows} rows visible"

    from etl.plugin import Sink

    if hasattr(Sink, "prepare"):  # the two-phase contract: prepare, then commit(payload)
        _check_commit_twice(sink, options, articles, folder / "_commit_twice", _read, who)

    result = run_sink(sink, options, articles, tmp_path=folder, **kwargs)
    table = _read(result.plan.sink)
    assert table is not None, f"{who}: nothing read back after a committed run"
    written = {r["id"]: r["text"] for r in table.select(["id", "text"]).to_pylist()}
    given = {r["id"]: r["text"] for r in _given_rows(articles, folder)}
    assert written == given, (
        f"{who}: read back {len(written)} articles, wrote {len(given)}; "
        f"missing {sorted(set(given) - set(written))[:3]}, "
        f"unexpected {sorted(set(written) - set(given))[:3]}"
    )
    result.table = table
    return result


def _check_commit_twice(
    sink: type[Plugin],
    options: Mapping[str, Any],
    articles: Any,
    folder: Path,
    read: Callable[[Plugin], pa.Table | None],
    who: str,
) -> None:
    """Open, write, prepare; nothing visible yet. Commit; then commit the same payload again
    on a fresh instance never opened, as recovery after a crash does: each row once."""
    import json

    from etl.context import Context, RunInfo
    from etl.schema import ARTICLE_SCHEMA

    folder.mkdir(parents=True, exist_ok=True)
    first = sink(dict(options), section="[sink] (check)", base_dir=folder)
    before = read(first)
    before_ids = Counter(before.column("id").to_pylist()) if before is not None else Counter()
    run = RunInfo(run_id="check-commit-twice", started_at=datetime.now(UTC), base_dir=folder)
    first.open(run, ARTICLE_SCHEMA)
    first.write(articles_batch(articles, Context(run, GIVEN_SOURCE, "check")))
    given = Counter(r["id"] for r in _given_rows(articles, folder))
    n = sum(given.values())
    counts = {"read": n, "written": n, "duplicates": 0, "dropped": 0, "rejected": 0}
    payload = first.prepare({"run_id": run.run_id, **counts, "schema_change": None})
    try:
        payload = json.loads(json.dumps(payload))
    except (TypeError, ValueError) as exc:
        raise AssertionError(
            f"{who}: prepare(summary) returned a payload that is not JSON: {exc}"
        ) from exc
    staged = read(first)
    staged_ids = Counter(staged.column("id").to_pylist()) if staged is not None else Counter()
    assert staged_ids == before_ids, f"{who}: rows are visible after prepare(), before commit()"
    first.commit(payload)
    once = read(first)
    assert once is not None, f"{who}: nothing read back after commit()"
    once_ids = Counter(once.column("id").to_pylist())
    fresh = sink(dict(options), section="[sink] (check)", base_dir=folder)
    fresh.commit(payload)
    again = read(fresh)
    again_ids = Counter(again.column("id").to_pylist()) if again is not None else Counter()
    assert again_ids == once_ids, (
        f"{who}: commit() with the same payload again (on a fresh instance, as recovery "
        f"does) changed the table: {sum(once_ids.values())} rows became "
        f"{sum(again_ids.values())}; commit must be idempotent"
    )
    if first.mode() == "append":
        assert once_ids == before_ids + given, (
            f"{who}: after one commit the table holds {sum(once_ids.values())} rows, "
            f"expected {sum((before_ids + given).values())}"
        )


def _given_rows(articles: Any, folder: Path) -> list[dict[str, Any]]:
    from etl.context import Context, RunInfo

    run = RunInfo(run_id="check", started_at=datetime.now(UTC), base_dir=folder)
    batch = articles_batch(articles, Context(run, GIVEN_SOURCE, "check"))
    return batch.select(["id", "text"]).to_pylist()
