"""Runners: a real pipeline, run by the real runner in a temporary folder.

Each returns a :class:`RunResult`. :func:`run_pipeline` runs a small pipeline (a dict as a
TOML file parses to, or a file); :func:`run_transform`, :func:`run_source` and
:func:`run_sink` run one plugin on given input.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl.testing.articles import is_files, sample_articles
from etl.testing.datasets import read_parquet_dataset, read_rejects
from etl.testing.harness import COLLECT_SINK, GIVEN_SOURCE, MODULE, register, runner_plugins
from etl.testing.scratch import scratch_folder

if TYPE_CHECKING:
    import pyarrow as pa

    from etl.plugin import Plugin
    from etl.plugins import PluginManager
    from etl.run import Plan


@dataclass
class RunResult:
    """What a test run produced.

    Attributes:
        table: a ``pyarrow.Table``: the rows that reached the sink, with the columns the
            transforms added (for a ``parquet`` sink: the whole committed dataset; for
            another sink: an empty table, read it back yourself from ``plan.sink``).
        rejects: a ``pyarrow.Table`` of ``etl.context.REJECTS_SCHEMA``: this run's rejects
            (``reason``, ``input``, ``plugin``, ``article_id``...), read from the store at
            the sink's ``location()`` (empty for a sink without one: its store was
            temporary).
        counts: a dict: ``read``, ``written``, ``duplicates``, ``dropped``, ``rejected``
            (ints, the whole run's), ``transforms`` (``{section label: {"in": n, "out":
            n}}``) and ``counters`` (``{name: n}`` from ``ctx.count``).
        summary: the run summary dict, as the run manifest records it: the counts above
            plus ``run_id``, ``inputs``, ``inputs_skipped`` (units skipped as unchanged),
            ``rejects_by_reason`` (``{reason: n}``), ``per_input`` (a sequence of dicts,
            one per input, with the keys :func:`~etl.testing.last_run_inputs` lists) and
            ``timings``; a run with ``[run] checkpoint`` adds ``checkpoints`` (how many it
            committed) and ``run_ids`` (theirs: rows and rejects carry them).
        plan: the ``etl.run.Plan`` that ran: ``plan.sources``, ``plan.transforms`` and
            ``plan.sink`` (the plugin instances), ``plan.schema``, ``plan.units``,
            ``plan.run`` (the ``RunInfo``).
        folder: the ``pathlib.Path`` of the folder the run worked in.
        input_ids: filled by :func:`~etl.testing.check_transform` only: the ids of the
            articles given to the transform.
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
        """The output's ``id`` column as a list (empty when the table has none)."""
        return self.table.column("id").to_pylist() if "id" in self.table.column_names else []

    def rows(self) -> list[dict[str, Any]]:
        """The output rows as a list of dicts, one per row."""
        return self.table.to_pylist()

    @property
    def reject_reasons(self) -> list[str]:
        """The ``reason`` of each reject, in order (``["empty file", ...]``)."""
        return self.rejects.column("reason").to_pylist()


def _quiet_logs() -> None:
    import structlog

    from etl import log

    if log.settings() is None and not structlog.is_configured():
        log.configure("console", 0)


def _pipeline_data(pipeline: Mapping[str, Any] | str | Path) -> tuple[dict, Path | None, str]:
    """The pipeline as data, the file it came from (if any) and its text."""
    if isinstance(pipeline, str | Path):
        from etl.errors import ConfigError

        path = Path(pipeline)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"no pipeline file at {path}", hint="check the path") from None
        try:
            return tomllib.loads(text), path, text
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path.name} is not valid TOML: {exc}") from exc
    return dict(pipeline), None, ""


#: ``run_pipeline(max_reject_ratio=...)`` not given: the pipeline's own value, else 1
PIPELINE_OWN = object()


def run_pipeline(
    pipeline: Mapping[str, Any] | str | Path,
    *,
    articles: Any = None,
    plugins: Iterable[type[Plugin]] = (),
    pm: PluginManager | None = None,
    tmp_path: str | Path | None = None,
    batch_size: int | None = None,
    on_error: str | None = None,
    executor: str | Mapping[str, Any] | None = None,
    full: bool = False,
    reprocess: bool = False,
    max_reject_ratio: float | None | object = PIPELINE_OWN,
) -> RunResult:
    """Run a small pipeline for real and return what it produced.

    Args:
        pipeline: a dict shaped like a pipeline file (``{"transforms": [{"plugin": ...}]}``)
            or the path of a pipeline file (its relative paths resolve against its folder,
            as ``etl run`` does). Without ``sources`` the given ``articles`` are the source;
            without ``sink`` the output is collected in memory.
        articles: list of dicts, a pyarrow table or batch, or a list of files (read with the
            builtin ``text`` source); only for a pipeline without ``sources``.
        plugins: plugin classes to register first (they need not be installed anywhere;
            but worker processes of the ``processes`` and ``dask`` executors only find
            plugins that are installed, or named in the pipeline's ``plugins`` list).
        pm: the plugin manager (default: builtins only, as the ``etl_pm`` fixture).
        tmp_path: the folder the run works in and a dict pipeline's relative paths resolve
            against (default: a new temporary folder).
        batch_size: ``[run] batch_size`` (overrides the pipeline's); given articles are
            also read in batches of this size.
        on_error: ``[run] on_error``: ``"quarantine"`` or ``"fail"`` (overrides the
            pipeline's).
        executor: the ``[executor]``: a name (``"processes"``) or a table
            (``{"plugin": "processes", "workers": 2}``); overrides the pipeline's.
        full: as ``etl run --full``: ignore what the dataset remembers of earlier runs.
        reprocess: as ``etl run --reprocess``: read every input and replace its rows.
        max_reject_ratio: ``[run] max_reject_ratio`` (overrides the pipeline's). Unless
            given here or in the pipeline it is 1 (no limit), not ``etl run``'s default,
            under which a run that rejects every record fails: a test wants to see the
            rejects its plugin made, and a failed run commits none. Pass None for the
            default rule.

    Returns:
        A :class:`RunResult`.

    Raises:
        ValueError: ``articles`` and ``sources`` both given, or neither.
        etl.errors.ConfigError: the pipeline or a plugin's options are wrong (as
            ``etl validate`` would say).
    """
    from etl.config import pipeline_from_dict
    from etl.run import build_plan, run_plan

    _quiet_logs()
    folder = Path(tmp_path) if tmp_path is not None else scratch_folder()
    folder.mkdir(parents=True, exist_ok=True)
    if pm is None:
        from etl.plugins import get_plugin_manager

        pm = get_plugin_manager(entry_points=False)
    register(pm, [*runner_plugins(), *plugins])
    data, path, text = _pipeline_data(pipeline)
    if "sources" in data:
        if articles is not None:
            raise ValueError("give `articles` or a `sources` list, not both")
    else:
        if articles is None:
            raise ValueError("give `articles` or a `sources` list")
        if is_files(articles):
            source = {"plugin": "text", "paths": [str(Path(a)) for a in articles]}
        else:
            source = {"plugin": GIVEN_SOURCE, "articles": articles, "batch_size": batch_size or 0}
        data["sources"] = [source]
    data.setdefault("sink", {"plugin": COLLECT_SINK})
    sink, sources = data["sink"], data["sources"]
    uses_harness = (isinstance(sink, dict) and sink.get("plugin") == COLLECT_SINK) or (
        isinstance(sources, list)
        and any(isinstance(s, dict) and s.get("plugin") == GIVEN_SOURCE for s in sources)
    )
    if uses_harness and MODULE not in data.get("plugins", []):
        # worker processes build their own plugin manager: they load the harness from here
        data["plugins"] = [*data.get("plugins", []), MODULE]
    run = dict(data.get("run", {}))
    if batch_size is not None:
        run["batch_size"] = batch_size
    if on_error is not None:
        run["on_error"] = on_error
    if max_reject_ratio is not PIPELINE_OWN:
        run["max_reject_ratio"] = max_reject_ratio
    else:
        run.setdefault("max_reject_ratio", 1)
    if run:
        data["run"] = run
    if executor is not None:
        data["executor"] = {"plugin": executor} if isinstance(executor, str) else dict(executor)
    if path is not None:
        pipe = pipeline_from_dict(
            data, base_dir=path.resolve().parent, name=path.name, path=path, text=text
        )
    else:
        pipe = pipeline_from_dict(data, base_dir=folder, name="test pipeline")
    plan = build_plan(pipe, pm=pm, full=full, reprocess=reprocess)
    summary = run_plan(plan)
    table, rejects = _output(plan, summary)
    counts = {key: summary[key] for key in ("read", "written", "duplicates", "dropped", "rejected")}
    counts["transforms"] = summary["transforms"]
    counts["counters"] = summary["counters"]
    return RunResult(table, rejects, counts, summary, plan, folder)


def _output(plan: Plan, summary: dict[str, Any]) -> tuple[pa.Table, pa.Table]:
    """What the sink holds after the run, and the run's rejects."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from etl.context import rejects_table

    sink = plan.sink
    if sink.name == COLLECT_SINK:
        table = pa.Table.from_batches(sink.batches, schema=sink.schema)
    elif sink.name == "parquet":
        table = read_parquet_dataset(sink.opts.path)
    else:
        table = pa.table({})
    # the framework's store keeps the rejects, at the sink's location
    location = sink.location()
    rejects = read_rejects(location) if location else None
    if rejects is None or not rejects.num_rows:
        return table, rejects_table([])
    # a checkpointed run committed its rejects under each checkpoint's run id
    run_ids = pa.array(summary.get("run_ids") or [summary["run_id"]], pa.string())
    return table, rejects.filter(pc.is_in(rejects.column("run_id"), value_set=run_ids))


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
    """Run one transform on articles and collect its output.

    Args:
        transform: the transform class (registered for the run) or a registered name.
        articles: what to feed it (default: :func:`~etl.testing.sample_articles`).
        options: its options.
        kwargs: passed to :func:`run_pipeline` (``pm``, ``tmp_path``, ``plugins``,
            ``batch_size``, ``on_error``, ``executor``...).

    Returns:
        A :class:`RunResult`; ``table`` holds the transform's output.
    """
    name, classes = _name_of(transform, "transform")
    kwargs["plugins"] = [*classes, *kwargs.get("plugins", ())]
    return run_pipeline(
        {"transforms": [{"plugin": name, **(options or {})}]},
        articles=sample_articles() if articles is None else articles,
        **kwargs,
    )


def run_source(source: type[Plugin] | str, options: Mapping[str, Any], **kwargs: Any) -> RunResult:
    """Run one source and collect its output.

    Args:
        source: the source class (registered for the run) or a registered name.
        options: its options (relative paths resolve against ``tmp_path``).
        kwargs: passed to :func:`run_pipeline`.

    Returns:
        A :class:`RunResult`; ``table`` holds every article the source read, ``rejects``
        what it rejected.
    """
    name, classes = _name_of(source, "source")
    kwargs["plugins"] = [*classes, *kwargs.get("plugins", ())]
    return run_pipeline({"sources": [{"plugin": name, **options}]}, **kwargs)


def run_sink(
    sink: type[Plugin] | str,
    options: Mapping[str, Any],
    articles: Any = None,
    **kwargs: Any,
) -> RunResult:
    """Write articles through one sink and commit.

    Args:
        sink: the sink class (registered for the run) or a registered name.
        options: its options (relative paths resolve against ``tmp_path``).
        articles: what to write (default: :func:`~etl.testing.sample_articles`).
        kwargs: passed to :func:`run_pipeline`.

    Returns:
        A :class:`RunResult`; ``table`` is empty unless the sink is ``parquet``: read back
        what the sink committed from ``result.plan.sink``.
    """
    name, classes = _name_of(sink, "sink")
    kwargs["plugins"] = [*classes, *kwargs.get("plugins", ())]
    return run_pipeline(
        {"sink": {"plugin": name, **options}},
        articles=sample_articles() if articles is None else articles,
        **kwargs,
    )
