"""The writer lock's lease (issue 17, item C): a lock of a host that is gone is broken once
its lease runs out, the holder renews it while it lives, a run that lost its lock commits
nothing, and ``etl unlock`` removes a lock only when that is safe (or forced)."""

from __future__ import annotations

import json
import os
import re
import socket
import time
from pathlib import Path

import pytest

from etl.errors import RunError
from etl.store import Store
from tests.helpers import read_dataset, run_etl, write_pipeline


def _pipeline(tmp_path: Path, extra: str = "") -> tuple[Path, Path]:
    inputs = tmp_path / "in"
    inputs.mkdir(exist_ok=True)
    for n in range(3):
        (inputs / f"{n}.txt").write_text(f"Article number {n} about the harbour and its ships.\n")
    out = tmp_path / "out"
    pipe = write_pipeline(
        tmp_path / "p.toml",
        f"""
[[sources]]
plugin = "text"
paths = ["{inputs}"]
{extra}
[sink]
plugin = "parquet"
path = "{out}"
""",
    )
    return pipe, out


def _lock_of_another_host(out: Path, *, lease: float | None, age: float) -> dict:
    """A lock taken on a host that is not this one, last renewed ``age`` seconds ago."""
    (out / "_etl").mkdir(parents=True, exist_ok=True)
    holder = {"run_id": "elsewhere-run", "host": "build-7", "pid": 4242, "started_at": "x"}
    if lease is not None:
        holder["lease"] = lease
    path = out / "_etl" / "lock"
    path.write_text(json.dumps(holder))
    then = time.time() - age
    os.utime(path, (then, then))
    return holder


def test_another_hosts_lock_is_kept_while_its_lease_runs(tmp_path):
    pipe, out = _pipeline(tmp_path)
    _lock_of_another_host(out, lease=60, age=5)
    done = run_etl("run", str(pipe))
    assert done.returncode == 1
    assert "host build-7, pid 4242" in done.stderr
    assert re.search(r"lease renewed \d+ s ago, runs out in 5\d s", done.stderr)
    assert f"etl unlock {out}" in done.stderr
    assert not (out / "_etl" / "runs").exists()


def test_another_hosts_lock_is_broken_once_its_lease_ran_out(tmp_path):
    pipe, out = _pipeline(tmp_path)
    _lock_of_another_host(out, lease=60, age=61)
    done = run_etl("run", str(pipe))
    assert done.returncode == 0, done.stderr
    assert read_dataset(out).num_rows == 3
    assert not (out / "_etl" / "lock").exists()


def test_a_lock_without_a_lease_on_another_host_is_never_broken(tmp_path):
    pipe, out = _pipeline(tmp_path)
    _lock_of_another_host(out, lease=None, age=10_000)
    assert run_etl("run", str(pipe)).returncode == 1


def test_wait_takes_the_lock_when_the_lease_runs_out(tmp_path):
    pipe, out = _pipeline(tmp_path)
    _lock_of_another_host(out, lease=0.6, age=0)
    started = time.monotonic()
    done = run_etl("run", str(pipe), "--wait", "10")
    assert done.returncode == 0, done.stderr
    assert 0.5 < time.monotonic() - started < 8


def test_the_holder_renews_its_lease_and_stops_when_it_lets_go(tmp_path, monkeypatch):
    monkeypatch.setenv("ETL_LOCK_LEASE", "0.4")
    store = Store(tmp_path / "ds")
    store.acquire_lock("r1")
    path = store.layout.lock_path
    assert json.loads(path.read_text())["lease"] == 0.4
    os.utime(path, (time.time() - 100, time.time() - 100))  # as if not renewed for long
    time.sleep(0.35)  # a quarter of the lease, and some
    assert store.lock.age() < 0.4  # the heartbeat touched it
    store.lock.check()  # still ours
    store.release_lock()
    assert not path.exists()
    assert store.lock._beat is None


def test_a_run_that_lost_its_lock_commits_nothing(tmp_path):
    """A transform plays the other host: it takes the lock over mid-run, as a run elsewhere
    would after this one stalled past its lease."""
    (tmp_path / "steal.py").write_text(
        f"""
import json, pathlib, etl

@etl.per_batch
def steal(batch):
    lock = pathlib.Path({str(tmp_path / "out" / "_etl" / "lock")!r})
    lock.write_text(json.dumps({{"run_id": "thief", "host": "build-7", "pid": 1,
                                 "started_at": "y", "lease": 60}}))
    return batch
"""
    )
    extra = '[[transforms]]\nplugin = "python"\nfunction = "steal.py:steal"\n'
    pipe, out = _pipeline(tmp_path, extra)
    done = run_etl("run", str(pipe))
    assert done.returncode == 1
    assert "lost its writer lock" in done.stderr and "another run took it" in done.stderr
    assert "Traceback" not in done.stderr
    assert not list(out.glob("*.parquet")) and not (out / "_etl" / "runs").exists()
    assert json.loads((out / "_etl" / "lock").read_text())["run_id"] == "thief"  # left alone


def test_unlock_removes_only_what_is_safe_to_remove(tmp_path):
    _, out = _pipeline(tmp_path)
    typo = run_etl("unlock", str(out) + "s")  # a path with a typo
    assert typo.returncode == 2 and "does not exist" in typo.stderr, typo.stderr
    (out / "_etl").mkdir(parents=True)
    assert run_etl("unlock", str(out)).stdout.strip() == f"{out}: not locked"

    # a live lease: refused, then forced
    _lock_of_another_host(out, lease=60, age=1)
    done = run_etl("unlock", str(out))
    assert done.returncode == 1 and re.search(r"renewed \d+ s ago", done.stderr)
    assert "--force" in done.stderr and (out / "_etl" / "lock").exists()
    done = run_etl("unlock", "--force", str(out))
    assert done.returncode == 0 and "forced" in done.stdout
    assert not (out / "_etl" / "lock").exists()

    # a lease that ran out: removed without --force
    _lock_of_another_host(out, lease=60, age=120)
    done = run_etl("unlock", str(out))
    assert done.returncode == 0 and "which is gone" in done.stdout

    # a live process of this host (this one): never, even forced
    (out / "_etl" / "lock").write_text(
        json.dumps(
            {
                "run_id": "me",
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "started_at": "z",
                "lease": 60,
            }
        )
    )
    done = run_etl("unlock", "--force", str(out))
    assert done.returncode == 1 and "a live process of this host" in done.stderr
    assert (out / "_etl" / "lock").exists()


def test_check_fails_when_the_lock_is_gone(tmp_path):
    store = Store(tmp_path / "ds")
    store.acquire_lock("r1")
    store.layout.lock_path.unlink()
    with pytest.raises(RunError, match="it was removed"):
        store.lock.check()
    store.release_lock()
