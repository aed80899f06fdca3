"""The dask executor starts its local cluster beside the listing (``prepare``), with each
worker importing the worker side as it starts (and without distributed's costly defaults for
a CPU-bound run), and stops it even if the run never executes."""

from __future__ import annotations

import sys

import pytest

pytestmark = pytest.mark.slow


def _worker_side_imported() -> bool:
    return "etl.run.worker" in sys.modules


def _costly_defaults() -> tuple[str | None, bool]:
    """What a worker runs with: the malloc variable distributed's nanny sets (it fixes
    glibc's mmap threshold: a page fault per large allocation) and the 10 ms profiler."""
    import os

    import dask

    return os.environ.get("MALLOC_TRIM_THRESHOLD_"), dask.config.get(
        "distributed.worker.profile.enabled"
    )


def test_prepare_starts_the_cluster_with_the_worker_side_preloaded(monkeypatch):
    pytest.importorskip("distributed")
    # a nanny started with distributed's defaults (another test's cluster, in this process)
    # sets the variable in its own process's environment, which every later worker inherits
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    from etl.executors.dask import DaskExecutor

    executor = DaskExecutor({"workers": 2}, section="[executor]")
    executor.prepare()  # returns at once: the cluster starts in a thread
    assert executor._client is None
    client, cluster = executor._connected()
    try:
        executor._client, executor._cluster = client, cluster
        imported = client.run(_worker_side_imported)
        assert len(imported) == 2 and all(imported.values()), imported
        settings = client.run(_costly_defaults)
        assert list(settings.values()) == [(None, False)] * 2, settings
    finally:
        executor.close()
    assert cluster.status.name == "closed"


def test_a_prepared_cluster_is_closed_when_the_run_never_executes():
    pytest.importorskip("distributed")
    from etl.executors.dask import DaskExecutor

    executor = DaskExecutor({"workers": 1}, section="[executor]")
    executor.prepare()
    starting = executor._starting
    executor.close()  # the run failed before execute: what prepare started is stopped
    _, cluster = starting.result()
    assert cluster.status.name == "closed"
    assert executor._client is None and executor._starting is None
