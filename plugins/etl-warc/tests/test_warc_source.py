"""The warc source through the real CLI: corpora archives, damaged records, CLI checks."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"
WARC = DATA / "warc"
PAGE = "<html><head><title>{t}</title></head><body><article><h1>{t}</h1>{p}</article></body></html>"


def _pipeline(tmp: Path, paths: list[str], extra: str = "") -> Path:
    quoted = ", ".join(f'"{p}"' for p in paths)
    pipeline = tmp / "warc.toml"
    pipeline.write_text(
        f'[[sources]]\nplugin = "warc"\npaths = [{quoted}]\n{extra}\n'
        f'[sink]\nplugin = "parquet"\npath = "{tmp / "ds"}"\n',
        encoding="utf-8",
    )
    return pipeline


def _run(tmp: Path, etl_cli, paths: list[str]):
    run_etl, read_dataset, read_rejects = etl_cli
    proc = run_etl("run", str(_pipeline(tmp, paths)), timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = read_dataset(tmp / "ds").to_pylist()
    for row in rows:
        row["meta"] = dict(row["metadata"] or [])
    return rows, read_rejects(tmp / "ds").to_pylist()


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory, etl_cli, per_input):
    tmp = tmp_path_factory.mktemp("warc")
    rows, rejects = _run(tmp, etl_cli, [str(WARC)])
    return rows, rejects, per_input(tmp / "ds")


@pytest.mark.slow
def test_every_archive_is_rows_or_rejects(corpus_run):
    rows, rejects, accounting = corpus_run
    files = {str(p) for p in WARC.rglob("*") if p.is_file()}
    assert set(accounting) == files
    for row in accounting.values():
        assert row["complete"] and row["written"] + row["duplicates"] + row["rejected"] >= 1, row
    by_file = {}
    for r in rejects:
        by_file.setdefault(Path(r["input"]).name, []).append(r)
    wrong = by_file["example-wrong-chunks.warc.gz"]
    corrupt = [r for r in wrong if r["reason"] == "corrupt record"]
    assert corrupt and corrupt[0]["location"].startswith("offset ")
    assert by_file["example-url-agnostic-revisit.warc.gz"][0]["reason"] == "no HTML responses"
    assert by_file["post-test.warc.gz"][0]["reason"] == "no HTML responses"
    # a response whose Content-Length overshoots what follows it: a reject, not a row
    trunc = by_file["example-trunc.warc"]
    assert [(r["reason"], r["location"]) for r in trunc] == [("truncated record", "offset 1197")]
    assert accounting[str(WARC / "warcio" / "example-trunc.warc")]["written"] == 0
    # ARC with a space in the URL field (and a length 12 bytes over): still read
    space = accounting[str(WARC / "warcio" / "example-space-in-url.arc")]
    assert space["written"] + space["duplicates"] == 1 and space["rejected"] == 0


@pytest.mark.slow
def test_response_records_become_articles(corpus_run):
    rows = corpus_run[0]
    cc = [r for r in rows if r["uri"] == "https://creativecommons.org/"]
    # the page's <title> is "Homepage - Creative Commons"; the site's name is dropped from
    # a title (etl_html_meta), as on any html page
    assert cc and cc[0]["title"] == "Homepage"
    assert cc[0]["meta"]["warc_date"].startswith("20")
    assert cc[0]["meta"]["http_status"] == "200"
    iana = [r for r in rows if r["uri"] == "http://www.iana.org/"]
    assert iana and "Internet Assigned Numbers Authority" in iana[0]["title"]
    # ARC files (plain and gzipped) and a chunk-encoded body
    example = [r for r in rows if r["title"] == "Example Domain"]
    assert example and "illustrative examples" in example[0]["text"]
    assert len([r for r in rows if r["meta"].get("warc_date")]) == len(rows)


def _record(writer, uri: str, html: str) -> None:
    from warcio.statusandheaders import StatusAndHeaders

    http = StatusAndHeaders(
        "200 OK", [("Content-Type", "text/html; charset=utf-8")], protocol="HTTP/1.1"
    )
    record = writer.create_warc_record(
        uri, "response", payload=io.BytesIO(html.encode("utf-8")), http_headers=http
    )
    writer.write_record(record)


def _archive(pages: list[tuple[str, str]], gzipped: bool = True) -> list[bytes]:
    from warcio.warcwriter import WARCWriter

    parts = []
    for uri, html in pages:
        buf = io.BytesIO()
        _record(WARCWriter(buf, gzip=gzipped), uri, html)
        parts.append(buf.getvalue())
    return parts


def _body(n: int) -> str:
    sentence = f"Paragraph about event number {n} with plenty of words to count as an article. "
    return "".join(f"<p>{sentence * 4}</p>" for _ in range(4))


@pytest.mark.slow
def test_corrupt_record_is_rejected_and_reading_goes_on(tmp_path, etl_cli):
    pages = [(f"http://news.test/{n}", PAGE.format(t=f"Story {n}", p=_body(n))) for n in range(4)]
    parts = _archive(pages)
    # record 2 is cut in half (a truncated gzip member); records 3 and 4 follow it intact
    damaged = parts[0] + parts[1][: len(parts[1]) // 2] + parts[2] + parts[3]
    (tmp_path / "damaged.warc.gz").write_bytes(damaged)
    # an uncompressed archive whose last record is truncated
    plain = _archive(pages[:2], gzipped=False)
    (tmp_path / "truncated.warc").write_bytes(plain[0] + plain[1][:-200])
    # not a WARC at all
    (tmp_path / "garbage.warc.gz").write_bytes(gzip.compress(b"hello, I am not an archive\n" * 50))
    # a gzipped archive that ends inside its second record
    (tmp_path / "cut.warc.gz").write_bytes(parts[0] + parts[1][: len(parts[1]) // 2])
    rows, rejects = _run(tmp_path, etl_cli, [str(tmp_path / "*.warc*")])
    titles = [r["title"] for r in rows]
    assert {"Story 0", "Story 2", "Story 3"} == set(titles)  # Story 0 is in three files: once
    bad = {(Path(r["input"]).name, r["reason"], r["location"]) for r in rejects}
    assert ("damaged.warc.gz", "corrupt record", f"offset {len(parts[0])}") in bad
    assert ("garbage.warc.gz", "not a WARC or ARC file", "offset 0") in bad
    assert ("truncated.warc", "truncated record", f"offset {len(plain[0])}") in bad
    assert ("cut.warc.gz", "truncated record", f"offset {len(parts[0])}") in bad
    assert len([r for r in rejects if r["input"].endswith("damaged.warc.gz")]) == 1


@pytest.mark.slow
def test_a_member_cut_in_half_never_hides_the_records_after_it(tmp_path):
    """How warcio fails on a gzip member cut in half depends on the bytes after the cut: it
    raises at once, raises records later, stops quietly, or reads the cut record on to the
    end of the file. Each archive below differs (record ids and dates are random); every one
    must give records 1, 3 and 4 and one "corrupt record" reject at the cut record."""
    from etl_warc import WarcSource

    from etl.testing import run_source

    pages = [(f"http://news.test/{n}", PAGE.format(t=f"Story {n}", p=_body(n))) for n in range(4)]
    outcomes = set()
    for attempt in range(30):
        parts = _archive(pages)
        name = f"damaged-{attempt}.warc.gz"
        (tmp_path / name).write_bytes(
            parts[0] + parts[1][: len(parts[1]) // 2] + parts[2] + parts[3]
        )
        result = run_source(WarcSource, {"paths": [name]}, tmp_path=tmp_path)
        titles = sorted(result.table.column("title").to_pylist())
        rejects = [(r["reason"], r["location"]) for r in result.rejects.to_pylist()]
        outcomes.add(
            (tuple(titles), tuple(rejects) == (("corrupt record", f"offset {len(parts[0])}"),))
        )
    assert outcomes == {(("Story 0", "Story 2", "Story 3"), True)}


def test_validate_catches_misspelt_option(tmp_path, etl_cli):
    run_etl, _, _ = etl_cli
    pipeline = _pipeline(tmp_path, [str(WARC / "warcio")], "statuss = [200]\n")
    proc = run_etl("validate", str(pipeline))
    assert proc.returncode == 2
    assert "plugin 'warc'" in proc.stderr and "unknown option 'statuss'" in proc.stderr
    assert "statuses" in proc.stderr


@pytest.mark.slow  # a process of its own
def test_plugins_lists_warc(etl_cli):
    run_etl, _, _ = etl_cli
    proc = run_etl("plugins")
    assert proc.returncode == 0, proc.stderr
    assert "source warc" in proc.stdout and "etl-warc" in proc.stdout


@pytest.mark.slow
def test_missing_reader_is_one_clear_error(tmp_path):
    """Without warcio the plugin says what to install (exit 2, no traceback)."""
    import subprocess
    import sys

    pipeline = _pipeline(tmp_path, [str(WARC / "warcio")])
    code = (
        "import sys; sys.modules['warcio'] = None; sys.modules['warcio.archiveiterator'] = None; "
        "from etl.cli import main; "
        f"sys.argv = ['etl', 'validate', {str(pipeline)!r}]; main()"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "plugin 'warc' needs the package warcio" in proc.stderr
    assert "./plugins/etl-warc" in proc.stderr and "Traceback" not in proc.stderr
