"""Inputs from anywhere: a real HTTP server on 127.0.0.1, fsspec's memory://, limits."""

import gzip
import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from etl.inputs import (
    USER_AGENT,
    InputError,
    expand_paths,
    fetch,
    open_input,
    read_input_bytes,
)
from etl.plugin import InputRef
from tests.helpers import free_port, read_dataset, read_rejects, run_etl, write_pipeline

ARTICLES = [
    {"title": f"Remote story {i}", "text": f"Remote body {i}.", "date": f"2024-05-0{i}T10:00:00Z"}
    for i in range(1, 4)
]
BODY = "\n".join(json.dumps(a) for a in ARTICLES).encode() + b"\n"
LONG = b"".join(
    b'{"text": "Line %d of a long body, padded: %s"}\n' % (i, b"x" * 100) for i in range(30000)
)


class Handler(BaseHTTPRequestHandler):
    hits: Counter = Counter()

    def log_message(self, *args):  # keep the test output clean
        pass

    def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?")[0]
        self.hits[path] += 1
        if path == "/ok.jsonl":
            self._send(200, BODY)
        elif path == "/flaky.jsonl":  # 500 twice, then the file
            if self.hits[path] <= 2:
                self._send(500, b"try later")
            else:
                self._send(200, BODY)
        elif path == "/encoded.jsonl":  # Content-Encoding: gzip
            self._send(200, gzip.compress(BODY), {"Content-Encoding": "gzip"})
        elif path == "/file.jsonl.gz":  # a gzipped file served as it is
            self._send(200, gzip.compress(BODY), {"Content-Type": "application/gzip"})
        elif path == "/slow.jsonl":
            time.sleep(1.5)
            self._send(200, BODY)
        elif path == "/big.jsonl":
            self._send(200, BODY * 100)
        elif path == "/cut.jsonl":  # promises twice what it sends, then hangs up
            self.send_response(200)
            self.send_header("Content-Length", str(2 * len(LONG)))
            self.end_headers()
            self.wfile.write(LONG)
            self.close_connection = True
        elif path == "/moved":  # a redirect to a page that names its charset
            self._send(302, b"", {"Location": "/page.html"})
        elif path == "/page.html":  # echoes the User-Agent it was fetched with
            agent = self.headers.get("User-Agent", "").encode()
            self._send(200, b"<p>" + agent + b"</p>", {"Content-Type": "text/html; charset=cp1252"})
        else:
            self._send(404, b"no such thing")


@pytest.fixture
def server():
    Handler.hits = Counter()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


# the readers, in process


def test_read_over_http_with_retries(server):
    assert read_input_bytes(InputRef(f"{server}/ok.jsonl"), max_bytes=10_000) == BODY
    # two 500s, then 200: the third attempt succeeds
    got = read_input_bytes(InputRef(f"{server}/flaky.jsonl"), max_bytes=10_000, backoff=0.01)
    assert got == BODY
    assert Handler.hits["/flaky.jsonl"] == 3
    # gzip by header and by magic bytes
    assert read_input_bytes(InputRef(f"{server}/encoded.jsonl"), max_bytes=10_000) == BODY
    assert read_input_bytes(InputRef(f"{server}/file.jsonl.gz"), max_bytes=10_000) == BODY


def test_failed_fetches_become_input_errors_after_retries(server):
    with pytest.raises(InputError) as err:
        read_input_bytes(InputRef(f"{server}/gone.jsonl"), max_bytes=100, retries=2, backoff=0.01)
    assert err.value.reason == "HTTP 404"
    assert "3 attempts" in err.value.detail
    assert Handler.hits["/gone.jsonl"] == 3
    with pytest.raises(InputError) as err:
        read_input_bytes(
            InputRef(f"http://127.0.0.1:{free_port()}/x"), max_bytes=100, retries=1, backoff=0.01
        )
    assert err.value.reason == "connection refused"
    with pytest.raises(InputError) as err:
        read_input_bytes(InputRef(f"{server}/slow.jsonl"), max_bytes=100, retries=0, timeout=0.3)
    assert err.value.reason == "timeout"
    # over the limit: Content-Length says so before reading
    with pytest.raises(InputError) as err:
        read_input_bytes(InputRef(f"{server}/big.jsonl"), max_bytes=1000)
    assert err.value.reason == "too large"


def test_fetch_gives_body_content_type_and_final_url_with_the_same_retries(server):
    page = fetch(f"{server}/moved", max_bytes=10_000)
    assert page.url == f"{server}/page.html"
    assert page.content_type == "text/html; charset=cp1252"
    assert page.body == b"<p>" + USER_AGENT.encode() + b"</p>"
    mine = fetch(f"{server}/page.html", max_bytes=10_000, headers={"User-Agent": "mine/1"})
    assert mine.body == b"<p>mine/1</p>"
    assert fetch(f"{server}/flaky.jsonl", max_bytes=10_000, backoff=0.01).body == BODY
    assert Handler.hits["/flaky.jsonl"] == 3
    assert fetch(f"{server}/encoded.jsonl", max_bytes=10_000).body == BODY
    with pytest.raises(InputError) as err:
        fetch(f"{server}/gone", max_bytes=100, retries=1, backoff=0.01)
    assert (err.value.reason, Handler.hits["/gone"]) == ("HTTP 404", 2)
    assert "2 attempts" in err.value.detail
    with pytest.raises(InputError) as err:
        fetch(f"{server}/big.jsonl", max_bytes=1000)
    assert err.value.reason == "too large"
    with pytest.raises(InputError) as err:
        fetch("ftp://example.com/x", max_bytes=1000)
    assert err.value.reason == "unsupported link"


def test_size_limit_and_decompression_bomb(tmp_path, monkeypatch):
    import etl.inputs

    bomb = tmp_path / "bomb.jsonl.gz"
    bomb.write_bytes(gzip.compress(b" " * (8 << 20)))  # 8 MiB of spaces in ~8 KiB
    with pytest.raises(InputError) as err:
        read_input_bytes(InputRef(str(bomb)), max_bytes=1 << 20)
    assert err.value.reason == "too large"
    assert "decompressed" in err.value.detail
    # without a size limit, the ratio catches it (past a slack, lowered here to keep it quick)
    monkeypatch.setattr(etl.inputs, "BOMB_SLACK", 1 << 20)
    with pytest.raises(InputError) as err, open_input(InputRef(str(bomb))) as stream:
        while stream.read(1 << 16):
            pass
    assert err.value.reason == "decompression bomb"
    truncated = tmp_path / "cut.gz"
    truncated.write_bytes(gzip.compress(BODY)[:-12])
    with pytest.raises(InputError) as err:
        read_input_bytes(InputRef(str(truncated)), max_bytes=1 << 20)
    assert err.value.reason == "corrupt gzip data"


def test_include_patterns_match_compressed_names(tmp_path):
    for name in ("a.jsonl", "b.jsonl.gz", "c.json.zst", "d.txt", "e.txt.gz"):
        (tmp_path / name).write_bytes(b"x")
    refs = expand_paths([str(tmp_path)], plugin="jsonl", section="s", include=["*.jsonl", "*.json"])
    assert [Path(r.key).name for r in refs] == ["a.jsonl", "b.jsonl.gz", "c.json.zst"]


# fsspec, with its in-memory file system (per process: so these run in process too)


@pytest.fixture
def memfs():
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    root = f"/etl-test-{time.monotonic_ns()}"
    yield fs, root
    fs.rm(root, recursive=True)


def test_fsspec_memory_listing_and_reading(memfs):
    fs, root = memfs
    fs.pipe(f"{root}/news/a.jsonl", BODY)
    fs.pipe(f"{root}/news/sub/b.jsonl.gz", gzip.compress(BODY))
    fs.pipe(f"{root}/news/notes.txt", b"not news")
    fs.pipe(f"{root}/news/.hidden/c.jsonl", BODY)
    refs = list(
        expand_paths([f"memory://{root}/news"], plugin="jsonl", section="s", include=["*.jsonl"])
    )
    assert [r.key for r in refs] == [
        f"memory://{root}/news/a.jsonl",
        f"memory://{root}/news/sub/b.jsonl.gz",
    ]
    assert refs[0].size == len(BODY)
    globbed = list(expand_paths([f"memory://{root}/news/*.jsonl"], plugin="j", section="s"))
    assert [r.key for r in globbed] == [f"memory://{root}/news/a.jsonl"]
    assert read_input_bytes(refs[1], max_bytes=10_000) == BODY
    with pytest.raises(InputError) as err:
        read_input_bytes(InputRef(f"memory://{root}/missing.jsonl"), max_bytes=10, retries=0)
    assert err.value.reason == "not found"
    with pytest.raises(Exception, match="nothing matches"):
        list(expand_paths([f"memory://{root}/nope/*.jsonl"], plugin="j", section="s"))


def test_fsspec_memory_through_a_pipeline(memfs, tmp_path):
    from etl.testing import run_pipeline

    fs, root = memfs
    fs.pipe(f"{root}/a.jsonl", BODY)
    fs.pipe(f"{root}/b.jsonl.gz", gzip.compress(b'{"text": "From a gzipped object."}\nnot json\n'))
    result = run_pipeline(
        {
            "sources": [{"plugin": "jsonl", "paths": [f"memory://{root}/*"]}],
            "sink": {"plugin": "parquet", "path": "out"},
        },
        tmp_path=tmp_path,
    )
    rows = {r["text"]: r for r in result.rows()}
    assert set(rows) == {
        "Remote body 1.",
        "Remote body 2.",
        "Remote body 3.",
        "From a gzipped object.",
    }
    assert rows["Remote body 2."]["published_at"] == datetime(2024, 5, 2, 10, tzinfo=UTC)
    rejects = result.rejects.to_pylist()
    assert [(r["input"], r["location"], r["reason"]) for r in rejects] == [
        (f"memory://{root}/b.jsonl.gz", "line 2", "malformed JSON")
    ]


# end to end: the real CLI reading from the test's server


@pytest.mark.slow
def test_etl_run_reads_urls_and_rejects_the_failures(server, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/dead.jsonl"
    urls = [
        f"{server}/ok.jsonl",
        f"{server}/flaky.jsonl",
        f"{server}/file.jsonl.gz",
        f"{server}/missing.jsonl",
        dead,
    ]
    p = write_pipeline(
        tmp_path / "p.toml",
        '[[sources]]\nplugin = "jsonl"\npaths = [' + ", ".join(f'"{u}"' for u in urls) + "]\n"
        'retries = 2\nbackoff = 0.05\ntimeout = 5\n[sink]\nplugin = "parquet"\npath = "out"\n',
    )
    started = time.monotonic()
    proc = run_etl("run", str(p))
    assert proc.returncode == 0, proc.stderr
    # three inputs fail twice: 4.5 s of waits at the default 0.5 s, 0.45 s at 0.05 s
    assert time.monotonic() - started < 4
    rows = read_dataset(tmp_path / "out").to_pylist()
    assert sorted(r["title"] for r in rows) == [
        "Remote story 1",
        "Remote story 2",
        "Remote story 3",
    ]
    # the same three articles came from three URLs; the first URL wins
    assert {r["uri"] for r in rows} == {None}
    rejects = {r["input"]: r for r in read_rejects(tmp_path / "out").to_pylist()}
    assert set(rejects) == {f"{server}/missing.jsonl", dead}
    assert rejects[f"{server}/missing.jsonl"]["reason"] == "HTTP 404"
    assert "3 attempts" in rejects[f"{server}/missing.jsonl"]["detail"]
    assert rejects[dead]["reason"] == "connection refused"
    assert Handler.hits["/flaky.jsonl"] == 3  # 500, 500, then 200: within retries = 2
    assert Handler.hits["/missing.jsonl"] == 3


@pytest.mark.slow
def test_a_body_cut_short_keeps_the_rows_before_and_rejects_the_rest(server):
    from etl.testing import run_source

    result = run_source("jsonl", {"paths": [f"{server}/cut.jsonl"], "retries": 0})
    n = len(result.rows())
    assert 0 < n < 30000
    rejects = result.rejects.to_pylist()
    assert [r["reason"] for r in rejects] == ["read failed"]
    assert "closed after" in rejects[0]["detail"]
    assert rejects[0]["location"].startswith("line ")
