"""The html source through the real CLI on every corpora page, its quality floor, and units."""

from __future__ import annotations

import codecs
import http.server
import importlib.util
import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import etl_html
import pytest

from etl.inputs import strip_compression_suffix

DATA = Path(__file__).resolve().parent / "data"
HTML = DATA / "html"
PKG = Path(__file__).resolve().parents[1]

# Measured with eval_extraction.py (docs/extraction.md); the floor is a little below, so a
# change in extraction that loses text or lets boilerplate in fails here.
FLOOR = {
    "with_share": 0.92,
    "without_share": 0.93,
    "token_f1": 0.97,
    "date_share": 0.83,
    "title_share": 0.92,
    "authors_share": 0.8,
}
FLOOR_F1 = {"scrapinghub": 0.98, "newspaper4k": 0.90}


def _eval_module():
    spec = importlib.util.spec_from_file_location("etl_html_eval", PKG / "eval_extraction.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pages() -> set[str]:
    return {
        str(p)
        for p in HTML.rglob("*")
        if p.is_file()
        and any(
            Path(strip_compression_suffix(p.name)).match(pat) for pat in etl_html.DEFAULT_INCLUDE
        )
    }


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory, etl_cli, per_input):
    """One `etl run` over every page of the html corpora (shared by the tests below)."""
    run_etl, read_dataset, read_rejects = etl_cli
    tmp = tmp_path_factory.mktemp("html")
    pipeline = tmp / "html.toml"
    pipeline.write_text(
        f'[[sources]]\nplugin = "html"\npaths = ["{HTML}"]\n\n'
        f'[sink]\nplugin = "parquet"\npath = "{tmp / "ds"}"\n',
        encoding="utf-8",
    )
    proc = run_etl("run", str(pipeline), timeout=600)
    assert proc.returncode == 0, proc.stderr
    table = read_dataset(tmp / "ds")
    rows = table.to_pylist()
    for row in rows:
        row["meta"] = dict(row["metadata"] or [])
    by_input = {row["meta"]["input"]: row for row in rows}
    rejects = read_rejects(tmp / "ds").to_pylist()
    return by_input, rejects, per_input(tmp / "ds")


@pytest.mark.slow
def test_every_page_is_a_row_or_a_reject(corpus_run):
    by_input, rejects, accounting = corpus_run
    rejected = {r["input"]: r for r in rejects}
    assert set(accounting) == _pages()
    for row in accounting.values():
        assert row["complete"] and row["written"] + row["duplicates"] + row["rejected"] == 1, row
    assert not set(by_input) & set(rejected)
    assert all(r["reason"] for r in rejects)
    # one scrapinghub page is the very article of newspaper4k/article_with_divs.html: same
    # text, same id, kept once
    dupes = [p for p, row in accounting.items() if row["duplicates"]]
    assert len(dupes) == 1 and dupes[0].endswith(
        "34a7328535ad4e60b059f81d37eec5d25c2bc8de759ce9a7b5e47ac7dc6fd1b0.html.gz"
    )
    # the one non-article page: a bare meta-refresh redirect
    refresh = rejected[str(HTML / "newspaper4k" / "google_meta_refresh.html")]
    assert refresh["reason"] == "no article text"
    assert len(by_input) == len(_pages()) - 2


@pytest.mark.slow
def test_extraction_quality_floor(corpus_run):
    by_input = corpus_run[0]
    ev = _eval_module()
    cases = ev.load_cases(HTML)
    assert len(cases) == 63
    texts = {k: row["text"] for k, row in by_input.items()}
    # a page whose article was already written (same text) is not a row of its own
    dupes = [case for case in cases if corpus_run[2][str(case["page"])]["duplicates"]]
    fields = {k: ev.page_fields({**row, "metadata": row["meta"]}) for k, row in by_input.items()}
    texts.update(ev.extract_all(dupes, fields))
    scores = ev.score(cases, texts, fields)
    overall = scores["all"]
    for key, floor in FLOOR.items():
        assert overall[key] >= floor, (key, overall[key], ev.table(scores))
    for name, floor in FLOOR_F1.items():
        assert scores[name]["token_f1"] >= floor, (name, ev.table(scores))


@pytest.mark.slow
def test_gold_metadata(corpus_run):
    by_input = corpus_run[0]
    trafi = HTML / "trafilatura"
    clio = by_input[str(trafi / "mix1.de-clio.html")]
    assert clio["title"].startswith("Leslie Clio")
    assert clio["published_at"] == datetime(2022, 2, 4, tzinfo=UTC)
    assert clio["publisher"] == "mix1.de"
    assert clio["uri"] == "https://www.mix1.de/music/leslie-clio/brave-new-woman/"
    assert clio["language"] == "de"
    # declared iso-8859-1 is read as windows-1252, as browsers do
    assert clio["meta"]["encoding"] == "cp1252"
    assert "Zuvor hatte die Sängerin und Songschreiberin" in clio["text"]
    rp = by_input[
        str(trafi / "Unijne fundusze coraz bliżej. Sejm zagłosował _za_ - Polityka - rp.pl.html")
    ]
    assert rp["authors"] == ["PAP", "Rafał Guz"]
    assert rp["publisher"] == "Rzeczpospolita"
    assert rp["meta"]["encoding"] == "cp1250"
    spanish = by_input[str(HTML / "newspaper4k" / "spanish_article.html")]
    meta = json.loads((HTML / "newspaper4k" / "spanish_article.meta.json").read_text("utf-8"))
    assert spanish["title"].startswith(meta["title"])
    assert spanish["language"] == "es"
    # the date as the page declares it (JSON-LD, with its offset) and its UTC instant
    naija = by_input[str(HTML / "newspaper4k" / "article_with_divs.html")]
    assert naija["published_at"] == datetime(2018, 10, 6, 6, 57, tzinfo=UTC)
    assert naija["meta"]["date"] == "2018-10-06T08:57:00+02:00"
    assert naija["meta"]["date_source"] == "json-ld BlogPosting"
    assert naija["authors"] == ["LinkNaija"] and naija["publisher"].startswith("LinkNaija")
    # a page without a canonical URL keeps its file path as uri
    golf = by_input[str(trafi / "golf.de-augusta.html")]
    assert golf["uri"] == str(trafi / "golf.de-augusta.html")
    assert golf["meta"]["encoding_source"] == "bom"
    # gzip-compressed pages, found by magic bytes
    gz = [k for k in by_input if k.endswith(".html.gz")]
    assert len(gz) == 29  # and one duplicate


@pytest.mark.slow
def test_mislabeled_utf8_pages_keep_their_text(corpus_run):
    """Pages that declare UTF-8 but hold a few invalid bytes: UTF-8, bad bytes replaced."""
    by_input = corpus_run[0]
    page = by_input[str(HTML / "trafilatura" / "tierschutzpartei.de-wildvogelauffang.html")]
    assert page["meta"]["encoding"] == "utf-8"
    assert page["meta"]["encoding_errors"] == "4"
    gold = json.loads(
        (HTML / "trafilatura" / "tierschutzpartei.de-wildvogelauffang.gold.json").read_text("utf-8")
    )["entries"][0]
    for snippet in gold["with"]:
        assert " ".join(snippet.split()) in " ".join(page["text"].split())
    assert "Ã" not in page["text"]  # no mojibake from a wrong whole-page guess


# --- decoding, without trafilatura ---------------------------------------------------------


def test_decode_bom_wins_over_meta():
    data = codecs.BOM_UTF8 + '<meta charset="iso-8859-1"><p>Grüße</p>'.encode()
    text, meta = etl_html.decode_html(data)
    assert "Grüße" in text and meta["encoding_source"] == "bom"


def test_decode_meta_and_http_equiv_and_http_header():
    body = "<p>Příliš žluťoučký kůň</p>"
    data = f'<meta http-equiv="Content-Type" content="text/html; charset=windows-1250">{body}'
    text, meta = etl_html.decode_html(data.encode("cp1250"))
    assert body in text and meta == {"encoding": "cp1250", "encoding_source": "declared"}
    text, meta = etl_html.decode_html(body.encode("iso-8859-2"), http_charset="iso-8859-2")
    assert body in text and meta["encoding_source"] == "http"


def test_decode_lying_declaration_falls_back_to_detection():
    body = "<p>" + "Ça coûte très cher à Noël, déjà élevé. " * 40 + "</p>"
    data = ('<meta charset="utf-8">' + body).encode("cp1252")
    text, meta = etl_html.decode_html(data)
    assert meta["encoding_source"] == "detected" and meta["declared_encoding"] == "utf-8"
    assert "très cher à Noël" in text


def test_decode_unknown_label_and_no_label():
    data = '<meta charset="x-bogus"><p>Grüße aus Köln, schöne Straße</p>'.encode("cp1252")
    text, meta = etl_html.decode_html(data)
    assert meta["encoding_source"] == "detected" and "Köln" in text
    with pytest.raises(etl_html.NoArticle) as info:
        etl_html.decode_html(b"\x00\x01\x02binary\x00" * 10)
    assert info.value.reason == "binary file"


def test_html_to_text_keeps_blocks_drops_tags():
    text = etl_html.html_to_text(
        "<p>Hello <b>world</b> &amp; co</p><script>evil()</script><ul><li>one</li><li>two</li></ul>"
    )
    assert text == "Hello world & co\n\none\n\ntwo"


# --- remote pages ---------------------------------------------------------------------------


@pytest.mark.slow
def test_pages_from_urls(tmp_path, etl_cli):
    """A URL in `paths` is fetched through etl.inputs (real server on 127.0.0.1)."""
    run_etl, read_dataset, read_rejects = etl_cli
    page = (HTML / "trafilatura" / "mix1.de-clio.html").read_bytes()
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            hits.append(self.path)
            ok = self.path == "/clio.html"
            body = page if ok else b"gone"
            self.send_response(200 if ok else 410)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        pipeline = tmp_path / "p.toml"
        pipeline.write_text(
            f'[[sources]]\nplugin = "html"\npaths = ["{base}/clio.html", "{base}/gone.html"]\n'
            f'retries = 0\n\n[sink]\nplugin = "parquet"\npath = "{tmp_path / "ds"}"\n',
            encoding="utf-8",
        )
        proc = run_etl("run", str(pipeline))
    finally:
        srv.shutdown()
        srv.server_close()
    assert proc.returncode == 0, proc.stderr
    rows = read_dataset(tmp_path / "ds").to_pylist()
    assert len(rows) == 1 and "Zuvor hatte die Sängerin" in rows[0]["text"]
    assert dict(rows[0]["metadata"])["input"] == f"{base}/clio.html"
    rejects = read_rejects(tmp_path / "ds").to_pylist()
    assert [r["input"] for r in rejects] == [f"{base}/gone.html"]
    assert "410" in rejects[0]["reason"] + (rejects[0]["detail"] or "")


# --- CLI: validate and plugins ---------------------------------------------------------------


def test_validate_catches_misspelt_option(tmp_path, etl_cli):
    run_etl, _, _ = etl_cli
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(
        f'[[sources]]\nplugin = "html"\npaths = ["{HTML / "newspaper4k"}"]\nfavour = "precision"\n\n'
        f'[sink]\nplugin = "parquet"\npath = "{tmp_path / "ds"}"\n',
        encoding="utf-8",
    )
    proc = run_etl("validate", str(pipeline))
    assert proc.returncode == 2
    assert "plugin 'html'" in proc.stderr and "unknown option 'favour'" in proc.stderr
    assert "favor" in proc.stderr


@pytest.mark.slow  # a process of its own
def test_plugins_lists_html(etl_cli):
    run_etl, _, _ = etl_cli
    proc = run_etl("plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    assert '"html"' in proc.stdout and "etl-html" in proc.stdout


@pytest.mark.slow
def test_missing_extractor_is_one_clear_error(tmp_path):
    """Without trafilatura the plugin says what to install (exit 2, no traceback)."""
    import subprocess
    import sys

    pipeline = tmp_path / "p.toml"
    pipeline.write_text(
        f'[[sources]]\nplugin = "html"\npaths = ["{HTML / "newspaper4k"}"]\n\n'
        f'[sink]\nplugin = "parquet"\npath = "{tmp_path / "ds"}"\n',
        encoding="utf-8",
    )
    code = (
        "import sys; sys.modules['trafilatura'] = None; from etl.cli import main; "
        f"sys.argv = ['etl', 'validate', {str(pipeline)!r}]; main()"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "plugin 'html' needs the package trafilatura" in proc.stderr
    assert "pip install ./plugins/etl-html" in proc.stderr and "Traceback" not in proc.stderr
