"""``etl.testing.run_cli``: the real command in a process of its own, forked from a server
that imported etl once (or a new interpreter), with the same results either way."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from etl.testing import forked, read_parquet_dataset, run_cli
from tests.helpers.executors import PLUGINS, make_corpus

pytestmark = pytest.mark.skipif(not forked.can_fork(), reason="no forkserver on this platform")


def _pipeline(folder, extra: str = "") -> None:
    make_corpus(folder / "in", n=6)
    (folder / "p.toml").write_text(
        f'{extra}[[sources]]\nplugin = "text"\npaths = ["in"]\n'
        '[sink]\nplugin = "parquet"\npath = "${ETL_TEST_OUT}"\n',
        encoding="utf-8",
    )


def test_a_forked_command_and_a_new_interpreter_give_the_same_run(tmp_path):
    _pipeline(tmp_path)
    results = {}
    for fresh in (False, True):
        out = f"out-{fresh}"
        # the test's working folder and environment are the command's
        proc = run_cli("run", "p.toml", cwd=tmp_path, env={"ETL_TEST_OUT": out}, fresh=fresh)
        assert proc.returncode == 0, proc.stderr
        assert "committed" in proc.stdout and "10 written" in proc.stdout, proc.stdout
        results[fresh] = read_parquet_dataset(tmp_path / out).sort_by("id")
    assert results[False].column("id") == results[True].column("id")
    assert results[False].num_rows == 10


def test_exit_codes_and_messages_are_the_command_s(tmp_path):
    _pipeline(tmp_path)
    missing = run_cli("run", "nope.toml", cwd=tmp_path)
    assert missing.returncode == 2
    assert "no pipeline file" in missing.stderr and "Traceback" not in missing.stderr
    # a crash point ends the process with os._exit: nothing is committed
    env = {"ETL_TEST_OUT": "out", "ETL_CRASH_AT": "write"}
    crashed = run_cli("run", "p.toml", cwd=tmp_path, env=env)
    assert crashed.returncode == 77, crashed.stderr
    assert read_parquet_dataset(tmp_path / "out").num_rows == 0
    again = run_cli("run", "p.toml", cwd=tmp_path, env={"ETL_TEST_OUT": "out"})
    assert again.returncode == 0, again.stderr
    assert read_parquet_dataset(tmp_path / "out").num_rows == 10


def test_a_command_past_its_timeout_is_killed(tmp_path):
    shutil.copy(PLUGINS / "probe.py", tmp_path / "probe.py")
    pids = tmp_path / "pids"
    pids.mkdir()
    probe = f'[[transforms]]\nplugin = "probe"\nseconds = 60\npid_dir = "{pids}"\n'
    _pipeline(tmp_path, f'plugins = ["probe.py"]\n{probe}')
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        run_cli("run", "p.toml", cwd=tmp_path, env={"ETL_TEST_OUT": "out"}, timeout=3)
    assert time.monotonic() - started < 30
    (pid,) = [int(p.name) for p in pids.iterdir()]
    with pytest.raises(ProcessLookupError):  # gone, and reaped by its parent
        os.kill(pid, 0)


def test_a_variable_read_at_start_up_gets_a_new_interpreter(tmp_path):
    """A fork cannot honour PYTHONPATH: its sitecustomize runs (only an interpreter's
    start-up runs it), and a module found only through it is found."""
    (tmp_path / "lib").mkdir()
    started = tmp_path / "started"
    (tmp_path / "lib" / "sitecustomize.py").write_text(f"open({str(started)!r}, 'w').close()\n")
    (tmp_path / "lib" / "etl_test_startup_probe.py").write_text("VALUE = 1\n")
    (tmp_path / "tag.py").write_text(
        "import etl_test_startup_probe\n\n"
        "def tag(article):\n    return {**article, 'title': 'probe'}\n"
    )
    _pipeline(tmp_path, "")
    text = (tmp_path / "p.toml").read_text()
    (tmp_path / "p.toml").write_text(
        text + '[[transforms]]\nplugin = "python"\nfunction = "tag.py:tag"\nmode = "article"\n'
    )
    env = {"ETL_TEST_OUT": "out", "PYTHONPATH": str(tmp_path / "lib")}
    proc = run_cli("run", "p.toml", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert started.exists(), "the command did not start an interpreter"
    assert set(read_parquet_dataset(tmp_path / "out").column("title").to_pylist()) == {"probe"}


def test_the_forked_command_does_not_see_the_test_process_s_import_path(tmp_path, monkeypatch):
    """A module importable only through an entry the test process added to sys.path is not
    importable in the command, as in a new interpreter."""
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "etl_test_only_here.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    (tmp_path / "tag.py").write_text(
        "import etl_test_only_here\n\ndef tag(article):\n    return article\n"
    )
    _pipeline(tmp_path, "")
    text = (tmp_path / "p.toml").read_text()
    (tmp_path / "p.toml").write_text(
        text + '[[transforms]]\nplugin = "python"\nfunction = "tag.py:tag"\nmode = "article"\n'
    )
    for fresh in (False, True):
        proc = run_cli("run", "p.toml", cwd=tmp_path, env={"ETL_TEST_OUT": "out"}, fresh=fresh)
        assert proc.returncode == 2, (fresh, proc.stdout, proc.stderr)
        assert "etl_test_only_here" in proc.stderr, (fresh, proc.stderr)
