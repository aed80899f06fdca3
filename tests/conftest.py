"""Fixtures and settings shared by the whole test suite (plain helpers are in tests/helpers)."""

import os
import sys
from collections import Counter
from pathlib import Path

from hypothesis import settings

# the Python processes the tests start do not see pandas (tests/helpers/hide_pandas says why);
# pytest's own processes (the xdist workers inherit this environment) do
os.environ["ETL_TESTS_HIDE_PANDAS"] = "1"
_HIDE_PANDAS = str(Path(__file__).parent / "helpers" / "hide_pandas")
if _HIDE_PANDAS not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [_HIDE_PANDAS, os.environ.get("PYTHONPATH")])
    )
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "hides_pandas", False)]

# Bytecode caches on, for this process and every one it starts: where PYTHONDONTWRITEBYTECODE
# is set (this team's machines), each `etl` process, worker and fork server the suite starts
# compiled etl's sources anew (the editable installs of requirements-dev.txt have no .pyc; a
# user's `pip install` compiles them once): 0.7 s of CPU in a 1.6 s run of the seed pipeline,
# most of the suite's time. The caches go to __pycache__ folders (.gitignore).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

# No per-example time limit: on a loaded machine, or with a test per core (pytest -n), an
# example can take longer than hypothesis's 200 ms without anything being wrong (a timing
# limit is not what these properties test).
settings.register_profile("etl", deadline=None)
settings.load_profile("etl")


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker more than the cores. A worker often waits (on a subprocess,
    a cluster starting, a lease running out), and a third keeps the cores busy: on this
    project's 2-core machine, alternated runs took 226 s and 287 s with three workers,
    266 s and 311 s with two."""
    return (os.cpu_count() or 1) + 1


def pytest_sessionstart(session):
    """An xdist worker starts its fork server while it collects: it runs hundreds of
    ``etl`` commands (``etl.testing.run_cli``) and Dask workers forked from it."""
    from etl.testing import forked

    # read by tests/helpers/hide_pandas/sitecustomize.py at start-up: a test that sets it
    # gets a new interpreter
    forked.START_UP_VARIABLES.add("ETL_TESTS_HIDE_PANDAS")
    if os.environ.get("PYTEST_XDIST_WORKER"):
        from tests.helpers import start_fork_server

        start_fork_server()


def pytest_collection_modifyitems(config, items):
    """Files with more tests marked ``slow`` run first, each file's tests in their order.

    With ``-n`` (pytest-xdist, ``--dist loadfile``) whole files are handed to the workers in
    this order (pyproject.toml turns off xdist's own reordering, which puts files with the
    most tests first and so left the long few-test files, Spark and the killed workers, to
    the end): the long files start early, and the many short ones fill the end evenly.
    """
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    first = {}
    for index, item in enumerate(items):
        first.setdefault(item.path, index)
    items.sort(key=lambda item: (-slow[item.path], first[item.path]))


#: test files that share an expensive session fixture, handed to one xdist worker as one
#: unit (with --dist loadfile each worker would otherwise build the fixture for itself)
SHARE_A_WORKER = {
    # plugin_env: a virtualenv with two scaffolded plugins pip-installed into it
    "tests/plugin_dev/test_plugin_selection.py": "plugin_env",
    "tests/plugin_dev/test_scaffold_package.py": "plugin_env",
}


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadfile":
        return None  # another --dist given on the command line: xdist's own scheduler
    from xdist.scheduler import LoadFileScheduling

    class Scheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            scope = super()._split_scope(nodeid)
            return SHARE_A_WORKER.get(scope, scope)

    return Scheduling(config, log)
