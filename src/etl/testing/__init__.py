"""Helpers for testing etl plugins, registered as a pytest plugin (``pytest11`` entry point).

Fixtures (available in any project that has ``etl`` installed):

* ``etl_pm``: a plugin manager holding the builtin plugins only, so plugins installed in the
  environment do not leak into a plugin's tests.
* ``etl_cli``: ``(run_cli, read_parquet_dataset, read_rejects)``, for end-to-end tests that
  run the real ``etl`` command and read the dataset back;
* ``per_input``: :func:`last_run_inputs`, the last run's accounting per input.

Runners: each builds a real pipeline, runs it with the real runner and local executor in a
temporary folder, and returns a :class:`RunResult` (output table, rejects, per-stage counts).

* :func:`run_pipeline`: a small pipeline (a dict, as a TOML file parses to, or a file);
* :func:`run_transform`, :func:`run_source`, :func:`run_sink`: one plugin on given input.

Articles may be given as a list of dicts (``{"text": ..., "title": ...}``), a pyarrow
table or batch, or a list of files (read with the builtin ``text`` source).

Contract checks, for any plugin author to call from their tests (they raise
``AssertionError`` with a message that says what is wrong):

* :func:`check_options`: a docstring, help on every option, defaults of the declared types,
  unknown options refused;
* :func:`check_transform`: keeps or drops rows, never invents ids; output matches the
  declared schema; every row accounted for;
* :func:`check_source`: cheap, picklable work units; batches of the article schema with
  content ids;
* :func:`check_sink_roundtrip`: what is written reads back; ``abort`` leaves nothing.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import pyarrow as pa

    from etl.context import Context
    from etl.plugin import Plugin
    from etl.plugins import PluginManager
    from etl.runner import Plan

__all__ = [
    "RunResult",
    "check_options",
    "check_sink_roundtrip",
    "check_source",
    "check_transform",
    "etl_pm",
    "plugin_manager",
    "last_run_inputs",
    "read_parquet_dataset",
    "read_rejects",
    "run_cli",
    "run_pipeline",
    "run_sink",
    "run_source",
    "run_transform",
    "sample_articles",
]

#: the source and sink the runners use when a test gives articles or wants the output back
GIVEN_SOURCE = "etl_testing_articles"
COLLECT_SINK = "etl_testing_collect"

_SAMPLES = (
    {
        "title": "Council approves new bike lanes",
        "text": "The city council voted 7-2 on Tuesday to add 12 km of protected bike lanes "
        "downtown. Construction starts in March.",
        "publisher": "Metro Daily",
        "published_at": "2024-02-06T18:30:00+00:00",
        "authors": ["Ana Lopez"],
        "language": "en",
    },
    {
        "title": "Storm closes mountain pass",
        "text": "Heavy snow closed the northern pass overnight. Officials expect to reopen "
        "the road by Friday if the weather clears.",
        "publisher": "Valley News",
        "published_at": "2024-02-07T07:05:00+00:00",
        "authors": ["Sam Reed", "Kim Cho"],
        "language": "en",
    },
    {
        "title": "Local bakery wins national prize",
        "text": "A family bakery on Elm Street won the national bread award for its rye "
        "sourdough, beating 340 entries.",
        "publisher": "Metro Daily",
        "published_at": "2024-02-08T12:00:00+00:00",
        "authors": [],
        "language": "en",
    },
    {
        "title": "Election turnout hits record",
        "text": "Turnout in Sunday's regional election reached 71 percent, the highest since "
        "records began, the electoral office said.",
        "publisher": "Valley News",
        "published_at": "2024-02-11T21:40:00+00:00",
        "authors": ["Kim Cho"],
        "language": "en",
    },
    {
        "title": None,
        "text": "Short note.",
        "publisher": None,
        "published_at": None,
        "authors": None,
        "language": None,
    },
)


def sample_articles(n: int = 5) -> list[dict[str, Any]]:
    """``n`` small, varied articles as dicts (repeating with a numbered suffix past five)."""
    out = []
    for i in range(n):
        article = dict(_SAMPLES[i % len(_SAMPLES)])
        if i >= len(_SAMPLES):
            article["text"] = f"{article['text']} ({i})"
        out.append(article)
    return out


# ---------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture
def etl_pm() -> PluginManager:
    """A fresh plugin manager with the builtin plugins only."""
    from etl.plugins import get_plugin_manager

    return get_plugin_manager(entry_points=False)


def plugin_manager(*classes: type[Plugin]) -> PluginManager:
    """A fresh plugin manager: the builtins plus ``classes`` (registered as ``etl.testing``)."""
    from etl.plugins import get_plugin_manager

    pm = get_plugin_manager(entry_points=False)
    _register(pm, classes)
    return pm


# ---------------------------------------------------------------------------------------------
# the runners' own plugins: a source of given articles, a sink that keeps what it receives


def _given_source_class() -> type[Plugin]:
    from etl.plugin import InputRef, Option, Source, WorkUnit

    class GivenArticles(Source):
        """Articles handed over by a test (dicts or a pyarrow table), as one work unit."""

        name = GIVEN_SOURCE
        options = (
            Option("articles", "any", required=True, help="list of dicts, or a pyarrow table"),
            Option("batch_size", "int", 0, help="rows per batch (0: all in one batch)"),
        )

        def units(self) -> Iterable[WorkUnit]:
            yield WorkUnit(InputRef("<articles>"))

        def read(self, unit: WorkUnit, ctx: Context) -> Iterator[pa.RecordBatch]:
            batch = _articles_batch(self.opts.articles, ctx)
            size = self.opts.batch_size or max(batch.num_rows, 1)
            for start in range(0, batch.num_rows, size):
                yield batch.slice(start, size)

    return GivenArticles


def _collect_sink_class() -> type[Plugin]:
    from etl.plugin import Sink, WriteResult

    class CollectSink(Sink):
        """Keeps every batch it receives in memory (for tests); commits nothing to disk."""

        name = COLLECT_SINK
        options = ()

        def open(self, run: Any, schema: pa.Schema) -> None:
            self.schema = schema
            self.batches: list[pa.RecordBatch] = []
            self.rejects = None
            self.manifest: dict[str, Any] | None = None

        def write(self, batch: pa.RecordBatch) -> WriteResult:
            self.batches.append(batch)
            return WriteResult(written=batch.num_rows)

        def commit(self, rejects: pa.Table, manifest: dict[str, Any]) -> None:
            self.rejects = rejects
            self.manifest = manifest

        def abort(self) -> None:
            self.batches = []

    return CollectSink


_RUNNER_PLUGINS: list[type[Plugin]] = []


def _runner_plugins() -> list[type[Plugin]]:
    if not _RUNNER_PLUGINS:
        _RUNNER_PLUGINS.extend([_given_source_class(), _collect_sink_class()])
    return _RUNNER_PLUGINS


def _register(pm: PluginManager, classes: Iterable[type[Plugin]]) -> None:
    """Register classes on ``pm`` unless that very class is already there."""
    for cls in classes:
        taken = pm.registry.get(cls.kind, {}).get(cls.name)
        if taken is not None and taken.cls is cls:
            continue
        pm.add_plugin_class(cls, supplier=cls.supplier or "etl.testing", module=cls.__module__)


def _timestamp(value: Any) -> Any:
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return value


def _articles_batch(articles: Any, ctx: Context) -> pa.RecordBatch:
    """Dicts or a table as one article batch; core columns derived as a source's would be."""
    import pyarrow as pa

    from etl.schema import ARTICLE_SCHEMA, conform

    if isinstance(articles, pa.RecordBatch):
        articles = pa.Table.from_batches([articles])
    if isinstance(articles, pa.Table):
        if set(ARTICLE_SCHEMA.names) <= set(articles.column_names):
            table = articles.combine_chunks()
            if not table.num_rows:
                return pa.RecordBatch.from_pylist([], schema=ARTICLE_SCHEMA)
            batch = table.to_batches()[0]
            extra = [n for n in batch.schema.names if n not in ARTICLE_SCHEMA.names]
            core = conform(batch, ARTICLE_SCHEMA)
            for name in extra:
                core = core.append_column(batch.schema.field(name), batch.column(name))
            return core
        rows = articles.to_pylist()
    else:
        rows = [dict(a) for a in articles]
    for i, row in enumerate(rows):
        if "text" not in row:
            raise ValueError(f"article #{i + 1} has no 'text': {sorted(row)}")
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    stamps = {f.name for f in ARTICLE_SCHEMA if pa.types.is_timestamp(f.type)}
    core = {
        k: [_timestamp(r.get(k)) if k in stamps else r.get(k) for r in rows]
        for k in keys
        if k in ARTICLE_SCHEMA.names
    }
    batch = ctx.articles(**core)
    for name in keys:
        if name not in ARTICLE_SCHEMA.names:
            batch = batch.append_column(name, pa.array([r.get(name) for r in rows]))
    return batch


def _is_files(articles: Any) -> bool:
    return (
        isinstance(articles, Sequence)
        and not isinstance(articles, str)
        and len(articles) > 0
        and all(isinstance(a, str | os.PathLike) for a in articles)
    )


# ---------------------------------------------------------------------------------------------
# running


@dataclass
class RunResult:
    """What a test run produced.

    Args:
        table: the rows that reached the sink (or, for a parquet sink, the committed dataset),
            with the columns the transforms added.
        rejects: the run's rejects (``etl.REJECTS_SCHEMA``).
        counts: per stage: ``read``, ``written``, ``duplicates``, ``dropped``, ``rejected``,
            ``transforms`` (rows in/out by section) and ``counters`` (``ctx.count``).
        summary: the run summary, as the run manifest records it.
        plan: the plan that ran (its plugins, schema and work units).
        folder: the temporary folder the run used.
    """

    table: pa.Table
    rejects: pa.Table
    counts: dict[str, Any]
    summary: dict[str, Any]
    plan: Plan
    folder: Path
    input_ids: list[str] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return self.table.column("id").to_pylist() if "id" in self.table.column_names else []

    def rows(self) -> list[dict[str, Any]]:
        """The output rows as dicts."""
        return self.table.to_pylist()

    @property
    def reject_reasons(self) -> list[str]:
        return self.rejects.column("reason").to_pylist()


def read_parquet_dataset(path: str | Path) -> pa.Table:
    """The committed articles of a parquet-sink dataset (staged and internal files excluded)."""
    import pyarrow as pa
    import pyarrow.dataset as pads

    from etl.dataset import Dataset

    files = [str(p) for p in Dataset(Path(path)).data_files()]
    if not files:
        return pa.table({})
    return pads.dataset(files, format="parquet", partitioning="hive").to_table()


def read_rejects(path: str | Path) -> pa.Table:
    """The rejects table of a parquet-sink dataset, every run's (empty when there are none)."""
    import pyarrow.parquet as pq

    from etl.context import REJECTS_SCHEMA
    from etl.dataset import Dataset

    files = Dataset(Path(path)).rejects_files()
    if not files:
        return REJECTS_SCHEMA.empty_table()
    import pyarrow as pa

    return pa.concat_tables([pq.read_table(f) for f in files])


def run_cli(
    *args: str,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> Any:
    """Run the real ``etl`` command in a subprocess (progress display off).

    Returns the ``subprocess.CompletedProcess`` with text ``stdout`` and ``stderr``.
    """
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "etl.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "ETL_PROGRESS": "0", **(env or {})},
        timeout=timeout,
    )


def last_run_inputs(path: str | Path) -> dict[str, dict[str, Any]]:
    """The last committed run's accounting per input (written, duplicates, rejected...)."""
    from etl.dataset import Dataset

    dataset = Dataset(Path(path))
    manifests = dataset.manifests()
    if not manifests:
        raise AssertionError(f"no committed run in {path}")
    return {row["input"]: row for row in dataset.run_inputs(manifests[-1])}


@pytest.fixture(scope="session")
def etl_cli() -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    """``(run_cli, read_parquet_dataset, read_rejects)``."""
    return run_cli, read_parquet_dataset, read_rejects


@pytest.fixture(scope="session")
def per_input() -> Callable[[str | Path], dict[str, dict[str, Any]]]:
    """:func:`last_run_inputs`."""
    return last_run_inputs


def _quiet_logs() -> None:
    import structlog

    from etl import log

    if log.settings() is None and not structlog.is_configured():
        log.configure("console", 0)


def run_pipeline(
    pipeline: Mapping[str, Any] | str | Path,
    *,
    articles: Any = None,
    plugins: Iterable[type[Plugin]] = (),
    pm: PluginManager | None = None,
    tmp_path: str | Path | None = None,
    batch_size: int | None = None,
) -> RunResult:
    """Run a small pipeline for real and return what it produced.

    Args:
        pipeline: a dict shaped like a pipeline file (``{"transforms": [{"plugin": ...}]}``)
            or the path of a pipeline file. Without ``sources`` the given ``articles`` are the
            source; without ``sink`` the output is collected in memory.
        articles: list of dicts, a pyarrow table or batch, or a list of files (read with the
            builtin ``text`` source).
        plugins: plugin classes to register first (they need not be installed anywhere).
        pm: the plugin manager (default: builtins only, as the ``etl_pm`` fixture).
        tmp_path: the folder the run works in and relative paths resolve against (default:
            a new temporary folder).
        batch_size: the run's batch size (``[run] batch_size``); given articles are also
            read in batches of this size.
    """
    from etl.config import load_pipeline, pipeline_from_dict
    from etl.runner import build_plan, run_plan

    _quiet_logs()
    folder = Path(tmp_path) if tmp_path is not None else Path(tempfile.mkdtemp(prefix="etl-test-"))
    folder.mkdir(parents=True, exist_ok=True)
    if pm is None:
        from etl.plugins import get_plugin_manager

        pm = get_plugin_manager(entry_points=False)
    _register(pm, [*_runner_plugins(), *plugins])
    if isinstance(pipeline, str | Path):
        pipe = load_pipeline(pipeline)
    else:
        data = dict(pipeline)
        if "sources" not in data:
            if articles is None:
                raise ValueError("give `articles` or a `sources` list")
            if _is_files(articles):
                source = {"plugin": "text", "paths": [str(Path(a)) for a in articles]}
            else:
                source = {
                    "plugin": GIVEN_SOURCE,
                    "articles": articles,
                    "batch_size": batch_size or 0,
                }
            data["sources"] = [source]
        data.setdefault("sink", {"plugin": COLLECT_SINK})
        if batch_size is not None:
            data["run"] = {**data.get("run", {}), "batch_size": batch_size}
        pipe = pipeline_from_dict(data, base_dir=folder, name="test pipeline")
    plan = build_plan(pipe, pm=pm)
    summary = run_plan(plan)
    sink = plan.sink
    if sink.name == COLLECT_SINK:
        import pyarrow as pa

        table = pa.Table.from_batches(sink.batches, schema=sink.schema)
        rejects = sink.rejects
    elif sink.name == "parquet":
        table = read_parquet_dataset(sink.opts.path)
        rejects = read_rejects(sink.opts.path)
        import pyarrow.compute as pc

        rejects = rejects.filter(pc.equal(rejects.column("run_id"), summary["run_id"]))
    else:
        import pyarrow as pa

        from etl.context import rejects_table

        table = pa.table({})
        rejects = rejects_table([])
    counts = {key: summary[key] for key in ("read", "written", "duplicates", "dropped", "rejected")}
    counts["transforms"] = summary["transforms"]
    counts["counters"] = summary["counters"]
    return RunResult(table, rejects, counts, summary, plan, folder)


def _name_of(plugin: type[Plugin] | str, kind: str) -> tuple[str, list]:
    if isinstance(plugin, str):
        return plugin, []
    if plugin.kind != kind:
        raise TypeError(f"{plugin.__qualname__} is a {plugin.kind}, not a {kind}")
    return plugin.name, [plugin]


def run_transform(
    transform: type[Plugin] | str,
    articles: Any = None,
    options: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> RunResult:
    """Run one transform (a class, or a registered name) on ``articles`` (default: samples).

    Keyword arguments go to :func:`run_pipeline` (``pm``, ``tmp_path``, ``plugins``...).
    """
    name, classes = _name_of(transform, "transform")
    kwargs["plugins"] = [*classes, *kwargs.get("plugins", ())]
    return run_pipeline(
        {"transforms": [{"plugin": name, **(options or {})}]},
        articles=sample_articles() if articles is None else articles,
        **kwargs,
    )


def run_source(source: type[Plugin] | str, options: Mapping[str, Any], **kwargs: Any) -> RunResult:
    """Run one source with ``options`` (paths relative to ``tmp_path``); collect its output."""
    name, classes = _name_of(source, "source")
    kwargs["plugins"] = [*classes, *kwargs.get("plugins", ())]
    return run_pipeline({"sources": [{"plugin": name, **options}]}, **kwargs)


def run_sink(
    sink: type[Plugin] | str,
    options: Mapping[str, Any],
    articles: Any = None,
    **kwargs: Any,
) -> RunResult:
    """Write ``articles`` (default: samples) through one sink and commit."""
    name, classes = _name_of(sink, "sink")
    kwargs["plugins"] = [*classes, *kwargs.get("plugins", ())]
    return run_pipeline(
        {"sink": {"plugin": name, **options}},
        articles=sample_articles() if articles is None else articles,
        **kwargs,
    )


# ---------------------------------------------------------------------------------------------
# contract checks


def check_options(cls: type[Plugin]) -> None:
    """A plugin class is well declared: name, docstring, options with help and valid defaults."""
    from etl.errors import ConfigError, PluginError
    from etl.plugin import _TYPES, KINDS, check_option_declarations, validate_options

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
    """Run a transform on ``articles`` (default: samples) and check its contract.

    Checks :func:`check_options`; the declared ``output_schema`` keeps every article column
    with its type; the output matches the declared schema; every output id was an input id
    (no invented or duplicated rows); every input row is written, dropped or rejected.
    Returns the :class:`RunResult` for further assertions of the test's own.
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
    before, after = Counter(baseline.ids), Counter(result.ids)
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
    paths: str | Path | Sequence[str | Path],
    options: Mapping[str, Any] | None = None,
    *,
    path_option: str = "paths",
    **kwargs: Any,
) -> RunResult:
    """Run a source on ``paths`` and check its contract.

    Checks :func:`check_options`; ``units()`` yields picklable ``WorkUnit``\\ s with distinct
    keys; the output has the article schema, content ids (sha256 of the text) and the
    plugin's name as ``source``; every unit read is accounted for.
    """
    import pyarrow.compute as pc

    from etl.plugin import WorkUnit
    from etl.schema import ARTICLE_SCHEMA, article_ids

    check_options(source)
    who = f"source '{source.name}'"
    if isinstance(paths, str | os.PathLike):
        value: Any = str(paths)
    else:
        value = [str(p) for p in paths]
    config = {path_option: value, **(options or {})}
    instance = source(dict(config), section="[[sources]] #1 (check)")
    units = list(instance.units())
    keys = []
    for unit in units:
        assert isinstance(unit, WorkUnit), f"{who}: units() yielded {unit!r}, not a WorkUnit"
        try:
            pickle.loads(pickle.dumps(unit))
        except Exception as exc:
            raise AssertionError(f"{who}: work unit {unit.key} is not picklable: {exc}") from exc
        keys.append(unit.key)
    dupes = [k for k, n in Counter(keys).items() if n > 1]
    assert not dupes, f"{who}: units() lists one input twice: {dupes[:3]}"
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


def check_sink_roundtrip(
    sink: type[Plugin],
    options: Mapping[str, Any],
    read_back: Callable[[Plugin], pa.Table],
    articles: Any = None,
    **kwargs: Any,
) -> RunResult:
    """Write articles through a sink, read them back, and check that ``abort`` leaves nothing.

    Args:
        sink: the sink class.
        options: its options (paths relative to ``tmp_path``).
        read_back: given the sink instance, returns what it committed as a table with at
            least ``id`` and ``text`` (an empty table, or FileNotFoundError, for nothing).
        articles: what to write (default: samples).
    """
    from etl.context import RunInfo
    from etl.schema import ARTICLE_SCHEMA

    check_options(sink)
    who = f"sink '{sink.name}'"
    articles = sample_articles() if articles is None else articles
    folder = Path(kwargs.pop("tmp_path", None) or tempfile.mkdtemp(prefix="etl-test-"))

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
    aborted.write(_articles_batch(articles, Context(run, GIVEN_SOURCE, "check")))
    aborted.abort()
    left = _read(aborted)
    assert left is None, f"{who}: abort() left {left.num_rows} rows visible"

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


def _given_rows(articles: Any, folder: Path) -> list[dict[str, Any]]:
    from etl.context import Context, RunInfo

    run = RunInfo(run_id="check", started_at=datetime.now(UTC), base_dir=folder)
    batch = _articles_batch(articles, Context(run, GIVEN_SOURCE, "check"))
    return batch.select(["id", "text"]).to_pylist()
