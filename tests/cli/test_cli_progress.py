"""Live progress: a bar in a real terminal, log lines elsewhere; counts of finished work only."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tests.helpers import run_etl, run_etl_process, write_pipeline
from tests.helpers.terminal import run_in_terminal

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
FRAME = re.compile(
    r"(\d+)/(\d+) inputs \(\d+%\), (\d+) written, (\d+) rejected, ([\d,.]+) articles/s"
)

SLOW = "import time\ndef process(batch):\n    time.sleep({delay})\n    return batch\n"


def slow_pipeline(tmp_path, n=12, delay=0.1, extra=""):
    """``n`` inputs of one article each, a transform that takes ``delay`` s per article."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(n):
        (folder / f"{i:02d}.txt").write_text(f"Article {i} has a few words in it.\n")
    (tmp_path / "slow.py").write_text(SLOW.format(delay=delay))
    return write_pipeline(
        tmp_path / "p.toml",
        "[run]\nbatch_size = 1\n"
        '[[sources]]\nplugin = "text"\npaths = ["in"]\n'
        '[[transforms]]\nplugin = "python"\nfunction = "slow.py:process"\nmode = "batch"\n'
        f'[sink]\nplugin = "parquet"\npath = "out"\n{extra}',
    )


@pytest.mark.slow
def test_a_live_bar_in_a_real_terminal_with_rate_eta_and_finished_counts(tmp_path):
    pipeline = slow_pipeline(tmp_path)
    code, screen = run_in_terminal("run", str(pipeline), columns=200)
    assert code == 0, screen
    frames = [FRAME.search(f) for f in ANSI.sub("", screen).split("\r")]
    counts = [tuple(int(x.replace(",", "")) for x in m.groups()[:4]) for m in frames if m]
    assert len(counts) >= 5, screen  # it was redrawn as the run went
    for done, total, written, _ in counts:
        assert total == 12
        # one article per input: an input counts as done only once its article is written
        assert done <= written, counts
    assert [c[0] for c in counts] == sorted(c[0] for c in counts)  # never goes back
    assert counts[-1][:3] == (12, 12, 12)
    assert any(0 < c[0] < 12 for c in counts)
    text = ANSI.sub("", screen)
    assert "articles/s" in text and "MB/s" in text and "elapsed 0:0" in text
    assert re.search(r"ETA 0:0\d", text), text
    assert "streaming" in text and "committing" in text
    assert "run " in text and " committed" in text  # the summary after the bar


@pytest.mark.parametrize("batch_size", [1, 3])
def test_every_report_counts_finished_inputs_only(tmp_path, monkeypatch, batch_size):
    """Each report to the display, not only those drawn: an input is done once its article
    was written (the text source reads inputs in chunks, joined into batches)."""
    from etl.progress import Progress

    reports: list[tuple[int, int]] = []
    original = Progress.finished_prefix

    def record(self, done, written):
        reports.append((done, written))
        original(self, done, written)

    monkeypatch.setattr(Progress, "finished_prefix", record)
    pipeline = slow_pipeline(tmp_path, n=10, delay=0)
    text = pipeline.read_text().replace("batch_size = 1", f"batch_size = {batch_size}")
    pipeline.write_text(text)
    assert run_etl("run", str(pipeline), "--progress", "log").returncode == 0
    assert len(reports) >= 10 // batch_size
    assert all(done <= written for done, written in reports), reports
    assert max(done for done, _ in reports) >= 10 - batch_size  # it does move


def test_off_a_terminal_a_progress_line_every_few_seconds(tmp_path):
    pipeline = slow_pipeline(tmp_path, n=8, delay=0.05)
    env = {"ETL_PROGRESS_INTERVAL": "0.01"}  # a line at (nearly) every update
    proc = run_etl("run", str(pipeline), "--progress", "log", env=env)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in proc.stderr.splitlines() if x.startswith("{")]
    progress = [x for x in lines if x["event"] == "progress"]
    assert len(progress) >= 3, proc.stderr
    for p in progress:
        assert p["inputs_done"] <= p["written"] and p["inputs"] == 8
        assert {"articles_per_s", "mb_per_s", "elapsed_s", "eta_s", "rejected", "stage"} <= set(p)
    assert progress[-1]["stage"] == "committing" and progress[-1]["inputs_done"] == 8
    console = run_etl(
        "run", str(pipeline), "--full", "--progress", "log", "--log-format", "console", env=env
    )
    assert re.search(
        r"^progress: \d+/8 inputs .* articles/s, .* MB/s, elapsed .*, ETA ", console.stderr, re.M
    ), console.stderr


def test_progress_off_when_asked_or_quiet(tmp_path):
    pipeline = slow_pipeline(tmp_path, n=3, delay=0.05)
    env = {"ETL_PROGRESS": "log", "ETL_PROGRESS_INTERVAL": "0.01"}
    assert "progress" in run_etl("run", str(pipeline), env=env).stderr
    none = run_etl("run", str(pipeline), "--full", "--progress", "none", env=env)
    assert none.returncode == 0 and "progress" not in none.stderr
    quiet = run_etl("run", str(pipeline), "--full", "-q", env=env)
    assert quiet.returncode == 0 and quiet.stderr == ""
    # a run shorter than the interval prints no progress at all
    short = run_etl("run", str(pipeline), "--full", "--progress", "log")
    assert short.returncode == 0 and "progress" not in short.stderr


@pytest.mark.slow
def test_progress_counts_finished_chunks_under_processes(tmp_path):
    pipeline = slow_pipeline(
        tmp_path, n=12, delay=0.05, extra='[executor]\nplugin = "processes"\nchunk_size = 2\n'
    )
    proc = run_etl_process(
        "run", str(pipeline), "--progress", "log", env={"ETL_PROGRESS_INTERVAL": "0.05"}
    )
    assert proc.returncode == 0, proc.stderr
    progress = [json.loads(x) for x in proc.stderr.splitlines() if '"progress"' in x]
    done = [p["inputs_done"] for p in progress]
    assert done == sorted(done) and done[-1] == 12 and len(progress) >= 2
    assert all(d % 2 == 0 for d in done)  # whole chunks of 2: finished work only


def test_parts_of_a_split_input_count_as_one_input():
    from etl.progress import Progress

    # input 0 in three parts, input 1 whole, input 2 in two parts
    owner = np.array([0, 0, 0, 1, 2, 2])
    ranges = Progress(6, mode="none", owner=owner)
    assert ranges.total == 3
    ranges.finished_range(0, 2, 10)
    assert ranges.done == 0  # a part of input 0 is still running
    ranges.finished_range(4, 6, 20)
    assert ranges.done == 1  # input 2
    ranges.finished_range(2, 4, 30)
    assert ranges.done == 3
    prefix = Progress(6, mode="none", owner=owner)
    prefix.finished_prefix(2, 5)
    assert prefix.done == 0
    prefix.finished_prefix(3, 6)
    assert prefix.done == 1
    prefix.finished_prefix(5, 9)
    assert prefix.done == 2
    prefix.close(9)
    assert prefix.done == 3


@pytest.mark.slow
def test_progress_of_a_file_split_across_workers_counts_the_file(tmp_path):
    lines = [json.dumps({"text": f"article {i} " + "words " * 20}) for i in range(3000)]
    (tmp_path / "big.jsonl").write_text("\n".join(lines) + "\n")
    pipeline = write_pipeline(
        tmp_path / "p.toml",
        '[[sources]]\nplugin = "jsonl"\npaths = ["big.jsonl"]\n'
        '[sink]\nplugin = "parquet"\npath = "out"\n'
        '[executor]\nplugin = "processes"\nworkers = 2\nsplit_bytes = 32768\n',
    )
    proc = run_etl_process(
        "run", str(pipeline), "--progress", "log", "-v", env={"ETL_PROGRESS_INTERVAL": "0.01"}
    )
    assert proc.returncode == 0, proc.stderr
    assert "parts of split inputs" in proc.stdout + proc.stderr  # it was split
    progress = [json.loads(x) for x in proc.stderr.splitlines() if '"progress"' in x]
    assert progress and {p["inputs"] for p in progress} == {1}
    assert progress[-1]["inputs_done"] == 1
