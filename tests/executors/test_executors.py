"""The processes and dask executors write the same dataset as the local one, row for row."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.helpers import read_rejects, run_etl, run_etl_process
from tests.helpers.executors import (
    PLUGINS,
    make_corpus,
    manifests,
    per_input,
    pipeline,
    rows,
)


@pytest.mark.slow
def test_local_processes_and_dask_write_the_same_dataset(tmp_path, dask_address):
    make_corpus(tmp_path / "in")
    p = pipeline(tmp_path, sink='partition_by = ["publisher"]\nmax_rows_per_file = 5\n')
    processes = ["--set", "executor.workers=2", "--set", "executor.chunk_size=3"]
    runs = {
        "local": [],
        # workers ask the driver which ids are new before they write (the default)
        "processes": processes,
        # workers write at once; the driver drops duplicates from their files
        "processes-no-hold": [*processes, "--set", "executor.hold_bytes=0"],
        # a batch per article and room for about two: chunks that outgrow the hold are
        # written as they stream, the others after the driver's answer
        "processes-spill": [
            *processes,
            "--set",
            "executor.hold_bytes=1000",
            "--set",
            "run.batch_size=1",
        ],
        # tasks ask the driver which ids it knows (the default); a hint, checked on adoption
        "dask": [
            "--set",
            f"executor.address={dask_address}",
            "--set",
            "executor.chunk_size=4",
        ],
        "dask-no-hold": [
            "--set",
            f"executor.address={dask_address}",
            "--set",
            "executor.chunk_size=4",
            "--set",
            "executor.hold_bytes=0",
        ],
    }
    for name, extra in runs.items():
        out = tmp_path / f"out-{name}"
        plugin = name.split("-")[0]
        # the reference needs no process of its own: in this one, as every local run
        run = run_etl if plugin == "local" else run_etl_process
        proc = run(
            "run", str(p), "--set", f"sink.path={out}", "--set", f"executor.plugin={plugin}", *extra
        )
        assert proc.returncode == 0, f"{name}: {proc.stderr}"
        assert f"{out}" in proc.stdout
    datasets = {name: tmp_path / f"out-{name}" for name in runs}
    local = datasets["local"]
    expected = rows(local)
    # 40 generated articles (5 repeat earlier ones), the newspaper samples (one is empty)
    assert len(expected) > 35
    accounting = per_input(local)
    assert sum(v[2] for v in accounting.values()) == 5
    for name, dataset in datasets.items():
        assert rows(dataset) == expected, name
        # every input accounted for exactly as one process does it, duplicates across
        # workers too
        assert per_input(dataset) == accounting, name
    # how duplicates across chunks went: asked before writing, or dropped by a rewrite
    counters = {n: manifests(d)[-1]["summary"]["counters"] for n, d in datasets.items()}
    asked = "processes:chunks deduplicated before writing"
    rewritten = "processes:files rewritten to drop duplicates"
    assert counters["processes"].get(asked, 0) > 0
    assert rewritten not in counters["processes"]
    assert asked not in counters["processes-no-hold"]
    assert counters["processes-no-hold"].get(rewritten, 0) > 0
    assert counters["processes-spill"].get(asked, 0) > 0
    assert counters["processes-spill"].get(rewritten, 0) > 0
    # dask: a duplicate of a chunk the driver had taken is dropped before it is written
    dask_asked = "dask:chunks that asked which ids are new"
    dask_rewritten = "dask:files rewritten to drop duplicates"
    assert counters["dask"].get(dask_asked, 0) > 0
    assert dask_asked not in counters["dask-no-hold"]
    assert counters["dask"].get(dask_rewritten, 0) < counters["dask-no-hold"][dask_rewritten]
    processes = datasets["processes"]
    reasons = manifests(local)[-1]["summary"]["rejects_by_reason"]
    assert sum(reasons.values()) == 2  # the two empty files
    for dataset in datasets.values():
        summary = manifests(dataset)[-1]["summary"]
        assert summary["written"] == len(expected)
        assert summary["rejects_by_reason"] == reasons
        assert read_rejects(dataset).num_rows == 2
        assert not list((dataset / "_etl" / "staging").glob("*"))
    # workers wrote several files per partition, all adopted and renamed into place
    assert len(list(processes.rglob("*.parquet"))) > len(list(processes.glob("*/")))


@pytest.mark.slow
def test_full_rerun_under_processes_adds_nothing(tmp_path):
    make_corpus(tmp_path / "in", n=20)
    p = pipeline(tmp_path, extra="", sink="")
    args = ("run", str(p), "--set", "executor.plugin=processes", "--set", "executor.chunk_size=2")
    first = run_etl_process(*args)
    assert first.returncode == 0, first.stderr
    before = rows(tmp_path / "out")
    again = run_etl_process(*args, "--full", "--json")
    assert again.returncode == 0, again.stderr
    assert '"written": 0' in again.stdout
    assert rows(tmp_path / "out") == before
    # every staged file held only duplicates: none was committed, none left behind
    assert len(manifests(tmp_path / "out")[-1]["files"]) == 0
    assert not list((tmp_path / "out" / "_etl" / "staging").glob("*"))


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["processes", "dask"])
def test_local_plugin_file_is_shipped_to_workers(tmp_path, executor, request):
    make_corpus(tmp_path / "in", n=10)
    plugin = tmp_path / "probe.py"
    shutil.copy(PLUGINS / "probe.py", plugin)
    p = pipeline(tmp_path, extra='plugins = ["probe.py"]\n[[transforms]]\nplugin = "probe"\n')
    sets = ["--set", f"executor.plugin={executor}", "--set", "executor.chunk_size=3"]
    if executor == "dask":
        address = request.getfixturevalue("dask_address")  # a cluster only where it is used
        sets += ["--set", f"executor.address={address}"]
    proc = run_etl_process("run", str(p), *sets)
    assert proc.returncode == 0, proc.stderr
    files = {r[-1] for r in rows(tmp_path / "out")}
    # the workers ran the copy the driver shipped (by value), not the file in the pipeline's folder
    assert len(files) == 1
    (loaded,) = files
    assert loaded != str(plugin)
    assert loaded.startswith(str(Path(tempfile.gettempdir()) / "etl-plugins"))
    assert Path(loaded).read_bytes() == plugin.read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["processes", "dask"])
def test_a_worker_opens_and_closes_the_transforms_once_per_run(tmp_path, executor, request):
    """docs/plugins.md: a transform's ``open`` and ``close`` run once, before the first batch
    and after the last. A worker's copy of the plugins runs many chunks: it opens them before
    its first chunk and closes them after its last, not once per chunk (Dask's tasks did)."""
    make_corpus(tmp_path / "in", n=24)
    shutil.copy(PLUGINS / "lifecycle.py", tmp_path / "lifecycle.py")
    log = tmp_path / "lifecycle.log"
    p = pipeline(
        tmp_path,
        extra=f'plugins = ["lifecycle.py"]\n[[transforms]]\nplugin = "lifecycle"\nlog = "{log}"\n',
    )
    sets = ["--set", f"executor.plugin={executor}", "--set", "executor.chunk_size=2"]
    if executor == "dask":
        sets += ["--set", f"executor.address={request.getfixturevalue('dask_address')}"]
    proc = run_etl_process("run", str(p), *sets)
    assert proc.returncode == 0, proc.stderr
    calls: dict[str, list[str]] = {}
    for line in log.read_text().splitlines():
        pid, what = line.split()
        calls.setdefault(pid, []).append(what)
    assert sum(c.count("batch") for c in calls.values()) >= 12  # 13 chunks of 2 units or fewer
    for pid, seen in calls.items():  # the driver's own copy too, with no batch perhaps
        batches = seen.count("batch")
        assert seen == ["open"] + ["batch"] * batches + ["close"], (pid, seen)


@pytest.mark.slow
def test_a_transform_that_fails_to_close_on_a_dask_worker_fails_the_run(tmp_path, dask_address):
    """The workers close their transforms after the job's last chunk, before the commit: a
    close that raises there fails the run with the worker named, and nothing is committed."""
    make_corpus(tmp_path / "in", n=12)
    shutil.copy(PLUGINS / "lifecycle.py", tmp_path / "lifecycle.py")
    log = tmp_path / "lifecycle.log"
    p = pipeline(
        tmp_path,
        extra='plugins = ["lifecycle.py"]\n[[transforms]]\nplugin = "lifecycle"\n'
        f'log = "{log}"\nfail_close = true\n',
    )
    proc = run_etl_process(
        "run", str(p), "--set", "executor.plugin=dask", "--set", f"executor.address={dask_address}"
    )
    assert proc.returncode == 1, proc.stderr
    assert "dask worker tcp://127.0.0.1:" in proc.stderr
    assert "the lifecycle transform cannot close" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list((tmp_path / "out").rglob("*.parquet"))


@pytest.mark.slow
def test_on_error_fail_in_a_worker_stops_the_run(tmp_path):
    make_corpus(tmp_path / "in", n=10)
    p = pipeline(tmp_path, extra='[run]\non_error = "fail"\n')
    proc = run_etl_process("run", str(p), "--set", "executor.plugin=processes")
    assert proc.returncode == 1
    assert "rejected" in proc.stderr and "empty file" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list((tmp_path / "out").rglob("*.parquet"))


def test_bad_executor_options_are_config_errors(tmp_path):
    make_corpus(tmp_path / "in", n=2)
    p = pipeline(tmp_path)
    # `validate` starts no worker: in this process
    proc = run_etl(
        "validate", str(p), "--set", "executor.plugin=processes", "--set", "executor.workers=0"
    )
    assert proc.returncode == 2
    assert "plugin 'processes'" in proc.stderr and "'workers' must be at least 1" in proc.stderr
    proc = run_etl(
        "validate", str(p), "--set", "executor.plugin=dask", "--set", "executor.on_worker_loss=x"
    )
    assert proc.returncode == 2
    assert "choose one of 'fail', 'retry'" in proc.stderr


@pytest.mark.slow
def test_dask_missing_says_how_to_install(tmp_path):
    make_corpus(tmp_path / "in", n=2)
    p = pipeline(tmp_path)
    # a `distributed` that cannot be imported, ahead of the real one on the path
    stub = tmp_path / "stub"
    stub.mkdir()
    (stub / "distributed.py").write_text("raise ImportError(\"No module named 'distributed'\")\n")
    proc = run_etl_process(
        "run", str(p), "--set", "executor.plugin=dask", env={"PYTHONPATH": str(stub)}
    )
    assert proc.returncode == 2, proc.stderr
    assert "plugin 'dask' needs the package dask[distributed]" in proc.stderr
    assert "pip install 'etl[dask]'" in proc.stderr
    # refused before anything was staged or committed (the sink made its empty folders)
    staging = tmp_path / "out" / "_etl" / "staging"
    assert staging.is_dir() and not list(staging.iterdir())
    assert not list((tmp_path / "out").rglob("*.parquet"))
    assert not (tmp_path / "out" / "_etl" / "runs").exists()


@pytest.mark.slow
def test_big_chunks_with_prefetch_do_not_deadlock(tmp_path):
    """A chunk message and a chunk's ids both larger than a pipe's buffer: the driver sends
    the next chunk while the worker sends its ids. Neither may wait for the other to read
    (the worker takes messages off its pipe in a thread)."""
    folder = tmp_path / "in"
    for sub in range(14):
        part = folder / f"{sub:02d}"
        part.mkdir(parents=True)
        for i in range(1000):
            (part / f"article-{i:04d}.txt").write_text(f"Article {sub}-{i} says little.\n")
    p = pipeline(tmp_path, sink="")
    proc = run_etl_process(
        "run",
        str(p),
        "--set",
        "executor.plugin=processes",
        "--set",
        "executor.workers=1",
        "--set",
        "executor.chunk_size=7000",
        "--set",
        "executor.prefetch=2",
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    counters = manifests(tmp_path / "out")[-1]["summary"]["counters"]
    assert counters["processes:chunks deduplicated before writing"] == 2
    assert len(rows(tmp_path / "out")) == 14000


@pytest.mark.slow
def test_the_driver_runs_chunks_while_the_local_cluster_starts(tmp_path):
    """Issue 20: a local Dask cluster takes seconds to start, with the driver idle. It now
    runs the first chunks itself meanwhile; the dataset is the local one."""
    pytest.importorskip("distributed")
    make_corpus(tmp_path / "in")
    p = pipeline(tmp_path)
    dask = ["--set", "executor.plugin=dask", "--set", "executor.workers=2"]
    proc = run_etl_process("-v", "run", str(p), *dask)
    assert proc.returncode == 0, proc.stderr
    (manifest,) = manifests(tmp_path / "out")
    counters = manifest["summary"]["counters"]
    assert counters["dask:chunks the driver ran while the cluster started"] >= 1
    local = run_etl("run", str(p), "--set", f"sink.path={tmp_path / 'ref'}")
    assert local.returncode == 0, local.stderr
    assert rows(tmp_path / "out") == rows(tmp_path / "ref")
    assert per_input(tmp_path / "out") == per_input(tmp_path / "ref")
