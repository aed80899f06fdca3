"""The dask executor against a real scheduler and worker started on loopback (the remote path)."""

from __future__ import annotations

import importlib.util
import shutil

import pytest

from tests.helpers import run_etl, run_etl_process
from tests.helpers.executors import PLUGINS, dask_processes, make_corpus, pipeline, rows

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


@pytest.fixture
def remote_cluster(tmp_path):
    """A `dask scheduler` and one `dask worker` (own working folder, own environment)."""
    elsewhere = tmp_path / "worker-home"
    elsewhere.mkdir()
    with dask_processes(tmp_path) as (address, worker):
        worker("remote-1", cwd=elsewhere)
        yield address


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
