"""How the ``processes`` executor starts: its fork server before the driver's imports, and
the driver's pyarrow warmed while it lists (docs/performance.md, "The fork server starts
before the driver's imports")."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import WITH_PANDAS

#: run in a fresh interpreter: the test process has long imported pyarrow and may already
#: hold a fork server of an earlier test
_EARLY = textwrap.dedent(
    """
    import sys

    import psutil

    from etl.config import load_pipeline
    from etl.executors.early import start_early

    start_early(load_pipeline(sys.argv[1], sys.argv[2:]))
    servers = [
        p for p in psutil.Process().children()
        if "multiprocessing.forkserver" in " ".join(p.cmdline())
    ]
    print(len(servers), "pyarrow" in sys.modules)
    """
)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ([], "1 False"),  # started, before the driver imported pyarrow
        (["executor.start_method=spawn"], "0 False"),  # no server to start
        (["executor.plugin=local"], "0 False"),
        # a local Dask cluster's workers fork from it too (docs/performance.md)
        (["executor.plugin=dask"], "1 False"),
        (["executor.plugin=dask", "executor.address=tcp://127.0.0.1:8786"], "0 False"),
    ],
)
def test_etl_run_starts_the_fork_server_before_it_imports_pyarrow(tmp_path, overrides, expected):
    pytest.importorskip("psutil")
    p = tmp_path / "p.toml"
    p.write_text(
        '[[sources]]\nplugin = "text"\npaths = ["in"]\n[sink]\nplugin = "parquet"\n'
        'path = "out"\n[executor]\nplugin = "processes"\n',
        encoding="utf-8",
    )
    proc = subprocess.run(
        [sys.executable, "-c", _EARLY, str(p), *overrides],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[0] == expected


def test_prepare_warms_the_drivers_pyarrow_and_execute_waits_for_it():
    """pyarrow imports pandas at the first array a process makes (0.2 s): prepare() does it
    in a thread, so that it does not fall into the serial end of the run."""
    code = textwrap.dedent(
        """
        import sys
        from etl.executors.processes import ProcessesExecutor

        executor = ProcessesExecutor({"workers": 1}, section="[executor]")
        executor.prepare()
        warming = executor._warming
        executor._warmed()  # what execute() and close() do first
        print(warming is not None and not warming.is_alive(), "pandas" in sys.modules)
        executor.close()
        """
    )
    env = {**os.environ, **WITH_PANDAS}  # the suite hides pandas from its children
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[0] == "True True"
