"""Fixtures and settings shared by the whole test suite (plain helpers are in tests/helpers)."""

from collections import Counter

from hypothesis import settings

# No per-example time limit: on a loaded machine, or with a test per core (pytest -n), an
# example can take longer than hypothesis's 200 ms without anything being wrong (a timing
# limit is not what these properties test).
settings.register_profile("etl", deadline=None)
settings.load_profile("etl")


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
