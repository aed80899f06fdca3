"""Issue 17's "done when": a real Dask cluster whose workers share nothing with the driver,
with the inputs and the dataset in an S3-compatible store.

One ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1 serve the module.
Each worker runs in a mount namespace of its own where an empty tmpfs covers the tests'
whole temporary folder (the driver's pipeline files, local inputs and local datasets are
there), and works in a folder of its own inside that tmpfs (``--local-directory`` and
``TMPDIR``). Its environment holds no credential: those travel in the pipeline
(``storage_options`` with ``${ETL_TEST_S3_SECRET}``), as docs/scaling.md promises. The
store is moto's server on 127.0.0.1; the inputs are uploaded to the module's bucket once,
and each test writes a dataset of its own in it.

Every dataset is compared, row for row, with a local run of the same pipeline (the local
executor, the same inputs in the bucket, a local dataset), after a clean run, a worker
killed, a worker retired, and the driver killed and run again. A run that changes the
cluster waits at the probe transform's gate (a folder outside the tmpfs, which the test
and the workers share) until the change is made, so the change falls mid-run whatever the
machine's speed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import read_dataset, run_etl
from tests.helpers.executors import (
    HIDE,
    PLUGINS,
    can_unshare,
    dask_processes,
    make_corpus,
    start_etl,
    wait_for,
)
from tests.objstore.conftest import KEY_ID, SECRET
from tests.objstore.s3data import (
    credentials_nowhere,
    duckdb_on,
    no_id_twice,
    pipeline,
    read_bucket,
    same_rows,
    upload,
)

if importlib.util.find_spec("distributed") is None:  # found, not imported: collection stays light
    pytest.skip("needs distributed (pip install 'etl[dask]')", allow_module_level=True)

pytestmark = pytest.mark.slow

#: after HIDE: make the worker's own folder ($TMPDIR) inside the tmpfs, then run the worker
MAKE_TMPDIR = ("sh", "-c", 'mkdir -p "$TMPDIR" && exec "$@"', "sh")


@dataclass
class Cluster:
    """The module's scheduler and workers, and what the tests need to change them."""

    address: str
    client: Any
    #: what each worker has an empty tmpfs over: the tests' whole temporary folder
    hidden: Path
    #: gates and pid files: outside ``hidden``, shared by the test and the workers
    control: Path
    logs: Path
    start: Callable[..., subprocess.Popen]
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    names: Iterator[str] = field(default_factory=lambda: iter("abcdefghijklmnop"))

    def add_worker(self) -> None:
        """A ``dask worker`` (with its nanny) in a mount namespace of its own, working in
        ``hidden/worker-<name>`` there, with no credential in its environment."""
        name = next(self.names)
        home = self.hidden / f"worker-{name}"
        env = {
            k: v
            for k, v in os.environ.items()
            if k != "PYTHONPATH" and not k.startswith(("AWS_", "ETL_TEST_S3"))
        }
        env |= {"TMPDIR": str(home), "AWS_EC2_METADATA_DISABLED": "true"}
        prefix = (*HIDE, "sh", str(self.hidden), *MAKE_TMPDIR)
        self.procs[name] = self.start(name, "--local-directory", str(home), prefix=prefix, env=env)

    def two_workers(self) -> Cluster:
        """Two workers up (one started for each that a test killed for good or retired)."""
        while sum(proc.poll() is None for proc in self.procs.values()) < 2:
            self.add_worker()
        assert wait_for(lambda: len(self.workers()) == 2, timeout=120), self.workers()
        return self

    def workers(self) -> dict[str, str]:
        """address -> name of the workers the scheduler has now."""
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        return {address: str(w["name"]) for address, w in info.items()}

    def pids(self) -> dict[str, int]:
        """address -> the pid of the worker process (its nanny's child), which runs tasks."""
        return self.client.run(os.getpid)

    def gate(self, name: str) -> tuple[Path, Path]:
        folder = self.control / name
        (folder / "pids").mkdir(parents=True)
        return folder / "gate", folder / "pids"

    def worker_logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.logs.glob("worker-*.out")))

    def dask(self, chunk_size: int = 4) -> list[str]:
        return [
            "--set",
            "executor.plugin=dask",
            "--set",
            f"executor.address={self.address}",
            "--set",
            f"executor.chunk_size={chunk_size}",
        ]


@pytest.fixture(scope="module")
def bucket(s3_module, tmp_path_factory):
    """The module's bucket, the corpus uploaded to ``in/`` (20 inputs: 14 articles, two of
    them repeated, the newspaper samples, and one empty file: rejects)."""
    upload(s3_module, make_corpus(tmp_path_factory.mktemp("corpus"), n=14))
    return s3_module


@pytest.fixture(scope="module")
def cluster(bucket, tmp_path_factory) -> Iterator[Cluster]:
    distributed = pytest.importorskip("distributed")
    hidden = tmp_path_factory.getbasetemp()
    if not can_unshare(hidden):
        pytest.skip(
            "needs a mount namespace of its own for each worker (unshare --mount and a "
            "tmpfs mount: root, or a user namespace allowed to mount)"
        )
    control = Path(tempfile.mkdtemp(prefix="etl-cluster-control-"))
    if control.is_relative_to(hidden):  # --basetemp over the temp folder: it would be hidden
        control.rmdir()
        pytest.skip(f"the temp folder {control.parent} is inside the test folders {hidden}")
    logs = tmp_path_factory.mktemp("cluster")
    try:
        with (
            dask_processes(logs) as (address, worker),
            distributed.Client(address, timeout=60) as client,
        ):
            cluster = Cluster(address, client, hidden, control, logs / "logs", worker)
            cluster.add_worker()
            cluster.add_worker()  # they start while the first test makes its reference
            yield cluster
    finally:
        shutil.rmtree(control, ignore_errors=True)


def _pipeline(path: Path, s3, out: str, probe: str | None = None) -> Path:
    """The bucket's ``in/*.txt`` into ``out`` (the bucket, or a local folder), both with the
    storage options and their ``${ETL_TEST_S3_SECRET}``; ``probe``: the probe transform's
    options (one article a batch)."""
    options = f"storage_options = {s3.toml()}"
    head, run = "", ""
    if probe is not None:
        shutil.copy(PLUGINS / "probe.py", path.parent / "probe.py")  # shipped by value
        head = 'plugins = ["probe.py"]'
        run = f'[run]\nbatch_size = 1\n[[transforms]]\nplugin = "probe"\n{probe}\n'
    return pipeline(
        path,
        s3.url("in"),
        out,
        options if out.startswith("s3://") else "",
        run,
        head=head,
        source=options,
    )


@pytest.fixture(scope="module")
def reference(bucket, tmp_path_factory) -> Callable[[str], Any]:
    """A local run's dataset (local executor, local dataset, the inputs in the bucket): of
    the plain pipeline (``"plain"``) or of the probe's (``"probe"``), made once."""
    made: dict[str, Any] = {}

    def get(kind: str) -> Any:
        if kind not in made:
            folder = tmp_path_factory.mktemp(f"reference-{kind}")
            p = _pipeline(
                folder / "p.toml", bucket, str(folder / "out"), "" if kind == "probe" else None
            )
            done = run_etl("run", str(p))
            assert done.returncode == 0, done.stderr
            made[kind] = read_dataset(folder / "out")
            assert made[kind].num_rows > 12
        return made[kind]

    return get


def _manifest(s3, prefix: str) -> dict:
    """The last run's manifest in the bucket."""
    fs = s3.fs()
    found = [json.loads(fs.cat_file(p)) for p in fs.glob(f"{s3.bucket}/{prefix}/_etl/runs/*.json")]
    return sorted(found, key=lambda m: (m["finished_at"], m["run_id"]))[-1]


def _committed_like_local(s3, prefix: str, want, ignore: tuple[str, ...] = ()) -> None:
    """The dataset below ``prefix`` equals the local run's row for row, holds every id
    once, and the run left no staging and no lock."""
    got = read_bucket(s3, prefix)
    no_id_twice(got)
    same_rows(got, want, ignore)
    fs = s3.fs()
    assert not fs.glob(f"{s3.bucket}/{prefix}/_etl/staging/**")
    assert not fs.exists(f"{s3.bucket}/{prefix}/_etl/lock")


def _gone(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _loopback_only(*pids: int) -> None:
    """Every internet socket of these processes and their children, listening or connected,
    is on 127.0.0.1."""
    import psutil

    procs = [psutil.Process(pid) for pid in pids]
    procs += [child for proc in procs for child in proc.children(recursive=True)]
    seen = 0
    for proc in procs:
        for conn in proc.net_connections(kind="inet"):
            for end in (conn.laddr, conn.raddr):
                if end:
                    assert end.ip == "127.0.0.1", (proc.pid, proc.cmdline(), conn)
                    seen += 1
    assert seen, "no socket seen at all"


def _probe(gate: Path | None, pids: Path, seconds: float = 0) -> str:
    return f'pid_dir = "{pids}"\nseconds = {seconds}\n' + (f'gate = "{gate}"\n' if gate else "")


def _at_the_gate(c: Cluster, s3, tmp_path: Path, name: str) -> tuple[Any, Path, Path]:
    """A run into ``name/out`` started, once both workers wait in a chunk at its gate:
    (the ``etl run`` process, the gate, the folder of the pids that ran chunks)."""
    gate, pids = c.gate(tmp_path.name)
    p = _pipeline(tmp_path / "p.toml", s3, s3.url(f"{name}/out"), _probe(gate, pids))
    proc = start_etl("run", str(p), *c.dask())
    assert wait_for(lambda: len(list(pids.iterdir())) >= 2 or proc.poll() is not None)
    assert proc.poll() is None, proc.communicate()
    return proc, gate, pids


def _ended(proc: Any, c: Cluster, s3, name: str, reference: Callable[[str], Any]) -> dict:
    """The run ended well and committed what a local run did; its counters."""
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    _committed_like_local(s3, f"{name}/out", reference("probe"), ("plugin_file",))
    credentials_nowhere(s3, out, err, c.worker_logs(), prefix=name)
    return _manifest(s3, f"{name}/out")["summary"]["counters"]


def test_private_workers_read_the_inputs_from_the_bucket_and_write_the_dataset_there(
    cluster, bucket, reference, tmp_path
):
    """The dataset, inputs and all in the bucket, equals a local run's row for row; the
    workers saw none of the driver's files and had no credential of their own; DuckDB
    and Polars read it from the bucket."""
    want = reference("plain")
    c = cluster.two_workers()
    p = _pipeline(tmp_path / "cluster.toml", bucket, bucket.url("plain/out"))

    # the workers see none of the driver's files: in the tmpfs, only their own folder
    names = c.workers()
    assert c.client.run(os.path.exists, str(p)) == dict.fromkeys(names, False)
    for address, listing in c.client.run(os.listdir, str(c.hidden)).items():
        assert listing == [f"worker-{names[address]}"], listing
    for address, folder in c.client.run(tempfile.gettempdir).items():
        assert folder == str(c.hidden / f"worker-{names[address]}")
    info = c.client.scheduler_info(n_workers=-1)["workers"]
    for address, w in info.items():
        assert w["local_directory"].startswith(str(c.hidden / f"worker-{names[address]}"))
    # and none has a credential in its environment (nor its nanny)
    for pid in [*c.pids().values(), *(proc.pid for proc in c.procs.values())]:
        environ = Path(f"/proc/{pid}/environ").read_text(errors="replace")
        assert SECRET not in environ and KEY_ID not in environ
        assert "ETL_TEST_S3_SECRET" not in environ

    # (a pipeline with inputs they cannot see fails in preflight, naming the worker:
    # tests/executors/test_executors_elastic.py, with the same HIDE)

    done = run_etl("-v", "run", str(p), *c.dask())
    assert done.returncode == 0, done.stderr
    _committed_like_local(bucket, "plain/out", want)
    # both workers ran chunks (and wrote them into the bucket: nothing they could write
    # locally would be seen by the driver)
    counters = _manifest(bucket, "plain/out")["summary"]["counters"]
    for name in names.values():
        assert counters.get(f"dask:chunks run on worker {name}", 0) >= 1, counters
    assert counters.get("dask:workers lost", 0) == 0

    ids = sorted(want.column("id").to_pylist())
    # Polars, straight from the bucket (its own object-store client)
    pl = pytest.importorskip("polars")
    frame = pl.scan_parquet(
        bucket.url("plain/out/**/*.parquet"),
        hive_partitioning=True,
        storage_options=bucket.polars_options(),
    ).collect()
    assert sorted(frame["id"].to_list()) == ids
    pytest.importorskip("duckdb")
    con = duckdb_on(bucket)
    found = con.execute(
        f"SELECT id FROM read_parquet('{bucket.url('plain/out/**/*.parquet')}', "
        "hive_partitioning = true) ORDER BY id"
    ).fetchall()
    assert [row[0] for row in found] == ids

    credentials_nowhere(bucket, done.stdout, done.stderr, c.worker_logs(), prefix="plain")


def test_a_worker_killed_mid_run_costs_nothing(cluster, bucket, reference, tmp_path):
    """SIGKILL to a worker while every worker is in a chunk: its chunk runs again (the
    default), and the dataset equals one clean run's, nothing twice."""
    c = cluster.two_workers()
    proc, gate, pids = _at_the_gate(c, bucket, tmp_path, "killed")
    try:
        # both workers are in a chunk, waiting at the gate. Nothing listens or connects
        # beyond 127.0.0.1: the driver, the scheduler, the workers and their nannies (moto
        # is this process's, on 127.0.0.1 by its fixture)
        scheduler = c.client.run_on_scheduler(os.getpid)
        _loopback_only(proc.pid, scheduler, *(w.pid for w in c.procs.values()))
        victim = int(sorted(pids.iterdir())[0].name)
        assert victim in c.pids().values()
        os.kill(victim, signal.SIGKILL)
        assert wait_for(lambda: _gone(victim), timeout=30)
    finally:
        gate.touch()
    # what the dead worker had staged (if anything) was never adopted
    counters = _ended(proc, c, bucket, "killed", reference)
    assert counters.get("dask:workers lost") == 1, counters


def test_a_worker_retired_mid_run_is_not_a_loss(cluster, bucket, reference, tmp_path):
    """``retire_workers`` while every worker is in a chunk: the run goes on, counts a
    retirement and no loss, and the dataset equals one clean run's."""
    c = cluster.two_workers()
    proc, gate, pids = _at_the_gate(c, bucket, tmp_path, "retired")
    try:
        by_pid = {pid: address for address, pid in c.pids().items()}
        leaving = by_pid[int(sorted(pids.iterdir())[0].name)]
        # returns once the worker's results live elsewhere and it is closed
        assert leaving in c.client.retire_workers([leaving])
        assert leaving not in c.workers()
        c.add_worker()  # for the next test: it joins this run, which gives it chunks
    finally:
        gate.touch()
    counters = _ended(proc, c, bucket, "retired", reference)
    assert counters.get("dask:workers retired") == 1, counters
    assert counters.get("dask:workers lost", 0) == 0, counters


def test_a_driver_killed_mid_run_then_run_again_equals_one_clean_run(
    cluster, bucket, reference, tmp_path
):
    """SIGKILL to ``etl run`` once the workers have staged files in the bucket and while
    they are in chunks: nothing is committed. Run again at once (its lock broken: the dead
    driver's pid on this host), it rolls the dead run back and commits the same dataset as
    one clean run; the dead run's tasks, still running on the workers, write nothing."""
    c = cluster.two_workers()
    gate, pids = c.gate(tmp_path.name)
    gate.touch()  # open at first: the run goes on until the test closes it
    prefix = f"{bucket.bucket}/driver/out"
    p = _pipeline(tmp_path / "p.toml", bucket, bucket.url("driver/out"), _probe(gate, pids, 0.2))
    fs = bucket.fs()
    # a chunk's file (not the preflight's probe, .probe-*, which each worker writes there
    # and deletes before any chunk runs)
    staged = lambda: [f for f in fs.find(f"{prefix}/_etl/staging") if f.endswith(".staged")]  # noqa: E731
    proc = start_etl("run", str(p), *c.dask())
    try:
        # a worker staged a chunk's file in the bucket (0.8 s a chunk, five chunks): close
        # the gate, so that the tasks running wait in their next batch, then kill
        assert wait_for(lambda: staged() or proc.poll() is not None)
        gate.unlink()
        assert proc.poll() is None, proc.communicate()
        os.kill(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        assert not read_bucket(bucket, "driver/out").num_rows, "nothing committed"
        assert fs.exists(f"{prefix}/_etl/lock"), "the dead driver's lock is left"
        # the scheduler let go of the dead run's tasks, but one running runs on (Dask
        # cannot stop it): the one that began a chunk as the first was staged, at the gate
        orphans = lambda dask_worker: sum(  # noqa: E731
            task.state == "cancelled" for task in dask_worker.state.tasks.values()
        )
        states = lambda dask_worker: {str(k): t.state for k, t in dask_worker.state.tasks.items()}  # noqa: E731
        found = wait_for(lambda: sum(c.client.run(orphans).values()) >= 1, timeout=30)
        assert found, c.client.run(states)
    finally:
        gate.touch()

    # the dead run's tasks go on and ask the dead driver which ids are new: they see their
    # run was given up and end without writing (before, they waited ASK_TIMEOUT, 10 s, for
    # the answer, holding the threads this run's tasks waited for, then wrote into the dead
    # run's staging after this run had rolled it back: their files were left there)
    again = run_etl("run", str(p), *c.dask(), "--set", "transforms.1.seconds=0")
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    _committed_like_local(bucket, "driver/out", reference("probe"), ("plugin_file",))
    assert len(fs.glob(f"{prefix}/_etl/runs/*.json")) == 1
    logs = (out, err, again.stdout, again.stderr, c.worker_logs())
    credentials_nowhere(bucket, *logs, prefix="driver")
