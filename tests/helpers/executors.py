"""Helpers of the executor tests: a generated corpus, pipelines, reading datasets back."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb

from etl.dataset import Dataset
from tests.helpers import DATA, ROOT, start_fork_server, write_pipeline

#: the probe plugin the executor tests ship to workers
PLUGINS = ROOT / "tests" / "executors" / "plugins"

#: the columns that differ between two runs of the same inputs
RUN_COLUMNS = ("run_id", "ingested_at")


def make_corpus(folder: Path, n: int = 40) -> Path:
    """``n`` short articles plus the real newspaper samples, with duplicates far apart.

    Every 7th article repeats an earlier one (same text, so the same id) under another file
    name, so duplicates land in other chunks than their first occurrence; one file is empty
    (a reject). Publishers vary, for partitioned sinks.
    """
    folder.mkdir(parents=True, exist_ok=True)
    publishers = ["Xinhua", "Reuters", "Global Times", "AP"]
    texts = []
    for i in range(n):
        if i % 7 == 6:
            text = texts[i // 3]
        else:
            text = (
                f"Headline number {i}\n\nThe council met on day {i} and agreed on item "
                f"{i * 31 % 97}. Officials said more would follow.\n({publishers[i % 4]})\n"
            )
        texts.append(text)
        (folder / f"a{i:03d}.txt").write_text(text, encoding="utf-8")
    (folder / "empty.txt").write_text("")
    for path in sorted((DATA / "text" / "newspaper").glob("*.txt")):
        (folder / f"news-{path.name}").write_bytes(path.read_bytes())
    return folder


def pipeline(tmp_path: Path, name: str = "p.toml", *, extra: str = "", sink: str = "") -> Path:
    return write_pipeline(
        tmp_path / name,
        f'{extra}[[sources]]\nplugin = "text"\npaths = ["in"]\n'
        f'[sink]\nplugin = "parquet"\npath = "out"\n{sink}',
    )


def killable_pipeline(tmp_path: Path) -> tuple[Path, Path]:
    """A pipeline over 30 articles whose ``probe`` transform takes 0.2 s an article and writes
    each worker's pid to the returned folder, so a test can kill a worker mid-run."""
    import shutil

    make_corpus(tmp_path / "in", n=30)
    shutil.copy(PLUGINS / "probe.py", tmp_path / "probe.py")
    pids = tmp_path / "pids"
    pids.mkdir()
    p = pipeline(
        tmp_path,
        extra='plugins = ["probe.py"]\n[run]\nbatch_size = 1\n'
        f'[[transforms]]\nplugin = "probe"\nseconds = 0.2\npid_dir = "{pids}"\n',
    )
    return p, pids


def rows(dataset: Path) -> list[tuple]:
    """The committed articles as readers see them (hive partitions too), by id."""
    table = duckdb.sql(
        f"select * exclude ({', '.join(RUN_COLUMNS)}) from read_parquet("
        f"'{dataset}/**/*.parquet', hive_partitioning = true, union_by_name = true) order by id"
    )
    return [tuple(map(str, row)) for row in table.fetchall()]


def manifests(dataset: Path) -> list[dict]:
    found = [json.loads(p.read_text()) for p in (dataset / "_etl" / "runs").glob("*.json")]
    for manifest in found:  # the per-input account, from the table beside the manifest
        manifest["summary"]["per_input"] = Dataset(dataset).run_inputs(manifest)
    # run ids sort by start second only: two quick runs in one second tie
    return sorted(found, key=lambda m: (m["finished_at"], m["run_id"]))


def per_input(dataset: Path) -> dict[str, tuple]:
    """The last run's accounting per input: (read, written, duplicates, dropped, rejected)."""
    summary = manifests(dataset)[-1]["summary"]
    return {
        Path(e["input"]).name: (
            e["read"],
            e["written"],
            e["duplicates"],
            e["dropped"],
            e["rejected"],
        )
        for e in summary["per_input"]
    }


@contextlib.contextmanager
def local_dask_cluster(workers: int = 2) -> Iterator[str]:
    """A LocalCluster of ``workers`` worker processes on 127.0.0.1: its scheduler address,
    once every worker is up; closed after. Skips the test where distributed is missing.
    """
    with dask_cluster(workers) as cluster:
        yield cluster.scheduler_address


@contextlib.contextmanager
def dask_cluster(workers: int = 2) -> Iterator[Any]:
    """A LocalCluster of ``workers`` worker processes (each with its nanny) on 127.0.0.1,
    once every worker is up; closed after. ``cluster.scale(n)`` adds workers (an elastic
    cluster). Skips the test where distributed is missing.

    Its workers are forked from a server that imported dask and its dependencies once (per
    test process): a cluster after the first starts in well under a second, not in two or
    three, and closes at once (a forked worker skips interpreter shutdown). The cluster
    stands in for one a user runs; etl's own LocalCluster (no address) starts its workers
    the same way.
    """
    import logging

    import pytest

    dask = pytest.importorskip("dask")
    distributed = pytest.importorskip("distributed")
    # and without the nanny's MALLOC_TRIM_THRESHOLD_, which it sets in this process's
    # environment: every worker forked later (etl's own clusters too) would inherit it
    config = {
        "distributed.worker.multiprocessing-method": "forkserver",
        "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    }
    start_fork_server()  # the suite's one fork server, with distributed imported
    with dask.config.set(config):
        cluster = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    try:
        with distributed.Client(cluster) as client:
            client.wait_for_workers(workers, timeout=60)
        yield cluster
    finally:
        cluster.close()


def dask_command() -> list[str]:
    """The ``dask`` command of this environment (skips the test where it is missing)."""
    import pytest

    script = Path(sys.executable).with_name("dask")
    if script.exists():
        return [str(script)]
    found = shutil.which("dask")
    if found is None:
        pytest.skip("the dask command is not installed")
    return [found]


def stop_process(proc: subprocess.Popen, told: bool = False) -> None:
    """SIGTERM (unless ``told``: sent already), then SIGKILL after 15 s: a process this test
    started, by its pid."""
    if proc.poll() is None:
        if not told:
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


@contextlib.contextmanager
def dask_processes(folder: Path) -> Iterator[tuple[str, Callable[..., subprocess.Popen]]]:
    """A ``dask scheduler`` process on 127.0.0.1 (its address), and a function that starts
    ``dask worker`` processes for it (``prefix``: a command that runs it, e.g. in a mount
    namespace of its own; keyword arguments go to ``subprocess.Popen``: a working folder,
    an environment); every process is stopped after.

    The environment of each is this one without PYTHONPATH (a worker has only what is
    installed). Output goes to ``folder/logs``. Every process listens on 127.0.0.1 only.
    """
    scheduler_file = folder / "scheduler.json"
    logs = folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    dask = dask_command()
    procs: list[subprocess.Popen] = []
    outputs: list[Any] = []
    address = ""

    def start(
        name: str, args: list[str], prefix: tuple[str, ...] = (), **popen: Any
    ) -> subprocess.Popen:
        output = open(logs / f"{name}.out", "w")  # noqa: SIM115 - closed below
        outputs.append(output)
        popen.setdefault("env", env)
        proc = subprocess.Popen(
            [*prefix, *dask, *args], stdout=output, stderr=subprocess.STDOUT, **popen
        )
        procs.append(proc)
        return proc

    def worker(
        name: str, *args: str, prefix: tuple[str, ...] = (), **popen: Any
    ) -> subprocess.Popen:
        return start(
            f"worker-{name}",
            [
                "worker",
                address,
                "--host",
                "127.0.0.1",
                "--nthreads",
                "1",
                "--no-dashboard",
                # its HTTP server (health, metrics) listens all the same: on 0.0.0.0 unless told
                "--dashboard-address",
                "127.0.0.1:0",
                "--name",
                name,
                *args,
            ],
            prefix,
            **popen,
        )

    try:
        start(
            "scheduler",
            [
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--dashboard-address",
                "127.0.0.1:0",
                "--scheduler-file",
                str(scheduler_file),
            ],
        )
        deadline = time.monotonic() + 60
        address = None
        while address is None and time.monotonic() < deadline:
            try:
                address = json.loads(scheduler_file.read_text())["address"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        assert address and address.startswith("tcp://127.0.0.1:"), address
        yield address, worker
    finally:
        # the workers told at once, so that they close side by side (each takes a while),
        # and the scheduler once they are gone (they would wait for it)
        workers = procs[1:]
        for proc in workers:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc in workers:
            stop_process(proc, told=True)
        for proc in procs[:1]:
            stop_process(proc)
        for output in outputs:
            output.close()


#: a prefix that runs a command in a mount namespace of its own with an empty tmpfs over a
#: folder, as on a machine that has none of what is there: ``(*HIDE, "sh", folder, *command)``
#: (``sh`` is the script's $0; the folder, $1, is left out of the command)
HIDE = ("unshare", "--mount", "sh", "-c", 'mount -t tmpfs tmpfs "$1" && shift && exec "$@"')


def can_unshare(folder: Path) -> bool:
    """Can this process mount a tmpfs over ``folder`` in a mount namespace of its own?"""
    if shutil.which("unshare") is None:
        return False
    return subprocess.run([*HIDE, "sh", str(folder), "true"], capture_output=True).returncode == 0


def start_etl(*args: str) -> subprocess.Popen:
    """``etl`` in a process of its own that the test acts on while it runs (text pipes)."""
    return subprocess.Popen(
        [sys.executable, "-m", "etl.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ETL_PROGRESS": "0"},
    )


def wait_for(condition: Callable[[], bool], timeout: float = 120) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False
