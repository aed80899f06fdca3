"""Fixtures and settings shared by the whole test suite (plain helpers are in tests/helpers)."""

from hypothesis import settings

# No per-example time limit: on a loaded machine, or with a test per core (pytest -n), an
# example can take longer than hypothesis's 200 ms without anything being wrong (a timing
# limit is not what these properties test).
settings.register_profile("etl", deadline=None)
settings.load_profile("etl")
