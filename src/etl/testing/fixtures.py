"""The pytest fixtures of ``etl.testing`` (any project with ``etl`` installed has them).

* ``etl_pm``: a plugin manager with the builtins only;
* ``etl_cli``: ``(run_cli, read_parquet_dataset, read_rejects)``;
* ``per_input``: :func:`~etl.testing.last_run_inputs`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from etl.testing.datasets import last_run_inputs, read_parquet_dataset, read_rejects, run_cli

if TYPE_CHECKING:
    from etl.plugins import PluginManager


@pytest.fixture
def etl_pm() -> PluginManager:
    """A fresh plugin manager with the builtin plugins only.

    Plugins installed in the environment do not leak into the test; register the plugin
    under test with ``etl_pm.add_plugin_class(cls, supplier=...)``, or pass its class to a
    runner (``plugins=[...]``, or as the runner's first argument).

    Returns:
        An ``etl.plugins.PluginManager``, new for each test.
    """
    from etl.plugins import get_plugin_manager

    return get_plugin_manager(entry_points=False)


@pytest.fixture(scope="session")
def etl_cli() -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    """The three helpers of an end-to-end test through the real ``etl`` command.

    Returns:
        A tuple ``(run_cli, read_parquet_dataset, read_rejects)``:
        ``run_cli(*args, cwd=None, env=None, timeout=300)`` returns a
        ``subprocess.CompletedProcess`` (``returncode``, text ``stdout`` and ``stderr``);
        ``read_parquet_dataset(path)`` a ``pyarrow.Table`` of the committed articles;
        ``read_rejects(path)`` a ``pyarrow.Table`` of every run's rejects
        (``REJECTS_SCHEMA``).
    """
    return run_cli, read_parquet_dataset, read_rejects


@pytest.fixture(scope="session")
def per_input() -> Callable[[str | Path], dict[str, dict[str, Any]]]:
    """The last committed run's accounting per input.

    Returns:
        The function :func:`~etl.testing.last_run_inputs`: ``per_input(dataset_path)``
        returns a dict keyed by input key, each value a dict with the keys ``input``,
        ``source``, ``size``, ``mtime``, ``records``, ``read``, ``written``,
        ``duplicates``, ``dropped``, ``rejected``, ``complete``, ``content_hash``, ``key``,
        ``remembered`` and ``fingerprint``.
    """
    return last_run_inputs
