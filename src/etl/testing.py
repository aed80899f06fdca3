"""Helpers for testing etl plugins, registered as a pytest plugin (``pytest11`` entry point).

Fixtures:

* ``etl_pm``: a plugin manager holding the builtins only, so installed plugins do not leak
  into a plugin's tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from etl.plugins import PluginManager


@pytest.fixture
def etl_pm() -> PluginManager:
    """A fresh plugin manager with the builtin plugins only."""
    from etl.plugins import get_plugin_manager

    return get_plugin_manager(entry_points=False)
