"""Fixtures of the executor tests (helpers are in tests/helpers/executors.py)."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture
def dask_address():
    """The scheduler address of a 2-worker LocalCluster on 127.0.0.1, owned by this test.

    One cluster per test, not per session: a worker that leaves (killed, restarted by its
    nanny, or shut down by a run) cannot fail a later test, and no test sees another's
    state. The test starts once both workers are up, and the cluster is closed after it.
    """
    dask = pytest.importorskip("dask")
    distributed = pytest.importorskip("distributed")
    # worker processes forked from a server that imported dask and its dependencies once (per
    # test process): a cluster after the first starts in well under a second, not in two or
    # three, and closes at once (a forked worker skips interpreter shutdown). The cluster
    # stands in for one a user runs; the runs under test are etl's, whose own LocalCluster
    # (no address) keeps Dask's default start method
    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    try:
        with distributed.Client(cluster) as client:
            client.wait_for_workers(2, timeout=60)
        yield cluster.scheduler_address
    finally:
        cluster.close()
