"""The in-process CLI runner leaves the test process as it found it, and fails like a process."""

from __future__ import annotations

import gc
import os
import sys

import pytest
import structlog

from etl import log
from tests.helpers import ROOT, read_dataset, run_etl, run_etl_process, write_pipeline

PLUGIN = """
import pyarrow as pa
from etl import Transform, hookimpl


class PassThrough(Transform):
    '''Hands every batch on as it is.'''

    name = "passthru"

    def process(self, batch, ctx):
        return batch


@hookimpl
def etl_register_plugins(register):
    register(PassThrough)
"""


def test_a_run_in_process_leaves_no_state_behind(tmp_path, monkeypatch):
    (tmp_path / "a.txt").write_text("Some article text.\n")
    (tmp_path / "passthru.py").write_text(PLUGIN)
    write_pipeline(
        tmp_path / "p.toml",
        'plugins = ["passthru.py"]\n[[sources]]\nplugin = "text"\npaths = ["a.txt"]\n'
        'publisher = "${ETL_TEST_TOKEN}"\n[[transforms]]\nplugin = "passthru"\n'
        '[sink]\nplugin = "parquet"\npath = "out"\n',
    )
    monkeypatch.delenv("ETL_TEST_TOKEN", raising=False)
    modules = set(sys.modules)
    before = (
        os.getcwd(),
        dict(os.environ),
        gc.get_freeze_count(),
        log.settings(),
        structlog.is_configured(),
        set(log._SECRETS),
    )
    import etl.run

    during = {}
    real_run_plan = etl.run.run_plan

    def spy(plan):
        during.update(cwd=os.getcwd(), frozen=gc.get_freeze_count(), settings=log.settings())
        return real_run_plan(plan)

    monkeypatch.setattr(etl.run, "run_plan", spy)
    proc = run_etl("run", "p.toml", "-vv", cwd=tmp_path, env={"ETL_TEST_TOKEN": "tok-s3cr3t"})
    assert proc.returncode == 0, proc.stderr
    assert read_dataset(tmp_path / "out").num_rows == 1
    # etl run changed the process (froze the heap, set up logging, ran in tmp_path, imported
    # passthru.py); all of it is put back
    assert during["frozen"] > 0 and during["settings"] == ("json", 2), during
    assert during["cwd"] == str(tmp_path)
    assert "tok-s3cr3t" not in proc.stderr and '"event": "run committed"' in proc.stderr
    after = (
        os.getcwd(),
        dict(os.environ),
        gc.get_freeze_count(),
        log.settings(),
        structlog.is_configured(),
        set(log._SECRETS),
    )
    assert after == before
    assert "etl_local_passthru" not in sys.modules
    assert not [m for m in set(sys.modules) - modules if m.startswith("etl_local_")]


@pytest.mark.slow
def test_in_process_and_subprocess_runs_agree(tmp_path):
    seed = ROOT / "examples" / "seed.toml"
    inside = run_etl("run", str(seed), "--set", f"sink.path={tmp_path / 'a'}")
    outside = run_etl_process("run", str(seed), "--set", f"sink.path={tmp_path / 'b'}")
    assert inside.returncode == outside.returncode == 0, inside.stderr + outside.stderr
    assert inside.stdout.splitlines()[1:3] == outside.stdout.splitlines()[1:3]
    drop = ["run_id", "ingested_at"]
    assert read_dataset(tmp_path / "a").drop(drop).equals(read_dataset(tmp_path / "b").drop(drop))
    missing = run_etl("run", str(tmp_path / "nope.toml"))
    assert (missing.returncode, missing.stderr) == (
        2,
        run_etl_process("run", str(tmp_path / "nope.toml")).stderr,
    )


def test_what_needs_a_process_is_refused_in_process():
    with pytest.raises(ValueError, match="run_etl_process"):
        run_etl("run", "p.toml", env={"ETL_CRASH_AT": "write"})
