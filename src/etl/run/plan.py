"""Plan: check the pipeline, build its plugins, fix the output schema, list the work units.

Nothing is read and nothing is written here; every mistake a user can make in a pipeline
file is found before the first input is opened.
"""

from __future__ import annotations

import gc
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from etl.config import Pipeline, Section
from etl.context import RunInfo
from etl.errors import ConfigError, EtlError, PluginError, RunError
from etl.plugin import Executor, Plugin, Sink, Source, Transform, WorkUnit
from etl.plugins import PluginManager, get_plugin_manager
from etl.schema import ARTICLE_SCHEMA
from etl.stream import Streamer


def new_run_id(now: datetime) -> str:
    """Sortable by start time to the microsecond, unique across machines.

    ``20261126T203000123456Z-1a2b3c4d``: two runs started in one second still sort in the
    order they started (file listings of ``_etl/runs`` and rejects rely on it).
    """
    return f"{now:%Y%m%dT%H%M%S}{now.microsecond:06d}Z-{secrets.token_hex(4)}"


@dataclass
class Plan:
    """Everything a run needs, checked before the first input is read."""

    pipeline: Pipeline
    pm: PluginManager
    run: RunInfo
    sources: list[Source]
    transforms: list[Transform]
    sink: Sink
    executor: Executor
    schema: pa.Schema
    units: list[WorkUnit] = field(default_factory=list)
    skipped_inputs: int = 0
    #: inputs skipped as unchanged that another pipeline ingested (``--reprocess`` redoes them)
    stale_inputs: int = 0
    #: committed rows an overwrite run replaces
    replaced_rows: int = 0
    #: the pipeline's digest per source index (:mod:`etl.run.fingerprint`)
    fingerprints: list[str] = field(default_factory=list)

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def plugins(self) -> list[Plugin]:
        return [*self.sources, *self.transforms, self.sink, self.executor]

    def streamer(self, decide_here: bool = True) -> Streamer:
        """The plan's streamer; ``decide_here=False`` on a worker (a transform that decides
        on the driver only takes notes there)."""
        return Streamer(
            self.run,
            self.sources,
            self.transforms,
            self.schema,
            self.pipeline.on_error,
            self.hook,
            decide_here=decide_here,
        )

    def workers_write_files(self) -> bool:
        """Workers stage files the sink adopts (:class:`~etl.plugin.WorkerFiles`); not in
        merge mode, where the driver keeps the first row of each key in unit order, so it
        sees every row before the sink does; nor for a dataset at ``memory://``, which lives
        in one process (the workers ship their batches to the driver)."""
        from etl.plugin import WorkerFiles

        location = self.sink.location()
        per_process = isinstance(location, str) and location.startswith("memory://")
        return (
            isinstance(self.sink, WorkerFiles) and self.sink.mode() != "merge" and not per_process
        )

    def target(self) -> str:
        """What the run writes to, for messages (secrets redacted)."""
        where = self.sink.location() or vars(self.sink.opts).get("path") or self.sink.name
        return self.pipeline.redact(str(where))


def _build(pm: PluginManager, section: Section, base_dir: Any) -> Plugin:
    try:
        cls = pm.get(section.kind, section.plugin, section.label)
        return cls(section.options, section=section.label, base_dir=base_dir)
    except ConfigError as exc:
        blame_overrides(exc, section)
        raise
    except EtlError:
        raise
    except Exception as exc:
        raise PluginError(
            f"plugin '{section.plugin}' ({section.label}) failed to start: "
            f"{type(exc).__name__}: {exc}",
            hint=f"this is a bug in the plugin '{section.plugin}' from {cls.supplier}"
            if cls.supplier
            else None,
        ) from exc


def blame_overrides(exc: ConfigError, section: Section) -> None:
    """Say so when the key at fault came from ``--set``, not from the pipeline file."""
    from etl.errors import ConfigErrors

    for error in exc.errors if isinstance(exc, ConfigErrors) else [exc]:
        item = section.set_by.get(error.key or "")
        if item is not None:
            table = section.label.rsplit(" in ", 1)[0]
            error.message = error.message.replace(
                f"({section.label})", f"({table}, from --set {item})"
            )
            error.args = (error.message,)


def _build_all(pm: PluginManager, pipeline: Pipeline) -> list[Plugin | None]:
    """Every plugin of the pipeline, in order; the mistakes of all of them raised together."""
    from etl.errors import combine

    problems = list(pipeline.problems)
    built: list[Plugin | None] = []
    for section in pipeline.sections():
        if not section.plugin:  # too broken to build; pipeline.problems says why
            built.append(None)
            continue
        try:
            built.append(_build(pm, section, pipeline.base_dir))
        except ConfigError as exc:
            problems.append(exc)
            built.append(None)
    error = combine(problems)
    if error is not None:
        raise error
    return built


def build_plan(
    pipeline: Pipeline,
    *,
    pm: PluginManager | None = None,
    full: bool = False,
    reprocess: bool = False,
    list_units: bool = True,
    disable: tuple[str, ...] = (),
    start_executor: bool = False,
) -> Plan:
    """Check the pipeline against its plugins and list its work units; read nothing.

    ``full``: read every input and add what is new (``etl run --full``); ``reprocess``: read
    every input and replace the rows they gave before (``etl run --reprocess``);
    ``start_executor``: the plan is about to run, so let the executor start what takes time
    (``Executor.prepare``: the ``processes`` executor's fork server) while the units are
    listed.
    """
    try:
        return _build_plan(
            pipeline,
            pm=pm,
            full=full,
            reprocess=reprocess,
            list_units=list_units,
            disable=disable,
            start_executor=start_executor,
        )
    except EtlError as exc:  # a message may quote an option that came from ${ENV}
        redact_error(exc, pipeline)
        raise


def redact_error(exc: EtlError, pipeline: Pipeline) -> None:
    """Show values that came from the environment as ``***`` in an error's message and hint."""
    from etl.errors import ConfigErrors

    if pipeline.secrets:
        exc.message = pipeline.redact(exc.message)
        exc.hint = pipeline.redact(exc.hint)
        exc.args = (exc.message,)
        if isinstance(exc, ConfigErrors):
            for error in exc.errors:
                redact_error(error, pipeline)


def _build_plan(
    pipeline: Pipeline,
    *,
    pm: PluginManager | None,
    full: bool,
    reprocess: bool,
    list_units: bool,
    disable: tuple[str, ...],
    start_executor: bool = False,
) -> Plan:
    if pm is None:
        pm = get_plugin_manager(local=pipeline.plugins, base_dir=pipeline.base_dir, disable=disable)
    else:
        for spec in pipeline.plugins:
            pm.load_local(spec, pipeline.base_dir)
    now = datetime.now(UTC)
    run = RunInfo(
        run_id=new_run_id(now),
        started_at=now,
        pipeline_path=pipeline.path,
        base_dir=pipeline.base_dir,
        full=full,
        reprocess=reprocess,
        batch_size=pipeline.batch_size,
    )
    built = _build_all(pm, pipeline)
    from etl.run.preflight import scheme_error

    wrong_place = scheme_error(built[-2])
    if wrong_place is not None:
        wrong_place.key = "path"
        blame_overrides(wrong_place, pipeline.sink)
        raise wrong_place
    n, m = len(pipeline.sources), len(pipeline.transforms)
    sources: list[Any] = built[:n]
    transforms: list[Any] = built[n : n + m]
    sink: Any = built[n + m]
    executor: Any = built[n + m + 1]
    schema = ARTICLE_SCHEMA
    for transform in transforms:
        try:
            schema = transform.output_schema(schema)
        except EtlError:
            raise
        except Exception as exc:
            raise PluginError(
                f"plugin '{transform.name}' ({transform.section}): output_schema failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
    plan = Plan(pipeline, pm, run, sources, transforms, sink, executor, schema)
    check_decisions(plan)
    if start_executor and list_units:
        executor.prepare()  # runs beside the listing (another process), which is serial here
    if list_units:
        with _no_gc():
            _list_units(plan)
    return plan


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a listing builds 100k+ small objects.

    They make no reference cycles, but each gen-2 pass would walk all of them again (a
    fifth of a 100k-file listing's time). Not ``gc.freeze()``: in a process that runs many
    pipelines (a test suite, a service) frozen cyclic garbage would never be collected.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _list_units(plan: Plan) -> None:
    units = plan.units
    for index, source in enumerate(plan.sources):
        try:
            for unit in source.units():
                units.append(
                    unit if unit.source_index == index else WorkUnit(unit.input, unit.data, index)
                )
        except EtlError:
            raise
        except Exception as exc:
            raise RunError(
                f"plugin '{source.name}' ({source.section}) could not list its inputs: "
                f"{type(exc).__name__}: {exc}"
            ) from exc


def deciding(plan: Plan) -> list[Transform]:
    """The transforms that decide on the driver under workers (DecidesOnDriver)."""
    from etl.plugin import DecidesOnDriver

    return [t for t in plan.transforms if isinstance(t, DecidesOnDriver) and t.decides_on_driver()]


def check_decisions(plan: Plan) -> None:
    """Refuse, before anything runs, a transform that cannot decide on the driver under
    workers (``driver_problem``), and two that would."""
    if plan.executor.name == "local":
        return
    found = deciding(plan)
    executor = f"executor '{plan.executor.name}'"
    for transform in found:
        problem = transform.driver_problem()  # type: ignore[attr-defined]
        if problem:
            raise ConfigError(
                f"plugin '{transform.name}' ({transform.section}): {problem} ({executor})",
                hint='change the option it names, or run with executor = "local"',
            )
    if len(found) > 1:
        names = ", ".join(f"'{t.name}' ({t.section})" for t in found)
        raise ConfigError(
            f"{names} each decide on the driver under workers, and only one transform of a "
            f"pipeline can ({executor})",
            hint='keep one of them (dedup method = "near" finds exact duplicates too), or '
            'run with executor = "local"',
        )


def scale_out(plan: Plan) -> str:
    """How the executor runs the sink's side, as ``etl validate`` says it."""
    if plan.executor.name == "local":
        return "none (one process)"
    if plan.workers_write_files():
        return f"{plan.executor.name}: workers write files the sink adopts"
    return f"{plan.executor.name}: workers read and transform; the driver writes their batches"


def check_paths(plan: Plan) -> None:
    """Raise ConfigError for a pipeline whose sources list no inputs at all."""
    if not plan.units:
        raise ConfigError(f"{plan.pipeline.name}: the sources list no inputs")
