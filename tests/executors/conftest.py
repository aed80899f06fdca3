"""Fixtures of the executor tests (helpers are in tests/helpers/executors.py)."""

from __future__ import annotations

import pytest

from tests.helpers.executors import local_dask_cluster


@pytest.fixture
def dask_address():
    """The scheduler address of a 2-worker LocalCluster on 127.0.0.1, owned by this test.

    One cluster per test, not per session: a worker that leaves (killed, restarted by its
    nanny, or shut down by a run) cannot fail a later test, and no test sees another's
    state. The test starts once both workers are up, and the cluster is closed after it.
    """
    with local_dask_cluster() as address:
        yield address
