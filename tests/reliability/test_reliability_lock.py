"""One writer at a time: a second run fails fast naming the holder, or waits; dead holders'
locks are broken, safely even when several runs find the same stale lock."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.reliability import etl, make_corpus, write_pipeline

HOLD = """
import sys, time
from pathlib import Path
from etl.dataset import Dataset
ds = Dataset(Path(sys.argv[1]))
ds.acquire_lock("holder-run", wait=float(sys.argv[3]))
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
ds.release_lock()
"""


def hold(
    dataset: Path, seconds: float, wait: float = 0.0, env: dict | None = None
) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(dataset), str(seconds), str(wait)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    return proc


def locked(proc: subprocess.Popen) -> None:
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"


def setup(tmp_path: Path) -> tuple[Path, Path]:
    corpus = tmp_path / "corpus"
    make_corpus(corpus, 3)
    dataset = tmp_path / "ds"
    dataset.mkdir()
    return write_pipeline(tmp_path / "p.toml", str(corpus), dataset), dataset


def test_second_run_fails_fast_naming_the_holder(tmp_path):
    pipeline, dataset = setup(tmp_path)
    holder = hold(dataset, 60)
    try:
        locked(holder)
        proc = etl("run", str(pipeline))
        assert proc.returncode == 1
        assert "being written by run holder-run" in proc.stderr
        assert f"host {socket.gethostname()}" in proc.stderr
        assert f"pid {holder.pid}" in proc.stderr
        info = json.loads((dataset / "_etl" / "lock").read_text())
        assert f"started {info['started_at']}" in proc.stderr
        assert "--wait" in proc.stderr
        # nothing committed: the refused run did not even create the runs folder
        assert (dataset / "_etl" / "lock").is_file()
        assert not (dataset / "_etl" / "runs").exists()
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow  # a process of its own
def test_wait_takes_the_lock_when_the_holder_finishes(tmp_path):
    pipeline, dataset = setup(tmp_path)
    holder = hold(dataset, 1.5)
    locked(holder)
    proc = etl("run", str(pipeline), "--wait", "60", check=True)
    assert holder.wait() == 0  # the holder finished first, untouched
    assert "3 read" in proc.stdout


def test_lock_of_a_killed_process_is_broken(tmp_path):
    pipeline, dataset = setup(tmp_path)
    holder = hold(dataset, 60)
    locked(holder)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (dataset / "_etl" / "lock").exists()  # left behind by the dead
    proc = etl("run", str(pipeline), check=True)
    assert "3 read" in proc.stdout
    assert not (dataset / "_etl" / "lock").exists()


def test_lock_of_a_reused_pid_is_broken(tmp_path):
    """The holder died and its pid now belongs to another live process (here: this one)."""
    pipeline, dataset = setup(tmp_path)
    (dataset / "_etl").mkdir()
    (dataset / "_etl" / "lock").write_text(
        json.dumps(
            {
                "run_id": "old",
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "pid_start": 1,  # not this process's start time
                "started_at": "2020-01-01T00:00:00+00:00",
            }
        )
    )
    etl("run", str(pipeline), check=True)


@pytest.mark.slow
def test_many_runs_racing_for_a_stale_lock_one_wins(tmp_path):
    _, dataset = setup(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (dataset / "_etl").mkdir()
    (dataset / "_etl" / "lock").write_text(
        json.dumps(
            {"run_id": "dead", "host": socket.gethostname(), "pid": dead.pid, "started_at": "x"}
        )
    )
    # each racer pauses 1 s between finding the dead holder and breaking its lock, so all
    # four are inside that window together
    racers = [hold(dataset, 3, env={"ETL_SLOW_AT": "break-lock:1"}) for _ in range(4)]
    time.sleep(2.0)
    lines = []
    for proc in racers:
        proc.wait()
        assert proc.stdout is not None
        lines.append(proc.stdout.read().strip())
    assert lines.count("locked") == 1, lines  # the others failed: the winner held it
    assert not (dataset / "_etl" / "lock").exists()
