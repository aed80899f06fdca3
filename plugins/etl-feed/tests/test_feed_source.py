"""The feed source through the real CLI: corpora feeds, hostile XML, fetch = true."""

from __future__ import annotations

import http.server
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"
FEEDS = DATA / "feeds"
HTML_PAGE = (
    Path(__file__).resolve().parents[2]
    / "etl-html" / "tests" / "data" / "html" / "trafilatura" / "mix1.de-clio.html"
)  # fmt: skip


def _pipeline(tmp: Path, paths: list[str], **options) -> Path:
    extra = "".join(
        f"{k} = {str(v).lower() if isinstance(v, bool) else repr(v)}\n" for k, v in options.items()
    )
    quoted = ", ".join(f'"{p}"' for p in paths)
    pipeline = tmp / "feed.toml"
    pipeline.write_text(
        f'[[sources]]\nplugin = "feed"\npaths = [{quoted}]\n{extra}\n'
        f'[sink]\nplugin = "parquet"\npath = "{tmp / "ds"}"\n',
        encoding="utf-8",
    )
    return pipeline


def _run(tmp: Path, etl_cli, paths: list[str], **options):
    run_etl, read_dataset, read_rejects = etl_cli
    proc = run_etl("run", str(_pipeline(tmp, paths, **options)), timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = read_dataset(tmp / "ds").to_pylist()
    for row in rows:
        row["meta"] = dict(row["metadata"] or [])
    return rows, read_rejects(tmp / "ds").to_pylist()


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory, etl_cli, per_input):
    tmp = tmp_path_factory.mktemp("feeds")
    rows, rejects = _run(tmp, etl_cli, [str(FEEDS)])
    return rows, rejects, per_input(tmp / "ds")


@pytest.mark.slow
def test_every_feed_is_rows_or_rejects(corpus_run):
    rows, rejects, accounting = corpus_run
    files = {str(p) for p in FEEDS.rglob("*") if p.is_file()}
    assert set(accounting) == files
    for row in accounting.values():
        assert row["complete"] and row["written"] + row["duplicates"] + row["rejected"] >= 1, row
    reasons = {(Path(r["input"]).name, r["reason"]) for r in rejects}
    assert ("illformed__aaa_illformed.xml", "malformed feed") in reasons
    assert ("encoding__bozo_bogus_encoding.xml", "malformed feed") in reasons
    assert ("encoding__euc-kr.xml", "empty feed") in reasons
    # headline-only entries: nothing to keep as text without fetch = true
    assert any(r["reason"] == "empty entry" and r["location"].startswith("entry ") for r in rejects)


def _by_title(rows, title):
    found = [r for r in rows if r["title"] == title]
    assert found, title
    return found[0]


@pytest.mark.slow
def test_rss_atom_rdf_json_rows(corpus_run):
    rows = corpus_run[0]
    bbc = _by_title(rows, "Marcus Aurelius")
    assert bbc["publisher"] == "In Our Time"
    assert bbc["published_at"] == datetime(2021, 2, 25, 10, 15, tzinfo=UTC)
    assert bbc["authors"] == ["BBC Radio 4"]
    assert bbc["text"].startswith("Melvyn Bragg and guests discuss")
    assert bbc["meta"]["feed_version"] == "rss20"
    reddit = [r for r in rows if r["publisher"] == "newest submissions : homelab"]
    assert len(reddit) == 25  # HTML stripped:
    assert not any(tag in r["text"] for r in reddit for tag in ("<p>", "<div", "<a ", "&lt;"))
    rdf = _by_title(rows, "Test Item - RSS 1.0")
    assert rdf["meta"]["feed_version"] == "rss10"
    json_rows = [r for r in rows if r["meta"].get("feed_version") == "json11"]
    assert len(json_rows) == 2  # the third item has no content: an "empty entry" reject
    first = _by_title(json_rows, "InfluxDB vs. Graphite for Time Series Data & Metrics Benchmark")
    assert first["publisher"] == "Blog – InfluxData"
    assert first["uri"].startswith("https://www.influxdata.com/blog/")
    assert first["published_at"] == datetime(2019, 5, 31, 19, 17, 58, tzinfo=UTC)
    assert first["language"] == "en"
    # base64 Atom content (declared plain text), decoded as upstream expects
    assert [r for r in rows if r["text"] == "Example <b>Atom</b>"]


@pytest.mark.slow
def test_legacy_encodings(corpus_run):
    rows = corpus_run[0]
    # the same feed in KOI8-R and in IBM866: the same 30 articles, written once
    koi8 = [r for r in rows if r["meta"].get("feed_encoding") in ("koi8-r", "ibm866")]
    assert len(koi8) == 30 and koi8[0]["title"].startswith("В Турции")
    assert koi8[0]["language"] == "ru"
    # no encoding declared, not UTF-8: detected, not read as windows-1252 mojibake
    sjis = [r for r in rows if "DrecomRSS" in (r["title"] or "")]
    assert sjis and sjis[0]["title"].startswith("DrecomRSSに記事投稿")


@pytest.mark.slow
def test_partly_malformed_feed_keeps_its_entries(corpus_run):
    rows = corpus_run[0]
    big5 = [r for r in rows if r["publisher"] == "苦勞網"]
    assert len(big5) >= 15
    assert all("SAXParseException" in r["meta"]["feed_warning"] for r in big5)


# --- hostile XML: nothing fetched, nothing expanded -------------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []
    pages: dict[str, tuple[int, str, bytes]] = {}

    def do_GET(self):  # noqa: N802 - http.server's name
        type(self).hits.append(self.path)
        status, ctype, body = type(self).pages.get(self.path, (404, "text/plain", b"not found"))
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    handler = type("Handler", (_Recorder,), {"hits": [], "pages": {}})
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.mark.slow
def test_no_external_entities_or_dtds(tmp_path, etl_cli, server):
    handler, base = server
    handler.pages["/ent"] = (200, "text/plain", b"NETWORK-ENTITY-LEAK")
    handler.pages["/dtd"] = (200, "application/xml-dtd", b'<!ENTITY leak "DTD-LEAK">')
    secret = tmp_path / "secret.txt"
    secret.write_text("FILE-ENTITY-LEAK", encoding="utf-8")
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    item = "<item><title>Item {t}</title><link>http://example.invalid/{n}</link><description>{d}</description></item>"
    (feeds / "xxe_file.xml").write_text(
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        f'<rss version="2.0"><channel><title>F &xxe;</title>'
        + item.format(t="&xxe;", n=1, d="Body &xxe; one")
        + "</channel></rss>",
        encoding="utf-8",
    )
    (feeds / "xxe_http.xml").write_text(
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "{base}/ent">]>'
        f'<rss version="2.0"><channel><title>H</title>'
        + item.format(t="&xxe;", n=2, d="Body &xxe; two")
        + "</channel></rss>",
        encoding="utf-8",
    )
    (feeds / "dtd.xml").write_text(
        f'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "{base}/dtd">'
        f'<rss version="2.0"><channel><title>D</title>'
        + item.format(t="&leak;", n=3, d="Body &leak; three")
        + "</channel></rss>",
        encoding="utf-8",
    )
    (feeds / "param.xml").write_text(
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY % p SYSTEM "{base}/dtd"> %p;]>'
        f'<rss version="2.0"><channel><title>P</title>'
        + item.format(t="&leak;", n=4, d="Body four")
        + "</channel></rss>",
        encoding="utf-8",
    )
    lol = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    (feeds / "billion_laughs.xml").write_text(
        f'<?xml version="1.0"?><!DOCTYPE rss [{lol}]><rss version="2.0"><channel><title>L</title>'
        + item.format(t="&lol9;", n=5, d="Body &lol9; five")
        + "</channel></rss>",
        encoding="utf-8",
    )
    rows, rejects = _run(tmp_path, etl_cli, [str(feeds)])
    assert handler.hits == []  # neither the entity URL nor the DTD was requested
    everything = repr(rows) + repr(rejects)
    for leak in ("FILE-ENTITY-LEAK", "NETWORK-ENTITY-LEAK", "DTD-LEAK"):
        assert leak not in everything
    assert "lollollol" not in everything
    assert max(len(r["text"]) for r in rows) < 1000
    assert len(rows) + len(rejects) >= 5
    assert {r["uri"] for r in rows} >= {f"http://example.invalid/{n}" for n in (1, 2, 3, 4)}


# --- fetch = true --------------------------------------------------------------------------


@pytest.mark.slow
def test_fetch_downloads_each_page(tmp_path, etl_cli, server):
    handler, base = server
    handler.pages["/clio"] = (200, "text/html; charset=iso-8859-1", HTML_PAGE.read_bytes())
    handler.pages["/feed.xml"] = (
        200,
        "application/rss+xml",
        (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Music</title>'
            f"<item><title>Leslie Clio</title><link>{base}/clio</link>"
            "<description>Short teaser.</description><pubDate>Fri, 04 Feb 2022 09:00:00 +0100</pubDate></item>"
            f"<item><title>Gone</title><link>{base}/missing</link><description>Only the teaser.</description></item>"
            "</channel></rss>"
        ).encode(),
    )
    # the feed itself is remote too
    rows, rejects = _run(tmp_path, etl_cli, [f"{base}/feed.xml"], fetch=True, retries=1)
    assert rejects == []
    clio = _by_title(rows, "Leslie Clio")
    assert "Zuvor hatte die Sängerin und Songschreiberin" in clio["text"]
    assert clio["meta"]["fetched"] == "true" and clio["meta"]["page_encoding"] == "cp1252"
    assert clio["published_at"] == datetime(2022, 2, 4, 8, 0, tzinfo=UTC)
    assert clio["publisher"] == "Music"
    gone = _by_title(rows, "Gone")
    assert gone["text"] == "Only the teaser."
    assert gone["meta"]["fetch_error"].startswith("HTTP 404")
    # a 404 is retried (as etl.inputs does for remote inputs), then given up
    assert handler.hits.count("/missing") == 2 and handler.hits.count("/clio") == 1
    assert handler.hits.count("/feed.xml") == 1


# --- CLI -----------------------------------------------------------------------------------


def test_validate_catches_misspelt_option(tmp_path, etl_cli):
    run_etl, _, _ = etl_cli
    pipeline = _pipeline(tmp_path, [str(FEEDS / "trafilatura")], fecth=True)
    proc = run_etl("validate", str(pipeline))
    assert proc.returncode == 2
    assert "plugin 'feed'" in proc.stderr and "unknown option 'fecth'" in proc.stderr
    assert "fetch" in proc.stderr


@pytest.mark.slow  # a process of its own
def test_plugins_lists_feed(etl_cli):
    run_etl, _, _ = etl_cli
    proc = run_etl("plugins")
    assert proc.returncode == 0, proc.stderr
    assert "source feed" in proc.stdout and "etl-feed" in proc.stdout
    assert "fetch: bool = False" in proc.stdout and "retries: int" in proc.stdout


@pytest.mark.slow
def test_missing_parser_is_one_clear_error(tmp_path):
    """Without feedparser the plugin says what to install (exit 2, no traceback)."""
    import subprocess
    import sys

    pipeline = _pipeline(tmp_path, [str(FEEDS / "trafilatura")])
    code = (
        "import sys; sys.modules['feedparser'] = None; from etl.cli import main; "
        f"sys.argv = ['etl', 'validate', {str(pipeline)!r}]; main()"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "plugin 'feed' needs the package feedparser" in proc.stderr
    assert "./plugins/etl-feed" in proc.stderr and "Traceback" not in proc.stderr
