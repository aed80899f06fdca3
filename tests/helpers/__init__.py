"""Helpers shared by the test suite (plain functions; fixtures live in the conftest files).

Import them one way only: ``from tests.helpers import ...`` (or ``from tests.helpers.<area>
import ...`` for the helpers of one area). Conftest files are not imported as modules.

Two ways to run the real ``etl`` command:

* :func:`run_etl`: in this process, through click's ``CliRunner`` (no interpreter start-up,
  so about a hundred times cheaper); for everything where a process boundary is not what is
  tested;
* :func:`run_etl_process`: in a process of its own (``etl.testing.run_cli``: a fork of a
  server that imported etl once; a new interpreter where a ``PYTHONPATH`` is given);
  for crashes (``ETL_CRASH_AT`` ends the process), locks held by other processes, executors
  that start workers, and anything that needs a different ``PYTHONPATH``. Signals need the
  process while it runs: those tests start ``python -m etl.cli`` themselves.

Both return a ``subprocess.CompletedProcess`` (``returncode``, text ``stdout``/``stderr``).
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path

from etl.testing import read_parquet_dataset, read_rejects, run_cli

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
#: real inputs of many kinds and licences (see tests/data/MANIFEST.tsv)
CORPORA = DATA / "corpora"

# the same helpers plugin authors get from etl.testing
run_etl_process = run_cli
read_dataset = read_parquet_dataset

__all__ = [
    "CORPORA",
    "DATA",
    "ROOT",
    "WITH_PANDAS",
    "read_dataset",
    "read_rejects",
    "run_etl",
    "run_etl_process",
    "start_fork_server",
    "write_pipeline",
]

#: the environment a child process needs to import pandas (the suite's children do not see it:
#: tests/helpers/hide_pandas/sitecustomize.py)
WITH_PANDAS = {"ETL_TESTS_HIDE_PANDAS": "0"}

#: environment variables an in-process run cannot honour: a crash point ends the process
#: (here: the test run), and PYTHONPATH is read at interpreter start only
_NEEDS_A_PROCESS = ("ETL_CRASH_AT", "PYTHONPATH")
#: modules the plugin manager and the python transform import from files, by path
_PATH_MODULES = ("etl_local_", "etl_user_")


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on (for a server a test starts)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_fork_server() -> None:
    """Start this test process's fork server (``etl.testing.forked``; ``run_etl_process``
    forks from it). The suite's Dask clusters fork their workers from the same server, and
    whoever starts it sets what it imports: distributed too, and what many forked runs
    import late (s3fs alone is 0.3 s of each run on the object store)."""
    from etl.testing.forked import fork_server

    fork_server(also=["distributed", "s3fs", "structlog", "pyarrow.dataset", "numpy.ma"])


def write_pipeline(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def run_etl(
    *args: str,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess:
    """Run the real ``etl`` command (``etl.cli.cli``) in this process, as a user would run it.

    The same arguments and result as :func:`run_etl_process` (``timeout`` is accepted and
    ignored). What a CLI call changes in the process is put back afterwards: the working
    directory, the environment, etl's and structlog's logging set-up, the secrets to redact,
    ``gc.freeze()`` (``etl run`` freezes the heap), and the modules imported from plugin
    files. An exception that escapes the command is appended to ``stderr`` as the
    interpreter would print it, so "no traceback" assertions keep their meaning.
    """
    import structlog
    from click.testing import CliRunner

    from etl import log
    from etl.cli import cli

    env = {"ETL_PROGRESS": "0", "ETL_CACHE_DIR": "", **(env or {})}
    refused = [k for k in _NEEDS_A_PROCESS if k in env]
    if refused:
        raise ValueError(f"{', '.join(refused)} needs a real process: use run_etl_process")
    saved_log = (log._settings, log._applied, set(log._SECRETS))
    saved_structlog = structlog.get_config() if structlog.is_configured() else None
    frozen = gc.get_freeze_count()
    modules = set(sys.modules)
    old_cwd = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        result = CliRunner().invoke(cli, list(args), env=env, prog_name="etl")
    finally:
        os.chdir(old_cwd)
        # put back what the run froze. get_freeze_count() walks the whole frozen heap (tens
        # of ms in a worker that imported moto and dask, a tenth of the suite's CPU), so it
        # is asked again only when the caller had frozen objects of its own
        if not frozen or gc.get_freeze_count() > frozen:
            gc.unfreeze()
        log._settings, log._applied = saved_log[:2]
        log._SECRETS.clear()
        log._SECRETS.update(saved_log[2])
        if saved_structlog is None:
            structlog.reset_defaults()
        else:
            structlog.configure(**saved_structlog)
        for name in set(sys.modules) - modules:
            if name.startswith(_PATH_MODULES):
                del sys.modules[name]
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(["etl", *args], result.exit_code, result.stdout, stderr)
