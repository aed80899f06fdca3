"""What ``etl run`` starts as soon as it has read the pipeline file, before the plugins.

Finding the plugins imports pyarrow, numpy and every installed plugin package (about 0.3 s
on this project's 2-core machine). The bundled ``processes`` executor's fork server
imports the same in its own process, and its workers wait for it: started here, it imports
beside the driver, on the other core, and a 12,000-article run ends 0.35 s sooner
(docs/performance.md). The ``dask`` executor's local cluster (no ``address``) forks its
workers from such a server too, which it starts here (0.45 s sooner at 12,000 articles).
Only bundled executors are known here by name, since a plugin's
class is found by the discovery this runs before; every executor, bundled or not, gets
:meth:`etl.plugin.Executor.prepare` before the listing.
"""

from __future__ import annotations

from typing import Any


def start_early(pipeline: Any) -> None:
    """Start what the pipeline's executor can start before plugin discovery.

    Args:
        pipeline: the loaded pipeline file (:class:`etl.config.Pipeline`).
    """
    section = pipeline.executor
    if section.plugin == "processes":
        from etl.executors.processes import start_fork_server

        start_fork_server(section.options.get("start_method", "forkserver"))
    elif section.plugin == "dask" and not section.options.get("address"):
        from etl.executors.dask import start_fork_server as start_dask_fork_server

        start_dask_fork_server()
