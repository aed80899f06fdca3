"""Hook specifications for etl plugins.

Hooks contribute plugin classes once per process, and observe a run once per run or once
per batch written, never once per article: articles move through plugin methods as Arrow
batches. Call hooks with keyword arguments; an implementation may accept fewer arguments than
the spec names, so specs can grow without breaking plugins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Callable

    import pyarrow as pa

    from etl.context import RunInfo
    from etl.plugins.base import Plugin, WriteResult

__all__ = [
    "etl_after_batch_written",
    "etl_after_run",
    "etl_before_run",
    "etl_on_plugin_error",
    "etl_register_plugins",
    "hookimpl",
    "hookspec",
]

hookspec = pluggy.HookspecMarker("etl")
hookimpl = pluggy.HookimplMarker("etl")


# registration


@hookspec
def etl_register_plugins(register: Callable[[type[Plugin]], None]) -> None:
    """Contribute plugin classes: call ``register(cls)`` once per class.

    The class's base (Source, Transform, Sink or Executor) says its kind and its ``name``
    how pipelines refer to it. Two classes of one kind that claim one name are an error
    naming both suppliers.

    Args:
        register: call it with each plugin class this module supplies.
    """


# run lifecycle


@hookspec
def etl_before_run(run: RunInfo, pipeline: Any) -> None:
    """Fires once, after the plan is validated and before the first input is read.

    Args:
        run: the run's id, start time and settings.
        pipeline: the validated pipeline (``etl.config.Pipeline``).
    """


@hookspec
def etl_after_batch_written(run: RunInfo, batch: pa.RecordBatch, result: WriteResult) -> None:
    """Fires after the sink accepted a batch (not yet committed).

    Args:
        run: the run's facts.
        batch: the batch as it reached the sink.
        result: how many rows the sink wrote and how many it skipped as duplicates.
    """


@hookspec
def etl_on_plugin_error(run: RunInfo, plugin: Plugin, error: BaseException, input: str) -> None:
    """Fires when a plugin raised while reading an input or processing a batch.

    The error becomes a reject (``on_error = "quarantine"``) or stops the run
    (``on_error = "fail"``); this hook only observes it.

    Args:
        run: the run's facts.
        plugin: the plugin instance that raised.
        error: the exception.
        input: the work unit (path or URL) being processed.
    """


@hookspec
def etl_after_run(run: RunInfo, summary: dict[str, Any], error: BaseException | None) -> None:
    """Fires once when the run ends, committed or not.

    Args:
        run: the run's facts.
        summary: the counts and timings the run manifest records.
        error: why the run failed, or None when it committed.
    """
