"""The dask executor on a cluster that changes during a run (issue 17, items 5 and 6).

Every cluster here is real and owned by its test (a LocalCluster with nannies on 127.0.0.1,
or ``dask scheduler`` and ``dask worker`` processes); every run is a real ``etl run`` in a
process of its own, and what it committed is read back and compared with a local run of
the same pipeline, row for row.

A run waits at a gate (the probe transform's ``gate`` file) while the test changes the
cluster, so what a test checks does not depend on how fast the shared machine is.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
from pathlib import Path

import pytest

from tests.helpers import run_etl, run_etl_process
from tests.helpers.executors import (
    HIDE,
    PLUGINS,
    can_unshare,
    dask_cluster,
    dask_processes,
    killable_pipeline,
    make_corpus,
    manifests,
    pipeline,
    rows,
    start_etl,
    wait_for,
)

if importlib.util.find_spec("distributed") is None:  # found, not imported: collection stays light
    pytest.skip("needs distributed (pip install 'etl[dask]')", allow_module_level=True)

pytestmark = pytest.mark.slow


def _gated(tmp_path: Path, n: int = 30) -> tuple[Path, Path, Path]:
    """A pipeline whose every batch waits at a gate: (pipeline, gate file, pid folder)."""
    make_corpus(tmp_path / "in", n=n)
    shutil.copy(PLUGINS / "probe.py", tmp_path / "probe.py")
    gate, pids = tmp_path / "gate", tmp_path / "pids"
    pids.mkdir()
    p = pipeline(
        tmp_path,
        extra='plugins = ["probe.py"]\n[run]\nbatch_size = 1\n'
        f'[[transforms]]\nplugin = "probe"\ngate = "{gate}"\npid_dir = "{pids}"\n',
    )
    return p, gate, pids


def _dask(address: str, *more: str) -> list[str]:
    return ["--set", "executor.plugin=dask", "--set", f"executor.address={address}", *more]


def _same_as_local(tmp_path: Path, p: Path) -> list[tuple]:
    """The committed dataset equals a local run's, row for row (plugin_file aside: workers
    load a shipped copy), and holds every id once."""
    # without the probe's sleep (a killable pipeline's 0.2 s an article): not what is compared
    reference = run_etl(
        "run", str(p), "--set", f"sink.path={tmp_path / 'ref'}", "--set", "transforms.1.seconds=0"
    )
    assert reference.returncode == 0, reference.stderr
    got = rows(tmp_path / "out")
    assert [r[:-1] for r in got] == [r[:-1] for r in rows(tmp_path / "ref")]
    ids = [r[0] for r in got]
    assert len(ids) == len(set(ids)) > 20
    assert not list((tmp_path / "out" / "_etl" / "staging").glob("*"))
    return got


def _counters(dataset: Path) -> dict[str, int]:
    return manifests(dataset)[-1]["summary"]["counters"]


@pytest.mark.parametrize("setting", [[], ["--set", "executor.on_worker_loss=fail"]])
def test_retiring_a_worker_mid_run_is_not_a_loss(tmp_path, setting):
    distributed = pytest.importorskip("distributed")
    p, gate, pids = _gated(tmp_path)
    with dask_cluster(2) as cluster, distributed.Client(cluster) as client:
        # a retirement is no loss, by default and with on_worker_loss = "fail" alike
        proc = start_etl(
            "run",
            str(p),
            *_dask(cluster.scheduler_address, "--set", "executor.chunk_size=2", *setting),
        )
        try:
            # both workers are in a chunk, waiting at the gate
            assert wait_for(lambda: len(list(pids.iterdir())) >= 2 or proc.poll() is not None)
            assert proc.poll() is None, proc.communicate()
            by_pid = {pid: address for address, pid in client.run(os.getpid).items()}
            leaving = by_pid[int(sorted(pids.iterdir())[0].name)]
            # returns once the worker's results live elsewhere and it is closed
            assert leaving in client.retire_workers([leaving])
        finally:
            gate.touch()
        out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    _same_as_local(tmp_path, p)
    # told from a loss by the scheduler's record of the removal
    assert _counters(tmp_path / "out").get("dask:workers retired") == 1


def test_workers_added_mid_run_are_given_chunks(tmp_path):
    distributed = pytest.importorskip("distributed")
    p, gate, pids = _gated(tmp_path)
    with dask_cluster(1) as cluster, distributed.Client(cluster) as client:
        (first,) = client.scheduler_info()["workers"]
        proc = start_etl(
            "run", str(p), *_dask(cluster.scheduler_address, "--set", "executor.chunk_size=2")
        )
        try:
            assert wait_for(lambda: any(pids.iterdir()) or proc.poll() is not None)
            assert proc.poll() is None, proc.communicate()
            cluster.scale(3)
            client.wait_for_workers(3, timeout=120)
            # the tasks in flight follow the workers present: each new worker is given a
            # chunk while the first one still waits at the gate (with the window fixed at
            # the start, two tasks for one thread, at most two workers ever had one)
            busy = lambda: [w for w, keys in client.processing().items() if keys]  # noqa: E731
            assert wait_for(lambda: len(busy()) == 3), client.processing()
            names = {
                str(info["name"])
                for address, info in client.scheduler_info()["workers"].items()
                if address != first
            }
        finally:
            gate.touch()
        out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    _same_as_local(tmp_path, p)
    counters = _counters(tmp_path / "out")
    assert counters.get("dask:workers joined", 0) >= 2
    for name in names:
        assert counters.get(f"dask:chunks run on worker {name}", 0) >= 1, (name, counters)


def test_a_killed_worker_s_chunks_are_retried_by_default(tmp_path, dask_address):
    p, pids = killable_pipeline(tmp_path)
    proc = start_etl("run", str(p), *_dask(dask_address, "--set", "executor.chunk_size=2"))
    assert wait_for(lambda: any(pids.iterdir()) or proc.poll() is not None)
    assert proc.poll() is None, proc.communicate()
    os.kill(int(sorted(pids.iterdir())[0].name), signal.SIGKILL)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    # the chunk the worker was running ran again elsewhere; what its first attempt staged
    # was never adopted, so nothing is in twice
    _same_as_local(tmp_path, p)


def test_preflight_names_the_worker_that_cannot_reach_the_input_or_the_dataset(tmp_path):
    distributed = pytest.importorskip("distributed")
    private = tmp_path / "private"
    private.mkdir()
    if not can_unshare(private):
        pytest.skip("needs a mount namespace of its own (unshare --mount, as root)")
    # the worker runs in a mount namespace of its own where an empty tmpfs hides private/:
    # a folder only the driver has, as on a machine where a mount is missing
    pids = tmp_path / "pids"
    pids.mkdir()
    probe = f'plugins = ["probe.py"]\n[[transforms]]\nplugin = "probe"\npid_dir = "{pids}"\n'
    shutil.copy(PLUGINS / "probe.py", tmp_path / "probe.py")
    make_corpus(private / "in", n=6)
    make_corpus(tmp_path / "in", n=6)
    # the inputs only the driver sees; the dataset everyone sees
    hidden_inputs = pipeline(tmp_path, "p1.toml", extra=probe)
    hidden_inputs.write_text(hidden_inputs.read_text().replace('"in"', '"private/in"'))
    # the inputs everyone sees; the dataset only the driver sees
    hidden_dataset = pipeline(tmp_path, "p2.toml", extra=probe)
    hidden_dataset.write_text(hidden_dataset.read_text().replace('"out"', '"private/out"'))
    with dask_processes(tmp_path) as (address, worker):
        worker("outsider", prefix=(*HIDE, "sh", str(private)))
        with distributed.Client(address, timeout=60) as client:
            client.wait_for_workers(1, timeout=120)
        proc = run_etl_process("run", str(hidden_inputs), *_dask(address))
        err = proc.stderr
        assert proc.returncode == 2, err
        assert "dask worker tcp://127.0.0.1:" in err and "(name outsider)" in err, err
        assert f"cannot open the input {private / 'in'}" in err, err
        assert "which the driver can: unreadable: FileNotFoundError" in err, err
        assert "Traceback" not in err
        proc = run_etl_process("run", str(hidden_dataset), *_dask(address))
        err = proc.stderr
        assert proc.returncode == 2, err
        assert "(name outsider)" in err, err
        assert f"cannot see the run's staging folder {private / 'out' / '_etl'}" in err, err
        assert "Traceback" not in err
    # before dispatch: no chunk ran, nothing was committed
    assert not list(pids.iterdir())
    for dataset in (tmp_path / "out", private / "out"):
        assert not list(dataset.rglob("*.parquet"))
        assert not list((dataset / "_etl" / "staging").glob("*"))


def test_a_dask_run_that_reads_no_input_exits_1_and_commits_nothing(tmp_path, dask_address):
    # the driver cannot open them either (a FIFO, a link to nothing): no worker is blamed,
    # every input is a reject, and the run that rejected everything fails
    folder = tmp_path / "in"
    folder.mkdir()
    names = []
    for i in range(3):
        os.mkfifo(folder / f"fifo{i}.txt")
        (folder / f"gone{i}.txt").symlink_to(tmp_path / "nowhere" / f"{i}.txt")
        names += [f"in/fifo{i}.txt", f"in/gone{i}.txt"]
    p = tmp_path / "p.toml"
    p.write_text(
        f'[[sources]]\nplugin = "text"\npaths = {names!r}\n'
        '[sink]\nplugin = "parquet"\npath = "out"\n'.replace("'", '"')
    )
    proc = run_etl_process("run", str(p), *_dask(dask_address, "--set", "executor.chunk_size=1"))
    err = proc.stderr
    assert proc.returncode == 1, err
    assert "the run rejected every record it read (6 of 6), from 6 inputs" in err, err
    assert "nothing was committed" in err and "Traceback" not in err
    assert "3 not a regular file" in err and "3 unreadable" in err, err
    assert not list((tmp_path / "out").rglob("*.parquet"))
    assert manifests(tmp_path / "out") == []
    assert not list((tmp_path / "out" / "_etl" / "staging").glob("*"))
