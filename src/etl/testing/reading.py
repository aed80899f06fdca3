"""Call a source's ``read`` directly, with a real context, without a pipeline.

For unit tests of a source: build it, list its units, read one::

    source = MySource({"database": "news.db"}, base_dir=tmp_path)
    unit = next(iter(source.units()))
    table, rejects = read_unit(source, unit)

or drive ``read`` yourself with :func:`source_context` and look at ``ctx.rejects`` and
``ctx.counters`` afterwards.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl.testing.scratch import scratch_folder

if TYPE_CHECKING:
    import pyarrow as pa

    from etl.context import Context, RunInfo
    from etl.plugin import Plugin, WorkUnit


def run_info(
    *,
    run_id: str | None = None,
    base_dir: str | Path | None = None,
    batch_size: int = 1024,
    full: bool = False,
) -> RunInfo:
    """A real ``RunInfo``, as the runner makes for a run.

    Args:
        run_id: the run's id (default: a new one, in the runner's format).
        base_dir: the folder relative paths resolve against (default: a new temporary one).
        batch_size: the run's ``[run] batch_size``.
        full: as ``etl run --full``.

    Returns:
        An ``etl.context.RunInfo`` with ``started_at`` now (UTC).
    """
    from etl.context import RunInfo
    from etl.run.plan import new_run_id

    now = datetime.now(UTC)
    folder = Path(base_dir) if base_dir is not None else scratch_folder()
    return RunInfo(
        run_id=run_id or new_run_id(now),
        started_at=now,
        base_dir=folder,
        full=full,
        batch_size=batch_size,
    )


def source_context(
    source: Plugin | str = "test",
    unit: WorkUnit | str | None = None,
    *,
    run: RunInfo | None = None,
    **run_options: Any,
) -> Context:
    """A real ``etl.context.Context`` to call ``source.read(unit, ctx)`` (or a transform's
    ``process(batch, ctx)``) in a test.

    Args:
        source: the plugin instance the context is for (its ``name`` and ``section`` go
            into every article's ``source`` and every reject), or just a plugin name.
        unit: the work unit (or input key) being read: rejects name it as their ``input``.
        run: the run's facts (default: :func:`run_info` with ``run_options``).
        run_options: passed to :func:`run_info` (``run_id``, ``base_dir``, ``batch_size``,
            ``full``) when ``run`` is not given.

    Returns:
        An ``etl.context.Context``. After ``read``: ``ctx.rejects`` is a list of reject
        dicts (the keys of ``REJECTS_SCHEMA``), ``ctx.counters`` a ``Counter`` of
        ``ctx.count`` calls, ``ctx.digests`` the content hashes the source reported.
    """
    from etl.context import Context

    if run is None:
        run = run_info(**run_options)
    elif run_options:
        raise TypeError("give `run` or run options, not both")
    if isinstance(source, str):
        name, section = source, f"[[sources]] {source} (test)"
    else:
        name, section = source.name, source.section
    key = unit if isinstance(unit, str) else (unit.key if unit is not None else "")
    return Context(run, name, section, key)


def read_unit(
    source: Plugin,
    unit: WorkUnit | None = None,
    *,
    ctx: Context | None = None,
    **run_options: Any,
) -> tuple[pa.Table, pa.Table]:
    """Read one work unit with a source, as a worker would, and return what it gave.

    Exceptions from ``read`` propagate (a worker would turn one into a ``source error``
    reject): a test sees the traceback.

    Args:
        source: a built source (``MySource(options, base_dir=...)``).
        unit: the unit to read (default: the first that ``source.units()`` lists).
        ctx: the context to read with (default: :func:`source_context` for this source
            and unit, with ``run_options``).
        run_options: passed to :func:`run_info` when no ``ctx`` is given.

    Returns:
        ``(table, rejects)``: a ``pyarrow.Table`` of every batch ``read`` yielded (the
        article schema when it yielded none), and a ``pyarrow.Table`` of
        ``REJECTS_SCHEMA`` with what it reported through ``ctx.reject``.

    Raises:
        AssertionError: ``read`` yielded something other than a ``pyarrow.RecordBatch``,
            or batches of different schemas, or the source lists no unit.
    """
    import pyarrow as pa

    from etl.context import rejects_table
    from etl.schema import ARTICLE_SCHEMA

    if unit is None:
        unit = next(iter(source.units()), None)
        if unit is None:
            raise AssertionError(f"source '{source.name}': units() listed nothing to read")
    if ctx is None:
        ctx = source_context(source, unit, **run_options)
    batches = []
    for batch in source.read(unit, ctx):
        if not isinstance(batch, pa.RecordBatch):
            raise AssertionError(
                f"source '{source.name}': read() yielded {type(batch).__name__}, "
                "not a pyarrow.RecordBatch (build batches with ctx.articles(...))"
            )
        if batches and batch.schema != batches[0].schema:
            raise AssertionError(
                f"source '{source.name}': read() yielded batches of different schemas"
            )
        batches.append(batch)
    schema = batches[0].schema if batches else ARTICLE_SCHEMA
    return pa.Table.from_batches(batches, schema=schema), rejects_table(list(ctx.rejects))
