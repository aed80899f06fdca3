"""The dask executor against a real scheduler and worker started on loopback (the remote path)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import run_etl, run_etl_process
from tests.helpers.executors import PLUGINS, make_corpus, pipeline, rows

if importlib.util.find_spec("distributed") is None:  # found, not imported: collection stays light
    pytest.skip("needs distributed (pip install 'etl[dask]')", allow_module_level=True)

pytestmark = pytest.mark.slow

ONLY_ON_DRIVER = '''
import etl


class OnlyHere(etl.Transform):
    """A transform installed on the driver only."""

    name = "only_here"

    def process(self, batch, ctx):
        return batch


@etl.hookimpl
def etl_register_plugins(register):
    register(OnlyHere)
'''


def _dask_command() -> list[str]:
    script = Path(sys.executable).with_name("dask")
    if script.exists():
        return [str(script)]
    found = shutil.which("dask")
    if found is None:
        pytest.skip("the dask command is not installed")
    return [found]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


@pytest.fixture
def remote_cluster(tmp_path):
    """A `dask scheduler` and one `dask worker` (own working folder, own environment)."""
    scheduler_file = tmp_path / "scheduler.json"
    logs = tmp_path / "logs"
    logs.mkdir()
    elsewhere = tmp_path / "worker-home"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    dask = _dask_command()
    procs = []
    outputs = [open(logs / "scheduler.out", "w"), open(logs / "worker.out", "w")]  # noqa: SIM115
    try:
        procs.append(
            subprocess.Popen(
                [
                    *dask,
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--no-dashboard",
                    "--scheduler-file",
                    str(scheduler_file),
                ],
                stdout=outputs[0],
                stderr=subprocess.STDOUT,
                env=env,
            )
        )
        deadline = time.monotonic() + 60
        address = None
        while address is None and time.monotonic() < deadline:
            try:
                address = json.loads(scheduler_file.read_text())["address"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        assert address and address.startswith("tcp://127.0.0.1:"), address
        procs.append(
            subprocess.Popen(
                [
                    *dask,
                    "worker",
                    "--scheduler-file",
                    str(scheduler_file),
                    "--host",
                    "127.0.0.1",
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    "--name",
                    "remote-1",
                ],
                stdout=outputs[1],
                stderr=subprocess.STDOUT,
                cwd=elsewhere,
                env=env,
            )
        )
        yield address
    finally:
        for proc in reversed(procs):
            _stop(proc)
        for output in outputs:
            output.close()


def test_remote_cluster_runs_the_pipeline_and_names_a_plugin_it_lacks(tmp_path, remote_cluster):
    make_corpus(tmp_path / "in", n=12)
    shutil.copy(PLUGINS / "probe.py", tmp_path / "probe.py")
    p = pipeline(tmp_path, extra='plugins = ["probe.py"]\n[[transforms]]\nplugin = "probe"\n')
    proc = run_etl_process(
        "run",
        str(p),
        "--set",
        "executor.plugin=dask",
        "--set",
        f"executor.address={remote_cluster}",
        # a lost worker is not what this test is about (see test_executors.DASK_RETRY)
        "--set",
        "executor.on_worker_loss=retry",
    )
    assert proc.returncode == 0, proc.stderr
    # the reference (local executor) needs no process of its own
    reference = run_etl("run", str(p), "--set", f"sink.path={tmp_path / 'ref'}")
    assert reference.returncode == 0, reference.stderr
    assert [r[:-1] for r in rows(tmp_path / "out")] == [r[:-1] for r in rows(tmp_path / "ref")]

    # a plugin module the driver can import and the worker cannot
    driver_only = tmp_path / "driver-only"
    driver_only.mkdir()
    (driver_only / "etl_only_here.py").write_text(ONLY_ON_DRIVER)
    p2 = pipeline(
        tmp_path,
        "p2.toml",
        extra='plugins = ["etl_only_here"]\n[[transforms]]\nplugin = "only_here"\n',
        sink="",
    )
    proc = run_etl_process(
        "run",
        str(p2),
        "--set",
        f"sink.path={tmp_path / 'out2'}",
        "--set",
        "executor.plugin=dask",
        "--set",
        f"executor.address={remote_cluster}",
        env={"PYTHONPATH": str(driver_only)},
    )
    assert proc.returncode == 1, proc.stderr
    assert f"dask worker {remote_cluster.rsplit(':', 1)[0]}" in proc.stderr
    assert "(name remote-1)" in proc.stderr
    assert "etl_only_here" in proc.stderr
    assert "install the same plugins on every worker" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list((tmp_path / "out2").rglob("*.parquet"))
