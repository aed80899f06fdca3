"""What people expect of any command line: options anywhere, NO_COLOR, quiet closed pipes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import ROOT, run_etl, write_pipeline
from tests.helpers.terminal import run_in_terminal

SEED = ROOT / "examples" / "seed.toml"


def bad_pipeline(tmp_path):
    return write_pipeline(
        tmp_path / "p.toml",
        '[[sources]]\nplugin = "text"\npaths = ["nothing/*.txt"]\n'
        '[sink]\nplugin = "parquet"\npath = "o"\n',
    )


def test_global_options_before_or_after_the_command(tmp_path):
    pipeline = bad_pipeline(tmp_path)
    for args in (["-v", "run", str(pipeline)], ["run", str(pipeline), "-v"]):
        proc = run_etl(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "Traceback" in proc.stderr, args  # -v shows the traceback either way
    quiet = run_etl("-q", "run", str(SEED), "--set", f"sink.path={tmp_path / 'q'}")
    assert quiet.returncode == 0 and quiet.stdout == "", quiet.stdout
    listed = run_etl("--disable-plugin", "csv", "plugins", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "csv" not in {p["name"] for p in json.loads(listed.stdout)}
    both = run_etl("-v", "validate", str(pipeline), "-v")
    assert both.returncode == 2 and "Traceback" in both.stderr


def test_json_logs_carry_the_run_events_without_v(tmp_path):
    proc = run_etl("--log-format", "json", "run", str(SEED), "--set", f"sink.path={tmp_path / 'j'}")
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    names = [e["event"] for e in events]
    assert "run started" in names and "run committed" in names, proc.stderr
    # the default format off a terminal stays quiet at the default level
    plain = run_etl("run", str(SEED), "--set", f"sink.path={tmp_path / 'p'}")
    assert plain.returncode == 0 and plain.stderr == "", plain.stderr


@pytest.mark.slow
def test_no_color_turns_colours_off_on_a_terminal(tmp_path):
    args = ("-v", "run", str(SEED), "--set", f"sink.path={tmp_path / 'c'}", "--full")
    code, coloured = run_in_terminal(*args, env={"ETL_PROGRESS": "0"})
    assert code == 0, coloured
    assert "\x1b[" in coloured  # the log lines are coloured on a terminal...
    code, plain = run_in_terminal(*args, env={"ETL_PROGRESS": "0", "NO_COLOR": "1"})
    assert code == 0, plain
    assert "run committed" in plain and "\x1b[" not in plain  # ...and not with NO_COLOR


@pytest.mark.slow
def test_a_closed_pipe_ends_quietly():
    """`etl plugins | head -1`: the reader went away; no "internal error", no traceback."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "etl.cli", "plugins"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader is gone before the first line is written
    stderr = proc.stderr.read().decode()
    code = proc.wait(timeout=60)
    assert stderr == "", stderr
    assert code == 141
