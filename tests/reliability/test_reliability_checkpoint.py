"""Checkpointed runs resume; SIGTERM stops a run as Ctrl-C does (docs/reliability.md,
"Checkpoints and interrupts").

A corpus of 30 files of 20 one-line articles (some repeated in later files, so duplicates
cross checkpoints) is run once without checkpoints: the reference. Checkpointed runs are
stopped with SIGTERM or SIGKILL once some checkpoints are committed (the ``slow_lines``
source waits ``delay`` seconds per file, so the run is still going), then run again: the
dataset must equal the reference row for row by id, and the re-run must read only the
inputs no checkpoint committed.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from etl.config import Checkpoint
from etl.dataset import CRASH_EXIT, FAULT_POINTS
from etl.run.checkpoint import FIRST_TIMED_SLICE, Slices
from tests.helpers.executors import local_dask_cluster
from tests.helpers.reliability import (
    check_merge_replaces_an_edited_article,
    etl,
    etl_process,
    manifests,
    merged_dataset,
    one_row_per_uri,
    read_dataset,
    rows_by_id,
)

PLUGIN = Path(__file__).parent / "plugins" / "slow_lines.py"
FILES, LINES = 30, 20
#: seconds per file of the runs that get interrupted (30 files: 3 s of reading)
DELAY = 0.1


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The corpus and the reference dataset (one clean run, no checkpoints)."""
    root = tmp_path_factory.mktemp("checkpoint")
    rng = random.Random(15)
    words = ["storm", "vote", "river", "court", "market", "rail", "farm", "bridge", "water"]
    corpus = root / "corpus"
    corpus.mkdir()
    earlier: list[str] = []
    files = []
    for f in range(FILES):
        lines = [
            f"article {f}-{i}: " + " ".join(rng.choice(words) for _ in range(rng.randint(6, 20)))
            for i in range(LINES)
        ]
        if f >= 5:  # two repeats of articles from earlier files: duplicates by id
            lines[3], lines[11] = rng.choice(earlier), rng.choice(earlier)
        earlier.extend(lines)
        path = corpus / f"part{f:02d}.txt"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        files.append(path)
    reference = root / "reference"
    etl("run", str(pipeline(root / "ref.toml", corpus, reference)), check=True)
    rows = rows_by_id(reference)
    assert len(rows) > 500  # 600 articles less the repeats
    return {"root": root, "corpus": corpus, "files": files, "reference": rows}


def pipeline(
    path: Path,
    corpus: Path,
    dataset: Path,
    *,
    checkpoint: int | str | None = None,
    delay: float = 0.0,
    executor: str = "",
    pids: Path | None = None,
    mode: str = "append",
) -> Path:
    """A pipeline over the corpus; ``executor`` is the body of an [executor] table."""
    path.write_text(
        f'plugins = ["{PLUGIN}"]\n'
        "[run]\n"
        + (f"checkpoint = {json.dumps(checkpoint)}\n" if checkpoint is not None else "")
        + f'[[sources]]\nplugin = "slow_lines"\npaths = ["{corpus}"]\ndelay = {delay}\n'
        + (f'pids = "{pids}"\n' if pids is not None else "")
        + f'[sink]\nplugin = "parquet"\npath = "{dataset}"\nmode = "{mode}"\n'
        # several data files per checkpoint: a crash can land between their renames
        "max_rows_per_file = 40\n" + (f"[executor]\n{executor}\n" if executor else ""),
        encoding="utf-8",
    )
    return path


def start(path: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "etl.cli", "run", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ETL_PROGRESS": "0"},
    )


def wait_for_manifests(proc: subprocess.Popen, dataset: Path, n: int, timeout: float = 60) -> None:
    """Until ``n`` checkpoints are committed (their manifests written), while the run goes on."""
    runs = dataset / "_etl" / "runs"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if runs.is_dir() and len(list(runs.glob("*.json"))) >= n:
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended before {n} checkpoints: {proc.communicate()[1]}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"no {n} checkpoints in {timeout} s")


def leftovers(dataset: Path) -> list[Path]:
    """The lock and any staging a run left behind."""
    meta = dataset / "_etl"
    found = [meta / "lock"] if (meta / "lock").exists() else []
    staging = meta / "staging"
    return found + (list(staging.iterdir()) if staging.is_dir() else [])


def rerun(path: Path) -> dict:
    """Run again in this process, without the delay; the run summary."""
    proc = etl("run", str(path), "--set", "sources.1.delay=0", "--json", check=True)
    return json.loads(proc.stdout)


def committed_inputs(dataset: Path, run_id: str) -> list[str]:
    """The inputs the checkpoints of run ``run_id`` committed, by file name."""
    names = []
    for manifest in manifests(dataset):
        if manifest["summary"].get("checkpoint", {}).get("run") == run_id:
            names += [Path(row["input"]).name for row in manifest["summary"]["per_input"]]
    return sorted(names)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_a_stopped_checkpointed_run_carries_on_where_it_stopped(world, tmp_path, how):
    dataset = tmp_path / "out"
    path = pipeline(tmp_path / "p.toml", world["corpus"], dataset, checkpoint=5, delay=DELAY)
    proc = start(path)
    wait_for_manifests(proc, dataset, 2)
    proc.send_signal(signal.Signals[how])
    _, err = proc.communicate(timeout=60)
    done = manifests(dataset)
    run_id = done[0]["run_id"]
    assert 2 <= len(done) < math.ceil(FILES / 5), "the run was not stopped part way"
    if how == "SIGTERM":
        assert proc.returncode == 143, err
        assert (
            f"etl: terminated by SIGTERM; {len(done)} checkpoints committed "
            f"(the last: run {done[-1]['run_id']}), the rest will be read next run"
        ) in err
        assert "Traceback" not in err
        assert leftovers(dataset) == []  # lock released, staging removed
    else:
        assert proc.returncode == -signal.SIGKILL
        assert (dataset / "_etl" / "lock").exists()  # the next run breaks it
    assert set(rows_by_id(dataset)) <= set(world["reference"])  # whole files, no id twice

    summary = rerun(path)
    # after a SIGKILL the re-run may first finish a checkpoint that was past its commit point
    kept = committed_inputs(dataset, run_id)
    assert len(kept) >= 5 * len(done) and len(kept) % 5 == 0
    assert summary["inputs_skipped"] == len(kept)
    read = committed_inputs(dataset, summary["run_id"])
    assert read == sorted(p.name for p in world["files"][len(kept) :])
    assert rows_by_id(dataset) == world["reference"]
    assert leftovers(dataset) == []


def test_a_stop_while_a_finished_commit_removes_its_staging_leaves_none(
    world, tmp_path, monkeypatch
):
    """SIGTERM can land while a checkpoint whose manifest is written removes its staging
    (COMMIT.json gone, other files not yet): that slice is committed, and what remains of
    its staging is removed too (a run under load left ``_etl/staging/<run>-c0002``)."""
    import shutil

    from etl.errors import Interrupted

    dataset = tmp_path / "out"
    path = pipeline(tmp_path / "p.toml", world["corpus"], dataset, checkpoint=5)
    real_rmtree = shutil.rmtree

    def stopped_half_way(folder, *args, **kwargs):
        folder = Path(folder)
        if folder.name.endswith("-c0002") and (folder / "COMMIT.json").exists():
            (folder / "COMMIT.json").unlink()
            raise Interrupted("terminated by SIGTERM", "SIGTERM")
        return real_rmtree(folder, *args, **kwargs)

    # the store removes a local folder with shutil.rmtree (etl.store.fs.LocalFS)
    monkeypatch.setattr(shutil, "rmtree", stopped_half_way)
    proc = etl("run", str(path))
    monkeypatch.undo()
    assert proc.returncode == 143, proc.stderr
    assert len(manifests(dataset)) == 2
    assert "2 checkpoints committed" in proc.stderr
    assert leftovers(dataset) == []


@pytest.mark.slow
@pytest.mark.parametrize("point", ["before-commit-point", "after-commit-point"])
def test_sigterm_during_a_checkpoints_commit_says_what_stays(world, tmp_path, point):
    """SIGTERM while the second checkpoint's commit sleeps at a point (ETL_SLOW_AT): before
    its commit point it is rolled back, after it it is finished; the message says which."""
    dataset = tmp_path / "out"
    path = pipeline(tmp_path / "p.toml", world["corpus"], dataset, checkpoint=5, delay=DELAY)
    proc = subprocess.Popen(
        [sys.executable, "-m", "etl.cli", "run", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ETL_PROGRESS": "0", "ETL_SLOW_AT": f"{point}@2:30"},
    )
    staging = dataset / "_etl" / "staging"
    # the store stages the inputs table before the commit point, COMMIT.json is the point
    marker = "run-inputs.staged" if point == "before-commit-point" else "COMMIT.json"
    deadline = time.monotonic() + 60
    while not list(staging.glob(f"*-c0002/{marker}")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.02)
    time.sleep(0.3)  # inside the slow point
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    done = manifests(dataset)
    assert len(done) == (1 if point == "before-commit-point" else 2)
    n = len(done)
    assert (
        f"etl: terminated by SIGTERM; {n} checkpoint{'s' if n > 1 else ''} committed "
        f"(the last: run {done[-1]['run_id']}), the rest will be read next run"
    ) in err
    assert leftovers(dataset) == []
    assert rerun(path)["inputs_skipped"] == 5 * n
    assert rows_by_id(dataset) == world["reference"]


@pytest.mark.slow
def test_sigterm_stops_a_run_without_checkpoints_cleanly(world, tmp_path):
    dataset = tmp_path / "out"
    path = pipeline(tmp_path / "p.toml", world["corpus"], dataset, delay=DELAY)
    proc = start(path)
    staging = dataset / "_etl" / "staging"
    deadline = time.monotonic() + 60
    while not (staging.is_dir() and any(staging.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.02)  # the sink has opened: the run streams for about 3 s
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "etl: terminated by SIGTERM; nothing was committed" in err
    assert "Traceback" not in err
    assert leftovers(dataset) == []
    assert manifests(dataset) == [] and read_dataset(dataset).num_rows == 0

    summary = rerun(path)
    assert summary["inputs_skipped"] == 0 and summary["inputs"] == FILES
    assert rows_by_id(dataset) == world["reference"]


@pytest.mark.slow  # worker processes take seconds to start on a busy machine
def test_sigterm_stops_the_workers_of_a_processes_run(world, tmp_path):
    dataset, pids = tmp_path / "out", tmp_path / "pids"
    pids.mkdir()
    path = pipeline(
        tmp_path / "p.toml",
        world["corpus"],
        dataset,
        checkpoint=10,
        delay=DELAY,
        executor='plugin = "processes"\nworkers = 2\nchunk_size = 2',
        pids=pids,
    )
    proc = start(path)
    wait_for_manifests(proc, dataset, 1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    done = manifests(dataset)
    assert f"etl: terminated by SIGTERM; {len(done)} checkpoint" in err
    assert leftovers(dataset) == []
    workers = [int(p.name) for p in pids.iterdir()]
    assert len(workers) >= 2 and proc.pid not in workers
    alive = [pid for pid in workers if _alive(pid)]
    assert alive == [], "worker processes outlived the run"

    summary = rerun(path)
    assert summary["inputs_skipped"] == 10 * len(done) < FILES
    assert rows_by_id(dataset) == world["reference"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["processes", "dask"])
def test_checkpoints_under_every_executor_give_the_same_dataset(world, tmp_path, executor):
    dataset = tmp_path / "out"
    with local_dask_cluster() if executor == "dask" else contextlib.nullcontext() as address:
        body = f'plugin = "{executor}"\n' + (
            f'address = "{address}"' if address else "workers = 2\nchunk_size = 3"
        )
        path = pipeline(tmp_path / "p.toml", world["corpus"], dataset, checkpoint=7, executor=body)
        proc = etl_process("run", str(path), "--json", check=True)
    summary = json.loads(proc.stdout)
    assert summary["checkpoints"] == math.ceil(FILES / 7) == len(manifests(dataset))
    assert rows_by_id(dataset) == world["reference"]
    # each checkpoint's rows carry its own run id
    ids = set(read_dataset(dataset).column("run_id").to_pylist())
    assert ids == set(summary["run_ids"])


def test_a_checkpointed_run_sums_its_checkpoints(world, tmp_path):
    dataset = tmp_path / "out"
    path = pipeline(tmp_path / "p.toml", world["corpus"], dataset, checkpoint=7)
    proc = etl("run", str(path), check=True)
    assert "committed in 5 checkpoints" in proc.stdout
    summary = rerun(pipeline(tmp_path / "again.toml", world["corpus"], dataset, checkpoint=7))
    assert summary["inputs_skipped"] == FILES and summary["checkpoints"] == 1
    done = manifests(dataset)[:-1]
    assert [m["summary"]["inputs"] for m in done] == [7, 7, 7, 7, 2]
    assert [m["summary"]["checkpoint"]["last"] for m in done] == [False] * 4 + [True]
    assert sum(m["summary"]["written"] for m in done) == len(world["reference"])
    # a duplicate of an article in an earlier checkpoint is counted, not written twice
    assert sum(m["summary"]["duplicates"] for m in done) == FILES * LINES - len(world["reference"])
    assert rows_by_id(dataset) == world["reference"]


def test_overwrite_replaces_at_the_first_checkpoint_and_appends_after(world, tmp_path):
    dataset = tmp_path / "out"
    old = tmp_path / "old"
    old.mkdir()
    (old / "x.txt").write_text("an article that the overwrite removes\n", encoding="utf-8")
    etl("run", str(pipeline(tmp_path / "old.toml", old, dataset)), check=True)
    path = pipeline(tmp_path / "p.toml", world["corpus"], dataset, checkpoint=10, mode="overwrite")
    etl("run", str(path), check=True)
    assert rows_by_id(dataset) == world["reference"]
    modes = [m["sink_mode"] for m in manifests(dataset)[1:]]
    assert modes == ["overwrite", "append", "append"]
    # the memory holds the run's inputs only; an append run skips them all
    again = pipeline(tmp_path / "again.toml", world["corpus"], dataset)
    assert rerun(again)["inputs_skipped"] == FILES


def test_a_duration_checkpoint_commits_as_the_time_passes(world, tmp_path):
    dataset = tmp_path / "out"
    path = pipeline(tmp_path / "p.toml", world["corpus"], dataset, checkpoint="0.3s", delay=0.02)
    summary = json.loads(etl("run", str(path), "--json", check=True).stdout)
    # 16 files (0.3 s or more), then slices sized to the rate: 0.3 s of files each
    assert summary["checkpoints"] >= 2
    assert manifests(dataset)[0]["summary"]["inputs"] == FIRST_TIMED_SLICE
    assert rows_by_id(dataset) == world["reference"]


def test_run_pipeline_gives_the_rejects_of_every_checkpoint(tmp_path):
    from etl.testing import run_pipeline

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(6):  # every third file is empty: a reject in each checkpoint
        text = "" if i % 3 == 2 else f"Headline {i}\n\nThe text of article {i}.\n"
        (folder / f"a{i}.txt").write_text(text, encoding="utf-8")
    result = run_pipeline(
        {
            "run": {"checkpoint": 3},
            "sources": [{"plugin": "text", "paths": [str(folder)]}],
            "sink": {"plugin": "parquet", "path": str(tmp_path / "out")},
        },
        tmp_path=tmp_path,
    )
    assert result.summary["checkpoints"] == 2 and result.counts["written"] == 4
    assert result.reject_reasons == ["empty file", "empty file"]
    assert set(result.rejects.column("run_id").to_pylist()) == set(result.summary["run_ids"])


def test_timed_slices_follow_the_rate():
    slices = Slices(1000, Checkpoint(seconds=10))
    sizes = []
    for start, stop in slices:
        sizes.append(stop - start)
        slices.took({16: 1.6, 100: 5.0}.get(stop - start, 2.0))
    # 16 to measure; 10 a second: 100; 20 a second: 200 (at most 8 times the last); ...
    assert sizes[:3] == [16, 100, 200] and sum(sizes) == 1000
    assert list(Slices(10, Checkpoint(inputs=4))) == [(0, 4), (4, 8), (8, 10)]
    assert list(Slices(10, None)) == [(0, 10)] and list(Slices(0, None)) == [(0, 0)]


@pytest.mark.parametrize("value", ["5", "0s", -3, 1.5, "ten minutes"])
def test_a_bad_checkpoint_is_refused_before_anything_runs(world, tmp_path, value):
    dataset = tmp_path / "out"
    path = pipeline(tmp_path / "p.toml", world["corpus"], dataset, checkpoint=value)
    proc = etl("run", str(path))
    assert proc.returncode == 2
    assert "checkpoint is" in proc.stderr and '"5m"' in proc.stderr
    assert not dataset.exists()


# crash safety: a crash at every point of the second checkpoint's commit (slow: a process each)

# every point in one process; under workers one point each (the commit is the same code once
# the files are staged): mid-apply, where half the adopted files are in place
POINTS = [("local", p) for p in FAULT_POINTS] + [("processes", "mid-apply"), ("dask", "mid-apply")]


@pytest.mark.slow
@pytest.mark.parametrize(("executor", "point"), POINTS)
def test_a_crash_in_a_checkpoint_loses_only_that_checkpoint(world, tmp_path, executor, point):
    dataset = tmp_path / "out"
    with local_dask_cluster() if executor == "dask" else contextlib.nullcontext() as address:
        body = {
            "local": "",
            "processes": 'plugin = "processes"\nworkers = 2',
            "dask": f'plugin = "dask"\naddress = "{address}"',
        }[executor]
        path = pipeline(tmp_path / "p.toml", world["corpus"], dataset, checkpoint=10, executor=body)
        # the lock is taken and released once per run: its point comes once
        # (the first 5 files written are the first checkpoint's)
        strike = {"before-unlock": point, "write": "write@6"}.get(point, f"{point}@2")
        proc = etl_process("run", str(path), env={"ETL_CRASH_AT": strike})
        assert proc.returncode == CRASH_EXIT, f"never reached {strike}: {proc.stderr}"
        assert set(rows_by_id(dataset)) <= set(world["reference"])
        summary = rerun(path) if executor == "local" else _rerun_process(path)
    assert rows_by_id(dataset) == world["reference"]
    passed = FAULT_POINTS.index(point) >= FAULT_POINTS.index("after-commit-point")
    if point == "before-unlock":
        assert summary["inputs_skipped"] == FILES
    else:  # the second checkpoint counts as done once past its commit point
        assert summary["inputs_skipped"] == (20 if passed else 10)
    assert leftovers(dataset) == []


def _rerun_process(path: Path) -> dict:
    proc = etl_process("run", str(path), "--set", "sources.1.delay=0", "--json", check=True)
    return json.loads(proc.stdout)


# merge mode and --reprocess


@pytest.mark.slow  # three runs in processes
def test_merge_mode_with_checkpoints_replaces_the_old_versions(tmp_path):
    check_merge_replaces_an_edited_article(tmp_path, "--set", "run.checkpoint=4")


@pytest.mark.slow
def test_a_merge_killed_in_its_second_checkpoint_keeps_one_row_per_uri(tmp_path):
    path, dataset, before, edited = merged_dataset(tmp_path, 6)
    proc = etl_process(
        "run", str(path), "--set", "run.checkpoint=2", env={"ETL_CRASH_AT": "mid-apply@2"}
    )
    assert proc.returncode == CRASH_EXIT, proc.stderr
    assert set(one_row_per_uri(dataset)) == set(before)  # one row per uri, none lost
    summary = json.loads(etl("run", str(path), "--json", check=True).stdout)
    assert summary["inputs_skipped"] == 12 - 2  # the second checkpoint was past its point
    rows = one_row_per_uri(dataset)
    assert all(rows[p].rstrip().endswith("corrected.") for p in edited)


def test_reprocess_does_not_take_checkpoints(world, tmp_path):
    dataset = tmp_path / "out"
    path = pipeline(tmp_path / "p.toml", world["corpus"], dataset, checkpoint=5)
    proc = etl("run", str(path), "--reprocess")
    assert proc.returncode == 2 and "does not take [run] checkpoint" in proc.stderr
    assert not (dataset / "_etl" / "runs").exists()


@pytest.mark.parametrize("limit", [0.3, 0.2])
def test_the_reject_limit_counts_the_run_so_far_at_each_checkpoint(tmp_path, limit):
    """Seven articles, then two empty files (rejects), three inputs a checkpoint: the last
    checkpoint alone rejects 2 of 3 records, the run so far 2 of 9 (22%)."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(9):
        text = f"Headline {i}\n\nThe text of article {i}.\n" if i < 7 else ""
        (folder / f"a{i}.txt").write_text(text, encoding="utf-8")
    path = tmp_path / "p.toml"
    path.write_text(
        f"[run]\ncheckpoint = 3\nmax_reject_ratio = {limit}\n"
        f'[[sources]]\nplugin = "text"\npaths = ["{folder}"]\n'
        f'[sink]\nplugin = "parquet"\npath = "{tmp_path / "out"}"\n',
        encoding="utf-8",
    )
    proc = etl("run", str(path))
    done = manifests(tmp_path / "out")
    if limit == 0.3:
        assert proc.returncode == 0 and len(done) == 3, proc.stderr
        return
    assert proc.returncode == 1 and len(done) == 2
    assert "rejected 2 of 9 records (22.2%)" in proc.stderr
    last = done[-1]["run_id"]
    assert f"2 checkpoints of this run committed before it (the last: run {last})" in proc.stderr
    assert read_dataset(tmp_path / "out").num_rows == 6
