"""A worker killed mid-run fails the run with nothing committed under ``on_worker_loss =
"fail"``, and a re-run completes it; under the default, a retry, the processes executor runs
the dead worker's chunks on a new worker (Dask's retry is in test_executors_elastic.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import run_etl, run_etl_process
from tests.helpers.executors import (
    killable_pipeline,
    manifests,
    rows,
    start_etl,
    wait_for,
)

pytestmark = pytest.mark.slow


def _first_pid(folder: Path, proc: subprocess.Popen, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(folder.iterdir()) if folder.is_dir() else []
        if found:
            return int(found[0].name)
        if proc.poll() is not None:
            pytest.fail(f"the run ended before a worker started: {proc.communicate()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail("no worker reported its pid")


@pytest.mark.parametrize(
    ("executor", "message"),
    [
        ("processes", "was killed by SIGKILL"),
        ("dask", "dask worker tcp://127.0.0.1:"),
    ],
)
def test_killed_worker_leaves_dataset_uncommitted_and_rerun_completes(tmp_path, executor, message):
    p, pids = killable_pipeline(tmp_path)
    sets = ["--set", f"executor.plugin={executor}", "--set", "executor.chunk_size=2"]
    if executor == "dask":
        # only workers run chunks (the driver would leave its own pid)
        sets += ["--set", "executor.workers=2", "--set", "executor.driver_helps=false"]
    fail = ["--set", "executor.on_worker_loss=fail"]
    proc = start_etl("run", str(p), *sets, *fail)
    os.kill(_first_pid(pids, proc), signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert message in err and "nothing was committed" in err
    assert "Traceback" not in err
    dataset = tmp_path / "out"
    assert (dataset / "_etl" / "staging").is_dir()  # the run got as far as staging files
    assert not list(dataset.rglob("*.parquet"))
    assert manifests(dataset) == []
    assert not (dataset / "_etl" / "runs").exists()
    assert not list((dataset / "_etl" / "staging").glob("*"))

    # the re-run must start over and commit everything (with dask's default: on a loaded
    # machine a fresh LocalCluster can lose a worker at start-up on its own, seen under
    # xdist as "left the cluster" with nothing killed, and Dask re-runs its task)
    again = run_etl_process("run", str(p), *sets, "--set", "transforms.1.seconds=0")
    assert again.returncode == 0, again.stderr
    reference = run_etl(
        "run", str(p), "--set", f"sink.path={tmp_path / 'ref'}", "--set", "transforms.1.seconds=0"
    )
    assert reference.returncode == 0, reference.stderr
    # same rows (the plugin_file column aside: workers load a shipped copy)
    assert [r[:-1] for r in rows(dataset)] == [r[:-1] for r in rows(tmp_path / "ref")]


def _reference(tmp_path: Path, p: Path) -> list[tuple]:
    ref = run_etl(
        "run", str(p), "--set", f"sink.path={tmp_path / 'ref'}", "--set", "transforms.1.seconds=0"
    )
    assert ref.returncode == 0, ref.stderr
    return [r[:-1] for r in rows(tmp_path / "ref")]


def _start_gated(p: Path, gate: Path, setting: str, *flags: str) -> subprocess.Popen:
    """The killable pipeline under ``processes``, each worker waiting in its first batch
    until ``gate`` exists (the gate holds the workers: no sleep per batch)."""
    return start_etl(
        "run",
        str(p),
        "--set",
        "executor.plugin=processes",
        "--set",
        setting,
        "--set",
        f"transforms.1.gate={gate}",
        "--set",
        "transforms.1.seconds=0",
        *flags,
    )


def test_a_killed_process_worker_is_replaced_and_its_chunks_run_again(tmp_path):
    p, pids = killable_pipeline(tmp_path)
    gate = tmp_path / "gate"  # the workers wait in their first batch until it opens
    proc = _start_gated(p, gate, "executor.chunk_size=2", "-v")
    os.kill(_first_pid(pids, proc), signal.SIGKILL)
    assert wait_for(lambda: len(list(pids.iterdir())) >= 3 or proc.poll() is not None)
    gate.touch()  # the other worker and the one that replaced the dead one go on
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert "worker lost; its chunks run again" in err
    dataset = tmp_path / "out"
    # what the dead worker had staged was never adopted: every article once, as local has it
    assert [r[:-1] for r in rows(dataset)] == _reference(tmp_path, p)
    (manifest,) = manifests(dataset)
    assert manifest["summary"]["counters"]["processes:workers lost"] == 1
    assert not list((dataset / "_etl" / "staging").glob("*"))


def test_a_chunk_that_kills_each_worker_it_runs_on_fails_the_run(tmp_path):
    p, pids = killable_pipeline(tmp_path)
    gate = tmp_path / "gate"  # never opened: each worker waits in its first batch
    proc = _start_gated(p, gate, "executor.workers=1")
    first = _first_pid(pids, proc)
    os.kill(first, signal.SIGKILL)
    # the new worker takes the lost chunk first, and waits in it: kill it too
    assert wait_for(lambda: len(list(pids.iterdir())) > 1 or proc.poll() is not None)
    assert proc.poll() is None, proc.communicate()
    (second,) = [int(f.name) for f in pids.iterdir() if int(f.name) != first]
    os.kill(second, signal.SIGKILL)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 1, err
    assert "each worker that ran it died" in err and "nothing was committed" in err
    assert "Traceback" not in err
    assert manifests(tmp_path / "out") == []
