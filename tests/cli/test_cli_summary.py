"""The run summary says where the time went, names rejected inputs, counts in plain words."""

from __future__ import annotations

import json

import pytest

from tests.helpers import run_etl, run_etl_process, write_pipeline

COUNTING = (
    "from etl import Transform, hookimpl\n"
    "class Probe(Transform):\n"
    "    '''Counts articles, in words and as a diagnostic.'''\n"
    "    name = 'probe'\n"
    "    def process(self, batch, ctx):\n"
    "        ctx.count('articles probed', batch.num_rows)\n"
    "        ctx.count('probe:batches', 1)\n"
    "        return batch\n"
    "@hookimpl\n"
    "def etl_register_plugins(register):\n"
    "    register(Probe)\n"
)


def make(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir(parents=True)
    for i in range(4):
        words = " ".join(["word"] * (10 + 30 * i))
        (folder / f"{i}.txt").write_text(f"Article {i} {words}.\n")
    (folder / "empty.txt").write_text("")
    (folder / "bin.txt").write_bytes(b"\x00\x01binary")
    (tmp_path / "probe.py").write_text(COUNTING)
    return write_pipeline(
        tmp_path / "p.toml",
        'plugins = ["probe.py"]\n'
        '[[sources]]\nplugin = "text"\npaths = ["in"]\n'
        '[[transforms]]\nplugin = "probe"\n'
        '[[transforms]]\nplugin = "filter"\nwhere = "word_count >= 40"\nlabel = "long"\n'
        '[sink]\nplugin = "parquet"\npath = "out"\n',
    )


def test_the_summary_says_where_the_time_went(tmp_path):
    proc = run_etl("run", str(make(tmp_path)))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    lines = {
        line.split()[0] + " " + line.split()[1]: line
        for line in out.splitlines()
        if line.startswith("    ")
    }
    assert "time" in out and " in all" in out
    assert "6 inputs" in lines["source text"] and "4 articles" in lines["source text"]
    assert "articles/s" in lines["source text"] and "MB/s" in lines["source text"]
    assert "4 in, 4 out" in lines["transform probe"]
    assert "4 in, 3 out" in lines["transform filter"]
    assert "3 written" in lines["sink parquet"]
    assert any(line.split() == ["commit", line.split()[1], "s"] for line in out.splitlines())
    summary = json.loads(run_etl("run", str(make(tmp_path / "j")), "--json").stdout)
    sections = set(summary["plugin_seconds"])
    assert {
        "[[sources]] #1 in p.toml",
        "[[transforms]] #2 in p.toml",
        "[sink] in p.toml",
    } <= sections


def test_the_summary_names_the_first_rejected_inputs_of_each_reason(tmp_path):
    proc = run_etl("run", str(make(tmp_path)))
    out = proc.stdout
    assert f"1 binary file: {tmp_path / 'in' / 'bin.txt'}" in out
    assert f"1 empty file: {tmp_path / 'in' / 'empty.txt'}" in out
    assert f"(`etl rejects {tmp_path / 'out'}` lists them all)" in out


def test_counters_in_plain_words(tmp_path):
    proc = run_etl("run", str(make(tmp_path)))
    out = proc.stdout
    assert "1 articles did not pass the filter 'long'" in out
    assert "filter dropped:" not in out
    assert "4 articles probed" in out
    assert "probe:batches: 1" in out


@pytest.mark.slow
def test_the_executors_internal_counters_only_with_v(tmp_path):
    """A worker process per core: `processes` counts how it deduplicated across chunks."""
    pipeline = make(tmp_path)
    args = ("run", str(pipeline), "--set", "executor.plugin=processes", "--full")
    assert run_etl(*args[:2]).returncode == 0  # the dataset exists: --full re-reads it
    quiet = run_etl_process(*args)
    assert quiet.returncode == 0, quiet.stderr
    assert "processes:" not in quiet.stdout
    verbose = run_etl_process(*args, "-v")
    assert "internal  processes:chunks deduplicated before writing" in verbose.stdout


def test_v_logs_one_event_per_stage_and_plugin(tmp_path):
    proc = run_etl("run", str(make(tmp_path)), "-v", "--log-format", "json")
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    names = [(e["event"], e.get("plugin")) for e in events]
    assert names == [
        ("run started", None),
        ("source done", "text"),
        ("transform done", "probe"),
        ("transform done", "filter"),
        ("sink done", "parquet"),
        ("run committed", None),
    ], names
    source = events[1]
    assert source["inputs"] == 6 and source["articles"] == 4 and source["seconds"] >= 0
