"""The preflight's checks of what a worker can reach (etl.run.reach), in this process.

The dask executor runs them on every worker (tests/executors/test_executors_elastic.py runs
a worker that cannot see the inputs or the dataset); here, on real files, which input the
driver picks and what a worker that cannot reach it is told.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from etl.config import pipeline_from_dict
from etl.errors import ConfigError
from etl.run import build_plan
from etl.run.reach import check_reach, first_unit


def _plan(folder: Path, paths: list[str]):
    spec = {
        "sources": [{"plugin": "text", "paths": paths}],
        "sink": {"plugin": "parquet", "path": str(folder / "ds")},
    }
    return build_plan(pipeline_from_dict(spec, base_dir=folder))


def test_the_driver_picks_the_first_input_it_can_open(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "b.txt").write_text("Beta is an article.")
    (tmp_path / "outside.txt").write_text("Outside the folder.")
    # a link out of the folder is a reject of the listing's: skipped, not opened
    (folder / "a.txt").symlink_to(tmp_path / "outside.txt")
    plan = _plan(tmp_path, ["in"])
    assert [Path(u.key).name for u in plan.units] == ["a.txt", "b.txt"]
    assert plan.units[0].input.problem is not None
    assert first_unit(plan) == 1
    # the first input it tries cannot be opened here either: no worker is blamed for it
    os.mkfifo(tmp_path / "fifo.txt")
    assert first_unit(_plan(tmp_path, ["fifo.txt", "in/b.txt"])) is None


def test_a_worker_that_cannot_reach_is_named_with_what_it_cannot_reach(tmp_path):
    (tmp_path / "a.txt").write_text("Alpha is an article.")
    plan = _plan(tmp_path, ["a.txt"])
    unit = plan.units[0]
    where = "dask worker tcp://127.0.0.1:1234 (name w1)"
    # the driver made the run's staging folder (it opened the sink): a worker that sees it
    # writes its probe file there and leaves nothing behind
    staging = plan.sink.layout.staging(plan.run.run_id)
    staging.mkdir(parents=True)
    check_reach(plan, where, unit)
    assert [p.name for p in staging.rglob("*")] == ["workers"]

    (tmp_path / "a.txt").unlink()  # as the worker sees it: not there
    with pytest.raises(ConfigError) as caught:
        check_reach(plan, where, unit)
    assert caught.value.exit_code == 2
    assert caught.value.message == (
        f"{where} cannot open the input {tmp_path / 'a.txt'}, which the driver can: "
        "unreadable: FileNotFoundError: No such file or directory"
    )
    assert "every worker must reach the inputs" in caught.value.hint

    staging.joinpath("workers").rmdir()
    staging.rmdir()  # as a worker on another filesystem sees the dataset
    with pytest.raises(ConfigError) as caught:
        check_reach(plan, where, None)
    assert caught.value.message == f"{where} cannot see the run's staging folder {staging}"
    assert "mount at the same path" in caught.value.hint


def test_a_worker_asks_a_remote_input_once(tmp_path):
    """The probe does not back off and retry: the driver fetched the input a moment before,
    so a failure says the worker cannot reach it (at once, not after minutes of retries)."""
    import http.server
    import threading

    asked = []

    class Unavailable(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server name
            asked.append(self.path)
            self.send_response(503)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Unavailable)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/a.txt"
        plan = _plan(tmp_path, [url])
        staging = plan.sink.layout.staging(plan.run.run_id)
        staging.mkdir(parents=True)
        with pytest.raises(ConfigError) as caught:
            check_reach(plan, "dask worker w", plan.units[0])
    finally:
        server.shutdown()
        server.server_close()
    assert caught.value.message.startswith(f"dask worker w cannot open the input {url}")
    assert "503" in caught.value.message
    assert asked == ["/a.txt"]
