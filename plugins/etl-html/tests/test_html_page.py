"""Units of etl_html_page (declared metadata, the link-dense block filter) and the eval split."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path

import etl_html
import lxml.html
from etl_html_page import page_metadata, parse_declared_date, split_names

PKG = Path(__file__).resolve().parents[1]

PAGE = """<html><head>
<title>Site | Headline</title>
<meta property="og:title" content="OG headline">
<meta property="og:site_name" content="The Daily Example">
<meta name="author" content="Ann Author; Bob Writer">
<meta property="article:published_time" content="2021-03-14T09:30:00+01:00">
<script type="application/ld+json">{not json</script>
<script type="application/ld+json">
{"@context": "https://schema.org", "@graph": [
  {"@type": "WebPage", "datePublished": "2000-01-01", "headline": "the page"},
  {"@type": "NewsArticle", "headline": "JSON-LD headline",
   "datePublished": "2021-03-13T23:15:00-05:00",
   "author": [{"@type": "Person", "name": "Carla Columnist"}, "https://example.org/staff"],
   "publisher": {"@type": "Organization", "name": "Example Media"}}]}
</script></head><body><p>Body.</p></body></html>"""


def test_parse_declared_date_keeps_the_offset_and_gives_utc():
    moment, written = parse_declared_date("2021-03-14T09:30:00+0100")
    assert moment == datetime(2021, 3, 14, 8, 30, tzinfo=UTC)
    assert written == "2021-03-14T09:30:00+01:00"
    assert parse_declared_date("2021-03-14") == (datetime(2021, 3, 14, tzinfo=UTC), "2021-03-14")
    assert parse_declared_date("2021-03-14T09:30Z")[1] == "2021-03-14T09:30:00+00:00"
    assert parse_declared_date("14 March 2021") is None
    assert parse_declared_date("2021-02-30") is None  # no such day


def test_json_ld_article_wins_over_webpage_and_meta_tags():
    found = page_metadata(lxml.html.document_fromstring(PAGE))
    # the Article's date (US Eastern evening = next day 04:15 UTC), not the WebPage's
    assert found["published_at"] == datetime(2021, 3, 14, 4, 15, tzinfo=UTC)
    assert found["published"] == "2021-03-13T23:15:00-05:00"
    assert found["date_source"] == "json-ld NewsArticle"
    assert found["title"] == "JSON-LD headline"
    assert found["authors"] == ["Carla Columnist"]  # the URL is not a name
    assert found["publisher"] == "The Daily Example"  # og:site_name: the site's own name
    page = PAGE.replace('<meta property="og:site_name" content="The Daily Example">', "")
    assert page_metadata(lxml.html.document_fromstring(page))["publisher"] == "Example Media"


def test_meta_tags_when_there_is_no_json_ld():
    page = PAGE.split('<script type="application/ld+json">\n')[0] + "</head><body></body></html>"
    found = page_metadata(lxml.html.document_fromstring(page))
    assert found["published"] == "2021-03-14T09:30:00+01:00"
    assert found["date_source"] == "meta article:published_time"
    assert found["title"] == "OG headline"
    assert found["authors"] == ["Ann Author", "Bob Writer"]
    assert found["publisher"] == "The Daily Example"


def test_split_names():
    assert split_names("'Luana Patriolino, Raphael Felice'") == [
        "Luana Patriolino",
        "Raphael Felice",
    ]
    assert split_names("Doe, Jane") == ["Doe, Jane"]
    assert split_names("Ann Author | Bob Writer;") == ["Ann Author", "Bob Writer"]


def test_a_page_without_declarations_declares_nothing():
    assert page_metadata(lxml.html.document_fromstring("<p>Just text.</p>")) == {}


ARTICLE = "".join(
    f"<p>Paragraph {i} of the article says something long enough to be kept by the extractor, "
    f"with several words and a full stop at its end.</p>"
    for i in range(8)
)
RELATED = (
    '<p>Read more: <a href="/a">the related story that everyone clicked on today, '
    "with its long headline</a></p>"
)


def test_auto_drops_link_dense_blocks_that_trafilatura_keeps():
    page = (
        f"<html><body><article><h1>Headline</h1>{ARTICLE[:600]}{RELATED}{ARTICLE[600:]}"
        "</article></body></html>"
    ).encode()
    kept = etl_html.extract(page, favor="precision")
    assert "Read more: the related story" in kept["text"]  # the case the filter is for
    auto = etl_html.extract(page)
    assert "Read more" not in auto["text"]
    assert "Paragraph 7 of the article" in auto["text"]
    assert auto["metadata"]["extraction"] == "auto: precision"


def _eval_module():
    spec = importlib.util.spec_from_file_location("etl_html_eval", PKG / "eval_extraction.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_split_by_site_is_fixed_and_keeps_sites_apart():
    ev = _eval_module()
    cases = ev.load_cases()
    halves: dict[str, set[str]] = {}
    for case in cases:
        halves.setdefault(case["site"], set()).add(case["half"])
    assert all(len(h) == 1 for h in halves.values())  # no site in both halves
    # linknaija.com is in two gold sets: one half for both
    assert len(halves["linknaija.com"]) == 1
    assert ev.site({"url": "https://edition.cnn.com/x", "page": Path("x")}) == "cnn.com"
    assert ev.site({"url": "https://www.bbc.co.uk/x", "page": Path("x")}) == "bbc.co.uk"
    heldout = sum(c["half"] == "heldout" for c in cases)
    assert 25 <= heldout <= 38
    # the split is the one docs/extraction.md reports: a change to it must show up here
    assert sorted(s for s, h in halves.items() if "heldout" in h)[:4] == [
        "appleinsider.com",
        "autoracing.com.br",
        "badische-zeitung.de",
        "bostonherald.com",
    ]


def test_auto_drops_a_bracketed_link_inside_a_paragraph():
    more = '<p>A sentence of the article ends here. <b>[<a href="/more">read more</a>]</b></p>'
    page = f"<html><body><article>{ARTICLE[:600]}{more}{ARTICLE[600:]}</article></body></html>"
    auto = etl_html.extract(page.encode())
    assert "A sentence of the article ends here." in auto["text"]
    assert "read more" not in auto["text"] and "[" not in auto["text"]
    assert "read more" in etl_html.extract(page.encode(), favor="precision")["text"]
