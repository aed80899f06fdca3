"""Issue 16: ways to hang a run, lose or double-count data, leak a secret or leave the inputs.

Each test reproduces one case of the issue and failed before its fix (docs/reliability.md,
"Hardening (issue 16)", lists them). Runs that could hang run in a subprocess with a
timeout, so a regression fails the test instead of stopping the suite; the ones whose
memory matters measure the child's peak RSS.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from etl.config import pipeline_from_dict
from etl.plugins import get_plugin_manager
from etl.run import build_plan, run_plan
from etl.testing import last_run_inputs
from tests.helpers.reliability import FILE_SOURCES, make_corpus, read_dataset

PM = get_plugin_manager()
#: the bound on a child run's peak memory in the cases that used to grow without limit
MAX_RSS_MB = 500


#: runs a command and prints its peak RSS (ru_maxrss of its children: only that command)
_MEASURE = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[1:])\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "sys.stderr.write(f'\\nPEAK_RSS_KB={peak}\\n')\n"
    "sys.exit(code)\n"
)


def etl_bounded(*args: str, cwd: Path, timeout: float = 60) -> tuple[int, str, str, float]:
    """``etl ARGS`` in a subprocess that must end within ``timeout`` seconds (else it and
    its children are killed and the test fails: the case hangs); (exit code, stdout,
    stderr, peak RSS in MB)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _MEASURE, sys.executable, "-m", "etl.cli", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "ETL_PROGRESS": "0"},
        start_new_session=True,  # a hung run is killed with everything it started
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"etl {' '.join(args)} did not finish in {timeout} s")
    err, _, peak = err.rpartition("PEAK_RSS_KB=")
    return proc.returncode, out, err, int(peak) / 1024


def rejects_of(dataset: Path) -> list[dict]:
    from etl.testing import read_rejects

    return read_rejects(dataset).to_pylist()


def bytes_read() -> int:
    """Bytes this process has read with read() calls so far (sparse files count too)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def toml_sources(sources: list[str], paths: list[str], **options) -> str:
    """[[sources]] tables, one per plugin, with the same paths and options."""
    tables = []
    for plugin in sources:
        lines = [f'plugin = "{plugin}"', f"paths = {json.dumps(paths)}"]
        lines += [f"{k} = {json.dumps(v)}" for k, v in options.items()]
        tables.append("[[sources]]\n" + "\n".join(lines) + "\n")
    return "".join(tables)


def run_spec(tmp: Path, spec: dict) -> dict:
    """Run a pipeline given as data, in this process; the summary."""
    return run_plan(build_plan(pipeline_from_dict(spec, base_dir=tmp), pm=PM))


def assert_accounted(dataset: Path, summary: dict) -> dict[str, dict]:
    """records = written + duplicates + dropped + rejected, per input and in total."""
    rows = last_run_inputs(dataset)
    for name, row in rows.items():
        parts = row["written"] + row["duplicates"] + row["dropped"] + row["rejected"]
        assert row["records"] == parts, (name, row)
        assert min(row["written"], row["duplicates"], row["dropped"], row["rejected"]) >= 0
    for column in ("written", "duplicates", "dropped", "rejected"):
        assert sum(r[column] for r in rows.values()) == summary[column], column
    return rows


# 12. accounting when a transform fails on every article


# fails on every article but one (a run that rejects everything fails on its own since)
FAILING = """
import pyarrow as pa


def per_article(article: dict):
    if "keep me" not in article["text"]:
        raise ValueError("no")
    return article


def per_batch(batch: pa.RecordBatch):
    if any("keep me" not in text for text in batch.column("text").to_pylist()):
        raise ValueError("no")
    return batch
"""


@pytest.mark.parametrize("function", ["per_article", "per_batch"])
def test_a_transform_failing_on_every_article_rejects_each_once(tmp_path, function):
    """Case 12: 300 articles (60 repeating the text of another file, and JSON lines that
    repeat within a file) all rejected by a python transform: each is counted once, as a
    reject of its own input, never as dropped."""
    (tmp_path / "fns.py").write_text(FAILING, encoding="utf-8")
    make_corpus(tmp_path / "text", 300, duplicates=60)
    (tmp_path / "text" / "keep.txt").write_text("Kept\n\nkeep me, the one that passes.\n")
    lines = tmp_path / "lines"
    lines.mkdir()
    for i in range(3):
        body = "".join(json.dumps({"text": f"same text {k % 5}"}) + "\n" for k in range(100))
        (lines / f"{i}.jsonl").write_text(body, encoding="utf-8")
    (lines / "keep.jsonl").write_text(json.dumps({"text": "keep me, I pass"}) + "\n")
    for plugin, folder in (("text", "text"), ("jsonl", "lines")):
        dataset = tmp_path / f"ds-{plugin}"
        summary = run_spec(
            tmp_path,
            {
                "sources": [{"plugin": plugin, "paths": [str(tmp_path / folder)]}],
                "transforms": [{"plugin": "python", "function": f"fns.py:{function}"}],
                "sink": {"plugin": "parquet", "path": str(dataset)},
            },
        )
        assert (summary["written"], summary["dropped"], summary["rejected"]) == (1, 0, 300)
        rows = assert_accounted(dataset, summary)
        failed = [r for name, r in rows.items() if "keep" not in name]
        assert len(failed) == len(rows) - 1
        assert all(r["rejected"] == r["records"] for r in failed)


# 13. a FIFO among the inputs


@pytest.mark.slow
def test_a_fifo_among_the_inputs_is_a_reject_not_a_hang(tmp_path):
    """Case 13: ``mkfifo in/b.txt`` blocked every file source in ``open()`` forever. Only
    regular files are read; the FIFO is a reject of each source that lists it."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text("A headline\n\nA body of some words.\n", encoding="utf-8")
    os.mkfifo(folder / "b.txt")
    (tmp_path / "p.toml").write_text(
        toml_sources(FILE_SOURCES, ["in"], include=["*"])
        + '[sink]\nplugin = "parquet"\npath = "ds"\n',
        encoding="utf-8",
    )
    code, _, err, peak = etl_bounded("run", "p.toml", cwd=tmp_path)
    assert code == 0, err
    fifo = [r for r in rejects_of(tmp_path / "ds") if r["input"].endswith("b.txt")]
    assert sorted(r["plugin"] for r in fifo) == sorted(FILE_SOURCES)
    assert {r["reason"] for r in fifo} == {"not a regular file"}
    assert peak < MAX_RSS_MB


# 14. devices and files over the limit are not read past it


@pytest.mark.slow
@pytest.mark.parametrize("name", ["z.jsonl", "z.txt", "z.csv"])
def test_a_link_to_dev_zero_is_a_reject_not_an_endless_read(tmp_path, name):
    """Case 14: a symlink to /dev/zero read forever (jsonl, csv) or was hashed forever for
    the inputs memory (text). It is not a regular file: a reject, and nothing is hashed."""
    plugin = {"z.jsonl": "jsonl", "z.txt": "text", "z.csv": "csv"}[name]
    (tmp_path / name).symlink_to("/dev/zero")
    good = {"jsonl": '{"text": "Some words."}\n', "text": "Some words.\n", "csv": "text\nwords\n"}
    (tmp_path / f"ok.{name[2:]}").write_text(good[plugin], encoding="utf-8")
    (tmp_path / "p.toml").write_text(
        toml_sources([plugin], [name, f"ok.{name[2:]}"])
        + '[sink]\nplugin = "parquet"\npath = "ds"\n',
        encoding="utf-8",
    )
    code, _, err, peak = etl_bounded("run", "p.toml", cwd=tmp_path, timeout=30)
    assert code == 0, err
    assert [r["reason"] for r in rejects_of(tmp_path / "ds")] == ["not a regular file"]
    assert peak < MAX_RSS_MB


def test_a_file_over_max_bytes_is_not_read_or_hashed(tmp_path):
    """Case 14: an 8 GB file over ``max_bytes`` was rejected but then hashed whole for the
    inputs memory (26 s). A sparse 4 GB file: rejected as too large with less than 100 MB
    read in all, remembered (by size and mtime) and skipped by the next run."""
    folder = tmp_path / "in"
    folder.mkdir()
    with open(folder / "big.txt", "wb") as f:
        f.truncate(4 << 30)
    (folder / "ok.txt").write_text("Fine\n\nAn ordinary article.\n", encoding="utf-8")
    spec = {
        "sources": [{"plugin": "text", "paths": [str(folder)]}],
        "sink": {"plugin": "parquet", "path": str(tmp_path / "ds")},
    }
    before = bytes_read()
    summary = run_spec(tmp_path, spec)
    assert bytes_read() - before < 100 << 20
    assert summary["rejects_by_reason"] == {"too large": 1}
    row = last_run_inputs(tmp_path / "ds")[str(folder / "big.txt")]
    assert row["remembered"] and row["content_hash"] is None
    assert run_spec(tmp_path, spec)["inputs_skipped"] == 2


# 15. symlink cycles in a recursive glob


@pytest.mark.slow
def test_a_recursive_glob_over_symlink_cycles_finishes(tmp_path):
    """Case 15: ``ln -s . in/a; ln -s . in/b; ln -s . in/c`` with ``in/**/*.txt`` never
    finished listing (glob follows folder links: 3^depth paths). ``**`` does not descend
    into linked folders, as folder walks never did: each file is listed once."""
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "x.txt").write_text("A headline\n\nSome words of a body.\n", encoding="utf-8")
    (folder / "sub" / "y.txt").write_text("Another one\n\nMore words here.\n", encoding="utf-8")
    for name in "abc":
        (folder / name).symlink_to(".")
    (tmp_path / "p.toml").write_text(
        toml_sources(["text"], ["in/**/*.txt"]) + '[sink]\nplugin = "parquet"\npath = "ds"\n',
        encoding="utf-8",
    )
    code, out, err, peak = etl_bounded("run", "p.toml", "--dry-run", cwd=tmp_path, timeout=30)
    assert code == 0, err
    assert "dry run: 2 inputs" in out
    code, _, err, peak = etl_bounded("run", "p.toml", cwd=tmp_path, timeout=30)
    assert code == 0, err
    assert sorted(Path(r).name for r in last_run_inputs(tmp_path / "ds")) == ["x.txt", "y.txt"]
    assert peak < MAX_RSS_MB


# 18. a stale lock that cannot be broken


@pytest.mark.slow
def test_wait_is_a_bound_even_when_a_stale_lock_cannot_be_broken(tmp_path):
    """Case 18: a stale lock (a dead pid of this host) plus a ``lock.break`` that cannot be
    deleted (a folder, from 2020) made ``--wait 5`` spin forever (``--wait 1`` here). The run gives up when the
    wait is over, exit 1, naming the file to delete."""
    import socket
    import time

    make_corpus(tmp_path / "in", 3)
    (tmp_path / "p.toml").write_text(
        toml_sources(["text"], ["in"]) + '[sink]\nplugin = "parquet"\npath = "ds"\n',
        encoding="utf-8",
    )
    state = tmp_path / "ds" / "_etl"
    state.mkdir(parents=True)
    holder = {"run_id": "old", "host": socket.gethostname(), "pid": 999999, "started_at": "x"}
    (state / "lock").write_text(json.dumps(holder), encoding="utf-8")
    (state / "lock.break").mkdir()
    os.utime(state / "lock.break", (1577836800, 1577836800))  # 2020-01-01
    started = time.monotonic()
    code, _, err, _ = etl_bounded("run", "p.toml", "--wait", "1", cwd=tmp_path, timeout=60)
    assert code == 1, err
    assert "lock.break" in err
    # the guard is stale and stays: nothing is gained by waiting past --wait (it waited out
    # the guard's own 11 s of patience before)
    assert time.monotonic() - started < 10


# remote inputs: a server on 127.0.0.1


# served with Content-Encoding: gzip
@functools.cache
def bomb() -> bytes:
    """200 MB of NUL bytes, gzipped (about 200 KB), made once, when a test needs it (it
    takes a CPU-second, which every xdist worker paid as it collected this file)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    return packer.compress(bytes(200 << 20)) + packer.flush()


class Hostile(BaseHTTPRequestHandler):
    """Pages that misbehave: trickle, bomb, redirect elsewhere."""

    def log_message(self, *args):  # keep the test output clean
        pass

    def _trickle(self, data: bytes) -> None:
        try:
            for i in range(len(data)):
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
                time.sleep(0.5)
        except OSError:  # the client gave up: what the test wants
            pass

    def do_GET(self):
        if self.path.startswith("/ok.jsonl"):
            body = b'{"text": "A remote article with some words in it."}\n'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/drip-body.jsonl":  # headers at once, then a byte every 0.5 s
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self._trickle(b'{"text": "drip"}\n' * 60)
        elif self.path == "/drip-head.jsonl":  # even the status line trickles
            self._trickle(b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"z" * 200)
        elif self.path == "/bomb.jsonl":
            self.send_response(200)
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(bomb())))
            self.end_headers()
            self.wfile.write(bomb())
        elif self.path.startswith("/to/"):  # /to/ftp -> ftp://127.0.0.1:PORT/x
            scheme = self.path.split("/")[2]
            self.send_response(302)
            self.send_header("Location", f"{scheme}://127.0.0.1:{self.server.lure_port}/x")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()


@pytest.fixture
def hostile():
    """(base URL, a listening socket that counts connections: where redirects point)."""
    lure = socket.socket()
    lure.bind(("127.0.0.1", 0))
    lure.listen(8)
    lure.settimeout(0.1)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    httpd.daemon_threads = True
    httpd.lure_port = lure.getsockname()[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", lure
    finally:
        httpd.shutdown()
        httpd.server_close()
        lure.close()


def connections(lure: socket.socket) -> int:
    n = 0
    while True:
        try:
            conn, _ = lure.accept()
        except OSError:
            return n
        conn.close()
        n += 1


# 16. a server that trickles


@pytest.mark.slow
def test_a_trickling_server_is_cut_off_at_the_deadline(tmp_path, hostile):
    """Case 16: a server sending a byte a second never timed out (the timeout is per read).
    ``deadline`` bounds the whole input: body or headers trickling, the input is a
    ``timeout`` reject once it has passed, and the run goes on."""
    base, _ = hostile
    urls = [f"{base}/drip-body.jsonl", f"{base}/drip-head.jsonl"]
    (tmp_path / "p.toml").write_text(
        toml_sources(["jsonl"], [*urls, f"{base}/ok.jsonl"], timeout=1.0, deadline=1.5, retries=0)
        + '[sink]\nplugin = "parquet"\npath = "ds"\n',
        encoding="utf-8",
    )
    started = time.monotonic()
    code, _, err, peak = etl_bounded("run", "p.toml", cwd=tmp_path, timeout=60)
    assert code == 0, err
    assert time.monotonic() - started < 30  # each trickle takes 30 s or more
    rejects = {r["input"]: r for r in rejects_of(tmp_path / "ds")}
    assert set(rejects) == set(urls)
    for reject in rejects.values():
        assert reject["reason"] == "timeout"
        assert "deadline 1.5 s" in reject["detail"]
    assert peak < MAX_RSS_MB


# 6. a gzip bomb in Content-Encoding


def test_a_content_encoding_bomb_is_stopped(hostile):
    """Case 6: ``Content-Encoding: gzip`` was undone without the bomb check (4 MB inflated
    to 4 GiB for a jsonl URL, which has no max_bytes by default). The ratio of decoded to
    received bytes is checked as for a gzipped file: 200 KB that would be 200 MB stop at
    the bomb limit."""
    from etl.inputs import BOMB_SLACK
    from etl.testing import run_source

    base, _ = hostile
    size = len(bomb())  # made before the count starts
    before = bytes_read()
    paths = [f"{base}/bomb.jsonl", f"{base}/ok.jsonl"]
    result = run_source("jsonl", {"paths": paths, "retries": 0})
    assert [r["reason"] for r in result.rejects.to_pylist()] == ["decompression bomb"]
    assert bytes_read() - before < 2 * size + (1 << 20)  # on the wire: the 200 KB
    del BOMB_SLACK


# decide: redirects lead to http(s) only


@pytest.mark.parametrize("scheme", ["ftp", "file"])
def test_a_redirect_to_another_protocol_is_not_followed(hostile, scheme):
    """Decided: a redirect is followed to ``http(s)://`` only (urllib followed ``ftp://``;
    it refused ``file://`` already). The input is an ``unsupported redirect`` reject and
    nothing connects to where the redirect pointed."""
    from etl.testing import run_source

    base, lure = hostile
    paths = [f"{base}/to/{scheme}", f"{base}/ok.jsonl"]
    result = run_source("jsonl", {"paths": paths, "retries": 0})
    (reject,) = result.rejects.to_pylist()
    assert reject["reason"] == "unsupported redirect"
    assert f"to {scheme}:" in reject["detail"]
    assert connections(lure) == 0


# 9. a folder that cannot be read


def _without_root_powers() -> list[str]:
    """A command prefix that runs a program as root without the capabilities that let root
    read any folder (tests run as root, and chmod 000 does not stop root)."""
    if os.geteuid() != 0:
        return []
    probe = subprocess.run(
        ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "true"],
        capture_output=True,
    )
    if probe.returncode != 0:
        pytest.skip("running as root and cannot drop CAP_DAC_OVERRIDE with setpriv")
    return ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


@pytest.mark.slow
@pytest.mark.parametrize("paths", [["in"], ["in/**/*.txt"], ["in/d", "in/0*"]])
def test_a_folder_that_cannot_be_read_is_a_reject_naming_it(tmp_path, paths):
    """Case 9: ``chmod 000 in/d`` made the walk skip the folder silently (exit 0, nothing
    said). It is a ``permission denied`` reject naming the folder; the rest is read, and
    the folder is read again next run (fixing it with chmod changes no mtime)."""
    prefix = _without_root_powers()
    make_corpus(tmp_path / "in", 4)
    locked = tmp_path / "in" / "d"
    (locked / "e").mkdir(parents=True)
    (locked / "e" / "x.txt").write_text("Hidden away\n\nNobody reads this.\n", encoding="utf-8")
    (tmp_path / "p.toml").write_text(
        toml_sources(["text"], paths) + '[sink]\nplugin = "parquet"\npath = "ds"\n',
        encoding="utf-8",
    )
    locked.chmod(0)
    try:
        proc = subprocess.run(
            [*prefix, sys.executable, "-m", "etl.cli", "run", "p.toml"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "ETL_PROGRESS": "0"},
        )
    finally:
        locked.chmod(0o755)
    assert proc.returncode == 0, proc.stderr
    (reject,) = rejects_of(tmp_path / "ds")
    assert reject["input"] == str(locked)
    assert reject["reason"] == "permission denied"
    rows = last_run_inputs(tmp_path / "ds")
    assert rows[str(locked)]["remembered"] is False
    assert sum(r["written"] for r in rows.values()) == 4


# 10. a secret in a traceback


def test_verbose_tracebacks_and_messages_redact_env_values(tmp_path):
    """Case 10: with ``sink.path = "a-file/${TOKEN}/ds"`` (a-file a file), ``etl run -v``
    printed the secret in the traceback's ``NotADirectoryError``, and ``etl validate`` in
    its ``state`` line. Everything the CLI prints is redacted, tracebacks included."""
    from tests.helpers import run_etl

    (tmp_path / "a-file").write_text("", encoding="utf-8")
    make_corpus(tmp_path / "in", 2)
    (tmp_path / "p.toml").write_text(
        toml_sources(["text"], ["in"])
        + '[sink]\nplugin = "parquet"\npath = "a-file/${TOKEN}/ds"\n',
        encoding="utf-8",
    )
    env = {"TOKEN": "s3cr3t"}
    run = run_etl("run", "p.toml", "-v", cwd=tmp_path, env=env)
    assert run.returncode == 1
    assert "Traceback" in run.stderr and "***" in run.stderr
    validate = run_etl("validate", "p.toml", "-vv", cwd=tmp_path, env=env)
    dry = run_etl("run", "p.toml", "--dry-run", "-vv", cwd=tmp_path, env=env)
    for proc in (run, validate, dry):
        assert "s3cr3t" not in proc.stdout + proc.stderr


# 11. validate and --dry-run run no user code


MARKED = """
import pathlib
pathlib.Path(__file__).with_suffix(".ran").write_text("imported")


def fn(article: dict):
    return article
"""


def test_validate_and_dry_run_import_no_transform_code(tmp_path):
    """Case 11: ``etl validate`` imported the python transform's file, so
    ``--set 'transforms=[{plugin="python",function="../../x.py:fn"}]'`` ran ``x.py``'s top
    level. Neither validate nor ``--dry-run`` runs it now (a run does), and a file outside
    the pipeline's folder is refused unless ``allow_outside = true``."""
    from tests.helpers import run_etl

    project = tmp_path / "a" / "b"
    make_corpus(project / "in", 2)
    (project / "fns.py").write_text(MARKED, encoding="utf-8")
    (tmp_path / "x.py").write_text(MARKED, encoding="utf-8")
    (project / "p.toml").write_text(
        toml_sources(["text"], ["in"]) + '[sink]\nplugin = "parquet"\npath = "ds"\n',
        encoding="utf-8",
    )
    outside = 'transforms=[{plugin="python",function="../../x.py:fn"}]'
    inside = 'transforms=[{plugin="python",function="fns.py:fn"}]'
    opted = 'transforms=[{plugin="python",function="../../x.py:fn",allow_outside=true}]'

    refused = run_etl("validate", "p.toml", "--set", outside, cwd=project)
    assert refused.returncode == 2
    assert "outside the pipeline's folder" in refused.stderr
    for setting in (inside, opted):
        assert run_etl("validate", "p.toml", "--set", setting, cwd=project).returncode == 0
        dry = run_etl("run", "p.toml", "--dry-run", "--set", setting, cwd=project)
        assert dry.returncode == 0, dry.stderr
    assert not list(tmp_path.rglob("*.ran"))  # nothing was imported
    done = run_etl("run", "p.toml", "--set", inside, cwd=project)
    assert done.returncode == 0, done.stderr
    assert (project / "fns.ran").is_file()  # a run does import it


# 8. csv: an over-long row is one reject


@pytest.mark.parametrize(
    ("limit", "field"),
    [(1_000, 5_000), (200_000, 360_000)],
    ids=["under-the-csv-module-default", "above-it"],
)
def test_an_over_long_csv_row_is_one_reject(tmp_path, limit, field):
    """Case 8: ``max_record_bytes`` under 131,072 (the csv module's default field limit)
    was ignored, and above it a 360 KB quoted field (with line breaks) was cut where the
    limit struck: ~6,300 garbage rows and one garbage article. The over-long row is one
    reject at its line; every other row is read as it is."""
    from etl.testing import run_source

    big = ("word " * (field // 5 // 40) + "\n") * 40  # quoted line breaks inside the field
    rows = [["title", "text"], ["first", "The first article."]]
    rows += [["huge", big], ["last", "The last article."]]
    path = tmp_path / "a.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        import csv

        csv.writer(f).writerows(rows)
    result = run_source("csv", {"paths": [str(path)], "max_record_bytes": limit})
    assert result.table.column("title").to_pylist() == ["first", "last"]
    (reject,) = result.rejects.to_pylist()
    assert (reject["reason"], reject["location"]) == ("record too large", "line 3")


# 7. rejects do not pile up in memory


@pytest.mark.slow  # 600,000 rejects: about 20 s
def test_many_rejects_are_kept_on_disk_not_in_memory(tmp_path):
    """Case 7: rejects were dicts in a list until the commit: ``b'x\\n' * 2_000_000`` as a
    JSONL file peaked at 1.74 GB (870 bytes a reject). They go to disk as Arrow past 10,000
    (:mod:`etl.rejects`); every bad line is still a reject row with its location. 600,000
    of them (about 610 MB before) stay well under the bound."""
    import pyarrow.compute as pc

    from etl.testing import read_rejects

    n = 600_000
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x.jsonl").write_bytes(b"x\n" * n + b'{"text": "one good line"}\n')
    (tmp_path / "p.toml").write_text(
        toml_sources(["jsonl"], ["in"]) + '[sink]\nplugin = "parquet"\npath = "ds"\n',
        encoding="utf-8",
    )
    code, out, err, peak = etl_bounded("run", "p.toml", "--json", cwd=tmp_path, timeout=240)
    assert code == 0, err
    assert json.loads(out)["rejected"] == n
    rejects = read_rejects(tmp_path / "ds")
    assert rejects.num_rows == n
    assert pc.count_distinct(rejects.column("location")).as_py() == n
    assert rejects.column("location")[n - 1].as_py() == f"line {n}"
    assert peak < MAX_RSS_MB, f"peak RSS {peak:.0f} MB"


# decide: links may not lead out of the input folder


@pytest.mark.parametrize("paths", [["in"], ["in/*.txt"], ["in/**/*.txt"]])
def test_a_link_out_of_the_input_folder_is_a_reject_unless_allowed(tmp_path, paths):
    """Decided: a symlink to ``/etc/passwd`` in an input folder was ingested. A link found
    in a folder or by a glob must lead inside that folder (for a glob: the folder before
    its first wildcard); one that leads out is the reject ``link outside the input folder``
    unless ``allow_outside_links = true``. Links inside are read; a path named as it is in
    ``paths`` is the user's choice and is read."""
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("Secret stuff\n\nroot:x:0:0 and more words.\n", encoding="utf-8")
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "ok.txt").write_text("Fine\n\nAn ordinary article here.\n", encoding="utf-8")
    (folder / "sub" / "real.txt").write_text("Real\n\nThe real file, linked.\n", encoding="utf-8")
    (folder / "inner.txt").symlink_to(folder / "sub" / "real.txt")
    (folder / "passwd.txt").symlink_to(outside)

    def run(name: str, **options) -> tuple[dict, list[str]]:
        dataset = tmp_path / name
        spec = {
            "sources": [{"plugin": "text", "paths": paths, **options}],
            "sink": {"plugin": "parquet", "path": str(dataset)},
        }
        summary = run_spec(tmp_path, spec)
        texts = [r["text"] for r in read_dataset(dataset).to_pylist()]
        return summary, texts

    summary, texts = run("strict")
    assert summary["rejects_by_reason"] == {"link outside the input folder": 1}
    assert not any("root:x" in t for t in texts)
    assert any("The real file" in t for t in texts)  # a link inside the folder is fine
    (reject,) = rejects_of(tmp_path / "strict")
    assert reject["input"] == str(folder / "passwd.txt")
    summary, texts = run("allowed", allow_outside_links=True)
    assert summary["rejected"] == 0 and any("root:x" in t for t in texts)
    named = run_spec(
        tmp_path,
        {
            "sources": [{"plugin": "text", "paths": [str(folder / "passwd.txt")]}],
            "sink": {"plugin": "parquet", "path": str(tmp_path / "named")},
        },
    )
    assert named["written"] == 1


# decide: credentials in literal URLs are redacted


def test_credentials_in_urls_reach_no_log_manifest_or_reject(tmp_path, hostile):
    """Decided: ``user:pass@`` and ``?api_key=`` in a URL written in the pipeline showed in
    logs, manifests, rejects and the run-inputs table (only ``${ENV}`` values were
    redacted). They are secrets like ``${ENV}`` values now: ``***`` everywhere etl writes
    or prints, data rows aside."""
    import pyarrow.parquet as pq

    from tests.helpers import run_etl

    base, _ = hostile
    port = base.rsplit(":", 1)[1]
    password, key, token = "hunter22", "k3y-v4lue-9", "t0k3n-abcdef"
    urls = [
        f"http://user:{password}@127.0.0.1:{port}/nothing.jsonl?api_key={key}&page=2",
        f"{base}/ok.jsonl?access_token={token}",
    ]
    (tmp_path / "p.toml").write_text(
        toml_sources(["jsonl"], urls, retries=0) + '[sink]\nplugin = "parquet"\npath = "ds"\n',
        encoding="utf-8",
    )
    secrets = (password, key, token)
    runs = [
        run_etl("run", "p.toml", "-vv", "--log-format", "json", cwd=tmp_path),
        run_etl("run", "p.toml", "--dry-run", cwd=tmp_path),
        run_etl("validate", "p.toml", cwd=tmp_path),
    ]
    assert runs[0].returncode == 0, runs[0].stderr
    for proc in runs:
        assert not [s for s in secrets if s in proc.stdout + proc.stderr]
    assert "***" in runs[1].stdout  # the dry run listed the URLs, redacted
    meta = tmp_path / "ds" / "_etl"
    for path in meta.rglob("*"):
        if path.is_file():
            text = path.read_bytes()
            if path.suffix == ".pq":
                text = json.dumps(pq.read_table(path).to_pylist(), default=str).encode()
            assert not [s for s in secrets if s.encode() in text], path
    assert rejects_of(tmp_path / "ds")  # the first URL failed: its reject names it
