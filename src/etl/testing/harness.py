"""The runners' own plugins, and plugin managers for tests.

* ``etl_testing_articles``: a source of the articles a test gives (one work unit);
* ``etl_testing_collect``: a sink that keeps every batch it receives in memory.

Both are registered on the plugin manager a runner uses; a test never names them, but
sees ``source == "etl_testing_articles"`` in rows built from given articles. A pipeline that
uses them names this module in its ``plugins`` list (the runners add it), so that worker
processes of the ``processes`` and ``dask`` executors, which build their own plugin manager,
find them too.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from etl.hookspecs import hookimpl
from etl.testing.articles import articles_batch

if TYPE_CHECKING:
    import pyarrow as pa

    from etl.context import Context
    from etl.plugin import Plugin, WorkUnit
    from etl.plugins import PluginManager

#: what a pipeline's ``plugins = [...]`` names to load the two plugins in every process
MODULE = __name__

#: the source and sink the runners use when a test gives articles or wants the output back
GIVEN_SOURCE = "etl_testing_articles"
COLLECT_SINK = "etl_testing_collect"


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
            batch = articles_batch(self.opts.articles, ctx)
            size = self.opts.batch_size or max(batch.num_rows, 1)
            for start in range(0, batch.num_rows, size):
                yield batch.slice(start, size)

    return GivenArticles


def _collect_sink_class() -> type[Plugin]:
    from etl.plugin import Sink, WriteResult

    class CollectSink(Sink):
        """Keeps every batch it receives in memory (for tests).

        Its store (rejects, manifest) is a fresh folder under the run's folder, so each run
        starts from an empty dataset.
        """

        name = COLLECT_SINK
        options = ()

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.state = tempfile.mkdtemp(prefix=".etl-collect-", dir=self.base_dir)
            self.batches: list[pa.RecordBatch] = []

        def location(self) -> str:
            return self.state

        def open(self, run: Any, schema: pa.Schema) -> None:
            self.schema = schema
            self.batches = []
            self.staged: list[pa.RecordBatch] = []

        def write(self, batch: pa.RecordBatch) -> WriteResult:
            self.staged.append(batch)
            return WriteResult(written=batch.num_rows)

        def commit(self, payload: dict[str, Any]) -> None:
            self.batches = list(getattr(self, "staged", []))

        def abort(self) -> None:
            self.staged = []

    return CollectSink


_RUNNER_PLUGINS: list[type[Plugin]] = []


def runner_plugins() -> list[type[Plugin]]:
    """The runners' source and sink classes (made once per process)."""
    if not _RUNNER_PLUGINS:
        _RUNNER_PLUGINS.extend([_given_source_class(), _collect_sink_class()])
    return _RUNNER_PLUGINS


@hookimpl
def etl_register_plugins(register: Any) -> None:
    """The hook: offer the runners' source and sink (for worker processes)."""
    for cls in runner_plugins():
        register(cls)


def register(pm: PluginManager, classes: Iterable[type[Plugin]]) -> None:
    """Register classes on ``pm`` unless that very class is already there."""
    for cls in classes:
        taken = pm.registry.get(cls.kind, {}).get(cls.name)
        if taken is not None and taken.cls is cls:
            continue
        pm.add_plugin_class(cls, supplier=cls.supplier or "etl.testing", module=cls.__module__)


def plugin_manager(*classes: type[Plugin]) -> PluginManager:
    """A fresh plugin manager: the builtins plus ``classes``.

    Installed distributions' plugins are not loaded, so they cannot leak into a test.

    Args:
        classes: plugin classes to register (supplier ``etl.testing`` unless set).

    Returns:
        An ``etl.plugins.PluginManager``; ``pm.get(kind, name)`` returns a registered class.
    """
    from etl.plugins import get_plugin_manager

    pm = get_plugin_manager(entry_points=False)
    register(pm, classes)
    return pm
