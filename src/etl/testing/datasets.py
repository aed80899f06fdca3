"""Read back what a run committed, and run the real ``etl`` command.

For end-to-end tests: run a pipeline file with :func:`run_cli`, then look at the dataset with
:func:`read_parquet_dataset`, :func:`read_rejects` and :func:`last_run_inputs`. The
``etl_cli`` and ``per_input`` fixtures hand these out (see :mod:`etl.testing.fixtures`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import subprocess

    import pyarrow as pa


def read_parquet_dataset(path: str | Path) -> pa.Table:
    """The committed articles of a parquet-sink dataset.

    Args:
        path: the dataset folder (the parquet sink's ``path``).

    Returns:
        A ``pyarrow.Table`` of every committed row (staged and ``_etl`` files excluded),
        hive partition columns included; an empty table with no columns when nothing is
        committed.
    """
    import pyarrow as pa
    import pyarrow.dataset as pads

    from etl.store import Store

    files = [str(p) for p in Store(Path(path)).data_files()]
    if not files:
        return pa.table({})
    return pads.dataset(files, format="parquet", partitioning="hive").to_table()


def read_rejects(path: str | Path) -> pa.Table:
    """The rejects of every committed run of a dataset (the framework's store keeps them).

    Args:
        path: where the dataset's store is: a parquet dataset's folder, or what another
            sink's ``location()`` returns (the folder that holds ``_etl/``).

    Returns:
        A ``pyarrow.Table`` of ``etl.context.REJECTS_SCHEMA`` (``run_id``, ``plugin``,
        ``section``, ``input``, ``location``, ``reason``, ``detail``, ``article_id``,
        ``rejected_at``), oldest run first; empty (with those columns) when there are none.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from etl.context import REJECTS_SCHEMA
    from etl.store import Store

    files = Store(Path(path)).rejects_files()
    if not files:
        return REJECTS_SCHEMA.empty_table()
    return pa.concat_tables([pq.read_table(f) for f in files])


def run_cli(
    *args: str,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
    fresh: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run the real ``etl`` command in a process of its own, progress display and the
    plugin listing's cache off.

    The process is a fork of a server that imported etl once (:mod:`etl.testing.forked`):
    a command costs a fork, not an interpreter's start-up. It is a new interpreter
    (``python -m etl.cli``) with ``fresh=True``, where ``env`` sets a variable that only
    start-up reads (``PYTHONPATH``; :data:`etl.testing.forked.START_UP_VARIABLES`), and
    on platforms without ``forkserver``.

    Args:
        args: the command's arguments (``"run", "pipeline.toml", "--full"``).
        cwd: the folder to run in (default: the current one).
        env: variables added to this process's environment.
        timeout: seconds before ``subprocess.TimeoutExpired`` (the process is killed).
        fresh: start a new interpreter.

    Returns:
        The ``subprocess.CompletedProcess``: ``returncode`` (0 ok, 2 a configuration
        error, 1 a failed run, negative: killed by that signal), ``stdout`` and ``stderr``
        as text.
    """
    import subprocess
    import sys

    from etl.testing import forked

    full_env = {**os.environ, "ETL_PROGRESS": "0", "ETL_CACHE_DIR": "", **(env or {})}
    starts = forked.START_UP_VARIABLES & set(env or {})
    if not fresh and not starts and forked.can_fork():
        return forked.run_forked(list(args), cwd, full_env, timeout)
    return subprocess.run(
        [sys.executable, "-m", "etl.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=timeout,
    )


def last_run_inputs(path: str | Path) -> dict[str, dict[str, Any]]:
    """The last committed run's accounting, per input.

    Args:
        path: where the dataset's store is: a parquet dataset's folder, or what another
            sink's ``location()`` returns (the folder that holds ``_etl/``).

    Returns:
        A dict keyed by input (the work unit's key: a path, URL or a source's own key);
        each value a dict with the keys ``input``, ``source`` (the source plugin's name),
        ``size``, ``mtime``, ``records`` (what the input gave: articles read plus records
        the source rejected), ``read``, ``written``, ``duplicates``, ``dropped``,
        ``rejected``, ``complete`` (False when the read failed in a way a retry may fix),
        ``content_hash``, ``key``, ``remembered`` (whether the next run may skip it) and
        ``fingerprint`` (the source's, when it gave one).
        For every input, ``records == written + duplicates + dropped + rejected``.

    Raises:
        AssertionError: the dataset has no committed run.
    """
    from etl.store import Store

    dataset = Store(Path(path))
    manifests = dataset.manifests()
    if not manifests:
        raise AssertionError(f"no committed run in {path}")
    return {row["input"]: row for row in dataset.run_inputs(manifests[-1])}
