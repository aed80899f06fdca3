"""Issue 16, case 17: a page too big or too slow for trafilatura ends in seconds.

A 20 MB page of paragraphs took over 150 s in extraction. Pages over ``max_extract_bytes``
take a plain lxml extraction; every extraction runs within ``extract_seconds``, past which
the page is a reject (``extraction timeout``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

LINE = "<p>The council met on Tuesday to discuss the budget for the coming year.</p>\n"
#: the case of the issue: 280,000 paragraphs, 20 MB
HUGE = "<html><head><title>Minutes</title></head><body>" + LINE * 280_000 + "</body></html>"

#: runs a command and prints its peak RSS (ru_maxrss of its children: only that command)
MEASURE = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[1:])\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "sys.stderr.write(f'\\nPEAK_RSS_KB={peak}\\n')\n"
    "sys.exit(code)\n"
)


@pytest.mark.slow
def test_a_huge_page_is_read_plainly_in_seconds(tmp_path):
    """The 20 MB page: read by the plain extraction (its paragraphs, its title), within a
    bound that trafilatura's 150 s could not meet, under 500 MB."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "minutes.html").write_text(HUGE, encoding="utf-8")
    (tmp_path / "p.toml").write_text(
        '[[sources]]\nplugin = "html"\npaths = ["in"]\n[sink]\nplugin = "parquet"\npath = "ds"\n',
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", MEASURE, sys.executable, "-m", "etl.cli", "run", "p.toml"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ETL_PROGRESS": "0"},
        start_new_session=True,
    )
    try:
        _, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("a 20 MB page was not extracted in 90 s")
    assert proc.returncode == 0, err
    peak_mb = int(err.rpartition("PEAK_RSS_KB=")[2]) / 1024
    assert peak_mb < 500, f"peak RSS {peak_mb:.0f} MB"
    import pyarrow.dataset as ds

    (row,) = ds.dataset(tmp_path / "ds", format="parquet").to_table().to_pylist()
    assert row["title"] == "Minutes"
    assert row["text"].count("The council met") == 280_000
    assert dict(row["metadata"])["extraction"].startswith("plain")


def test_a_page_over_its_time_budget_is_a_reject(tmp_path):
    """A page trafilatura reads (under max_extract_bytes) but not within extract_seconds:
    the reject ``extraction timeout``, soon after the budget, and the run goes on."""
    from etl.testing import run_source

    page = tmp_path / "slow.html"
    page.write_text("<html><body>" + LINE * 30_000 + "</body></html>", encoding="utf-8")
    ok = tmp_path / "ok.html"
    ok.write_text("<html><body><article>" + LINE * 20 + "</article></body></html>")
    started = time.monotonic()
    import etl_html

    options = {"paths": [str(page), str(ok)], "extract_seconds": 0.5}
    result = run_source(etl_html.HtmlSource, options)
    assert time.monotonic() - started < 20  # trafilatura alone takes several seconds
    (reject,) = result.rejects.to_pylist()
    assert reject["reason"] == "extraction timeout"
    assert json.dumps(reject["detail"])  # says how large and how long


def test_the_budget_interrupts_code_in_any_thread():
    """The budget works in a worker thread too (Dask runs sources in threads), and a block
    that ends in time is not interrupted later."""
    from etl.budget import Budget, OverBudget

    outcome: list[str] = []

    def spin() -> None:
        try:
            with Budget(0.2):
                while True:
                    pass
        except OverBudget:
            outcome.append("stopped")
        with Budget(0.2):
            pass
        time.sleep(0.5)  # the second budget's timer must not fire after its block
        outcome.append("quiet")

    thread = threading.Thread(target=spin)
    thread.start()
    thread.join(10)
    assert outcome == ["stopped", "quiet"]
