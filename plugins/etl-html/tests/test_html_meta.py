"""Units of etl_html_meta: the headline a page shows, and author names as people write them.

Each rule is shown on a small hand-written page: the rules read structure (an ``<h1>``, a
separator, the publisher's own name), never one site's markup.
"""

from __future__ import annotations

import etl_html
import lxml.html
from etl_html_meta import clean_authors, is_publisher_name, site_names, strip_site_name
from etl_html_page import page_metadata

ARTICLE = "".join(
    f"<p>Paragraph {i} of the article says something long enough to be kept by the extractor, "
    f"with several words and a full stop at its end.</p>"
    for i in range(8)
)


def _meta(head: str, body: str = "") -> dict:
    page = f"<html><head>{head}</head><body>{body}{ARTICLE}</body></html>"
    return page_metadata(lxml.html.document_fromstring(page))


# --- titles -------------------------------------------------------------------------------


def test_the_h1_headline_wins_over_a_title_with_the_site_name_around_it():
    found = _meta(
        '<meta property="og:title" content="Opinion | Republicans follow the leader nowhere">',
        "<h1>Republicans follow the leader nowhere</h1>",
    )
    assert found["title"] == "Republicans follow the leader nowhere"
    found = _meta(
        "<title>News - Elder: from the ghetto to Augusta</title>",
        "<h1>Elder: from the ghetto to Augusta</h1>",
    )
    assert found["title"] == "Elder: from the ghetto to Augusta"


def test_the_h1_headline_wins_over_a_shortened_or_reworded_seo_title():
    # the declared title cut short: the headline holds all of it
    found = _meta(
        '<meta property="og:title" content="Hunter diagnosed with plague after eating a">',
        "<h1>Hunter diagnosed with plague after eating a rabbit in Beijing</h1>",
    )
    assert found["title"] == "Hunter diagnosed with plague after eating a rabbit in Beijing"
    # the same words put differently for search engines
    found = _meta(
        '<meta property="og:title" content="Skyrim running speed how to increase">',
        "<h1>Skyrim (PC): how to increase your running speed</h1>",
    )
    assert found["title"] == "Skyrim (PC): how to increase your running speed"


def test_an_h1_that_is_not_the_headline_is_not_taken():
    og = '<meta property="og:title" content="Woman attacks inspector with stone at station">'
    # a log-in box, a section name, the site's logo: no words shared with the title
    assert _meta(og, "<h1>Log In</h1>")["title"].startswith("Woman attacks")
    assert _meta(og, "<h1>Politics</h1>")["title"].startswith("Woman attacks")
    site = '<meta property="og:site_name" content="Example News">'
    assert _meta(og + site, "<h1>Example News</h1>")["title"].startswith("Woman attacks")
    # the h1 is the headline without its kicker ("Elder:"), which the title keeps
    found = _meta(
        '<meta property="og:title" content="Elder: from the ghetto to Augusta">',
        "<h1>from the ghetto to Augusta</h1>",
    )
    assert found["title"] == "Elder: from the ghetto to Augusta"


def test_the_first_h1_that_is_the_headline_among_several():
    found = _meta(
        '<meta property="og:title" content="Nigeria: a rocket attack kills 31 | World News">',
        "<h1>World News</h1><h1>Nigeria: a rocket attack kills 31 people</h1><h1>Most read</h1>",
    )
    assert found["title"] == "Nigeria: a rocket attack kills 31 people"


def test_no_h1_and_a_site_suffix_naming_the_publisher_is_dropped():
    site = '<meta property="og:site_name" content="La Stampa">'
    og = '<meta property="og:title" content="Polar cold front reaches the south - La Stampa">'
    assert _meta(site + og)["title"] == "Polar cold front reaches the south"
    # a suffix that is not the site's name is part of the title
    og = '<meta property="og:title" content="Polar cold front - what it means for you">'
    assert _meta(site + og)["title"] == "Polar cold front - what it means for you"


def test_strip_site_name():
    names = {"Sky News", "sky.com"}
    assert strip_site_name("Mourinho agrees deal | UK News | Sky News", names) == (
        "Mourinho agrees deal | UK News"
    )
    assert strip_site_name("Sky News | Mourinho agrees deal", names) == "Mourinho agrees deal"
    # a colon without a space before it is a kicker ("Elder: ..."), not a separator
    assert strip_site_name("Sky News: the deal", names) == "Sky News: the deal"
    assert strip_site_name("Sky News", names) == "Sky News"  # nothing would be left
    assert strip_site_name("Mourinho - the deal", set()) == "Mourinho - the deal"


def test_a_page_without_a_declared_title_declares_none():
    # trafilatura reads <title> and <h1> itself; page_metadata does not guess
    assert "title" not in _meta("<title>Some page</title>", "<h1>Some other headline here</h1>")


# --- authors -------------------------------------------------------------------------------


def test_bylines_lose_their_leading_by():
    assert clean_authors(["By Jane Doe"]) == ["Jane Doe"]
    assert clean_authors(["BY JANE DOE"]) == ["JANE DOE"]
    assert clean_authors(["Von Hans Meier"]) == ["Hans Meier"]
    assert clean_authors(["Par Jean Dupont"]) == ["Jean Dupont"]
    assert clean_authors(["Auteur : Jean Dupont"]) == ["Jean Dupont"]
    assert clean_authors(["Auteur Jean Dupont"]) == ["Jean Dupont"]
    assert clean_authors(["Written by: Ann Lee"]) == ["Ann Lee"]
    # a name that only starts like a prefix keeps it
    assert clean_authors(["Byron Smith"]) == ["Byron Smith"]
    assert clean_authors(["Parker Jones"]) == ["Parker Jones"]
    assert clean_authors(["By"]) == []


def test_bylines_lose_a_trailing_publisher_or_agency():
    assert clean_authors(["Jane Doe, CNN"], {"CNN"}) == ["Jane Doe"]
    assert clean_authors(["Jane Doe, Reuters"]) == ["Jane Doe"]
    assert clean_authors(["Jane Doe (AFP)"]) == ["Jane Doe"]
    assert clean_authors(["Jane Doe | Example News"], {"Example News"}) == ["Jane Doe"]
    # a trailing word that is neither publisher nor agency stays
    assert clean_authors(["Doe, Jane"]) == ["Doe, Jane"]
    # an agency on its own is the byline
    assert clean_authors(["PAP", "Rafał Guz"]) == ["PAP", "Rafał Guz"]


def test_bylines_split_on_and_and_drop_duplicates():
    assert clean_authors(["By Jane Doe and John Roe"]) == ["Jane Doe", "John Roe"]
    assert clean_authors(["Jane Doe", "jane doe"]) == ["Jane Doe"]


def test_is_publisher_name():
    names = {"Badische Zeitung", "badische-zeitung.de"}
    assert is_publisher_name("BZ-Redaktion Badische Zeitung", names) is False
    assert is_publisher_name("badische zeitung", names)
    assert is_publisher_name("Badische-Zeitung.de", names)
    assert not is_publisher_name("Jane Doe", names)


def test_a_person_wins_over_the_publisher_as_author():
    ld = (
        '<script type="application/ld+json">{"@type": "NewsArticle", "headline": "H",'
        ' "author": {"@type": "Organization", "name": "Example News"}}</script>'
    )
    site = '<meta property="og:site_name" content="Example News">'
    person = '<meta name="author" content="By Jane Doe">'
    assert _meta(ld + site + person)["authors"] == ["Jane Doe"]
    # the publisher alone stays: nothing better is declared
    assert _meta(ld + site)["authors"] == ["Example News"]


def test_extract_takes_a_visible_byline_over_the_publisher():
    page = (
        '<html><head><meta property="og:site_name" content="Example News">'
        '<meta name="author" content="Example News">'
        '<meta property="og:title" content="A long enough headline for the test"></head>'
        "<body><article><h1>A long enough headline for the test</h1>"
        '<div class="author">By Jane Doe</div>'
        f"{ARTICLE}</article></body></html>"
    ).encode()
    found = etl_html.extract(page)
    assert found["authors"] == ["Jane Doe"]
    assert found["publisher"] == "Example News"


def test_and_splits_only_between_names():
    assert clean_authors(["The Russian and Syrian defense ministries"]) == [
        "The Russian and Syrian defense ministries"
    ]
    assert clean_authors(["Christoph von Ritter und Anna Maier"]) == [
        "Christoph von Ritter",
        "Anna Maier",
    ]


def test_the_host_names_the_site_too():
    names = site_names(None, "https://edition.cnn.com/2021/03/14/story")
    assert is_publisher_name("CNN", names)
    assert is_publisher_name("bbc", site_names(None, "https://www.bbc.co.uk/news/x"))
    assert clean_authors(["By Jane Doe, CNN"], names) == ["Jane Doe"]
    assert strip_site_name("Headline here | Yle Uutiset | yle.fi", {"Yle Uutiset", "yle.fi"}) == (
        "Headline here"
    )
