"""The headline a page shows and the people who wrote it, from what the page declares.

:func:`etl_html_page.page_metadata` reads a page's declared title and authors (JSON-LD,
Open Graph, meta tags); the rules here make them what a reader sees: the visible ``<h1>``
headline where the declared title is that headline with the site's name around it, cut
short, or reworded for search engines (:func:`headline`); the site's name dropped from a
title (:func:`strip_site_name`); bylines without "By"/"Von"/"Par", without a trailing
", <publisher or agency>", split on "and" (:func:`clean_authors`); the publisher's own name
told apart from a person's (:func:`is_publisher_name`). Every rule reads the page's
structure or the publisher's own name, never one site's markup.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_SPACES = re.compile(r"\s+")
# Scripts written without spaces between words: one token per character (as the eval does).
_CHAR_SCRIPTS = "\u1000-\u109f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CHAR_SCRIPTS}]|[^\W{_CHAR_SCRIPTS}]+")
# what sites put between a headline and their own name or section ("Headline | Site",
# "Opinion | Headline", "Headline - Site", "Headline : CityAM"); a bare "Elder: ..." is a
# kicker, part of the headline, so a colon counts only with spaces on both sides
_SEP = r"(?:\s+(?:[|\-–—:·•»/]|::)|\s*[|｜])"
_SEPARATOR = re.compile(_SEP + r"\s+|\s*[|｜]\s*")
_SEP_END = re.compile(_SEP + r"\s*$")
_SEP_START = re.compile(_SEP + r"(?:\s|$)")
# a headline shorter than this (tokens) is too weak to replace a declared title: "Log In",
# "Politics", a logo
_MIN_HEADLINE_TOKENS = 3
# the share of the shorter text's tokens the other must hold for a reworded title
_MIN_SHARED = 0.6


def _squash(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _key(text: str) -> str:
    """Letters and digits only, case-folded: ``Badische-Zeitung.de`` is ``badischezeitungde``."""
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.casefold())


def site_names(publisher: str | None, url: str | None = None) -> set[str]:
    """The names a site goes by: its declared name and its web address's host."""
    names = {publisher} if publisher else set()
    if url and url.startswith(("http://", "https://")):
        host = url.split("/")[2].split(":")[0].lower().removeprefix("www.")
        if host:
            names.add(host)
    return names


def is_publisher_name(name: str, names: Iterable[str]) -> bool:
    """Whether ``name`` is the site's own name (or its host, with or without the domain).

    Compared on letters and digits only, case-folded: ``Badische Zeitung``,
    ``badische-zeitung.de`` and ``BADISCHE ZEITUNG`` are one name.
    """
    key = _key(name)
    if not key:
        return False
    for other in names:
        keys = {_key(other)}
        if "." in other and " " not in other:  # a host: also its registered name
            keys |= {_key(_registered_name(other)), _key(other.rsplit(".", 1)[0])}
        if key in keys - {""}:
            return True
    return False


# second-level labels under a country's domain: bbc.co.uk is "bbc", not "co"
_SECOND_LEVEL = {"co", "com", "org", "net", "gov", "ac", "ne", "or"}


def _registered_name(host: str) -> str:
    """The name a host is registered under: ``edition.cnn.com`` is ``cnn``."""
    labels = host.lower().split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL:
        return labels[-3]
    return labels[-2] if len(labels) >= 2 else labels[0]


def strip_site_name(title: str, names: Iterable[str]) -> str:
    """``title`` without a leading or trailing part that is the site's name.

    ``Headline | Section | Site`` loses ``| Site`` (a section is not the site's name, so it
    stays); nothing is dropped that would leave the title empty.
    """
    names = set(names)
    if not names:
        return title
    while True:
        parts = _SEPARATOR.split(title)
        seps = _SEPARATOR.findall(title)
        if len(parts) < 2:
            return title
        if is_publisher_name(parts[-1], names):
            title = title[: len(title) - len(parts[-1]) - len(seps[-1])]
        elif is_publisher_name(parts[0], names):
            title = title[len(parts[0]) + len(seps[0]) :]
        else:
            return title


def _shared(a: list[str], b: list[str]) -> float:
    """The share of the shorter token list found in the other."""
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    if not short:
        return 0.0
    pool = set(long_)
    return sum(t in pool for t in short) / len(short)


def _is_headline_of(h1: str, title: str) -> bool:
    """Whether the visible ``h1`` is the headline that the declared ``title`` stands for."""
    h, t = h1.casefold(), title.casefold()
    at = t.find(h)
    if at >= 0:
        # the title is the headline with the site's name or a section around it; a headline
        # that is the title without its kicker ("Elder: ...") does not count
        before, after = t[:at], t[at + len(h) :]
        return (not before or bool(_SEP_END.search(before))) and (
            not after or bool(_SEP_START.match(after))
        )
    if t.rstrip(" .…") in h:
        return True  # the declared title cut short
    return _shared(_tokens(h1), _tokens(title)) >= _MIN_SHARED


def headline(tree: Any, title: str | None, names: Iterable[str] = ()) -> str | None:
    """The page's visible ``<h1>`` headline when it is what the declared ``title`` stands for.

    The first ``<h1>`` (in page order) that is the title with the site's name or a section
    around it, the title's full form where the title was cut short, or the same words put
    differently (at least 60% of the shorter one's words in the other). An ``<h1>`` of fewer
    than three words, or that is the site's name, is not taken. None when no ``<h1>`` fits.

    Args:
        tree: the page as an lxml HTML element tree (read, not changed).
        title: the title the page declares (JSON-LD headline, ``og:title``, ``<title>``).
        names: the site's names (see :func:`site_names`).
    """
    if not title:
        return None
    names = set(names)
    for el in tree.iter("h1"):
        text = _squash("".join(el.itertext()))
        if len(_tokens(text)) < _MIN_HEADLINE_TOKENS or is_publisher_name(text, names):
            continue
        if _is_headline_of(text, _squash(title)):
            return text
    return None


# "By", "Von", "Par", "Por", "Door", "Av", "Af", "Auteur", "Autor", "Written by"... before
# a byline's name, with an optional colon; a whole word, so "Byron" keeps its "By"
_BY = re.compile(
    r"^(?:(?:written|posted|reported|text|story|words)\s+by|by|von|par|por|door|av|af|"
    r"auteure?|autor(?:in)?|author|text|texte|texto)\s*[:：]?\s+",
    re.IGNORECASE,
)
# wire agencies whose name follows a reporter's: "Jane Doe, Reuters", "Jane Doe (AFP)"
_AGENCIES = {
    "ap", "afp", "reuters", "dpa", "ansa", "efe", "kna", "epd", "apa", "sda", "pap", "xinhua",
    "ap news", "associated press", "agence france-presse", "bloomberg", "tass", "ria novosti",
}  # fmt: skip
_TRAILER = re.compile(r"^(.+?)\s*(?:,|\||–|—|\s-)\s*([^,|–—]+?)\s*$|^(.+?)\s*\(([^()]+)\)\s*$")
# lower-case only, and not the one-letter "e"/"y"/"i", which join double surnames
# ("Ortega y Gasset") as often as two people
_AND = re.compile(r"\s+(?:and|und|et|en|og|och|&)\s+")


def clean_authors(names: Iterable[str], site: Iterable[str] = ()) -> list[str]:
    """Author names as a reader would write them, in order, duplicates dropped.

    A leading "By"/"Von"/"Par"/"Auteur :" goes; a trailing ", <the publisher>" or
    ", <wire agency>" (also ``| ...``, ``(...)``) goes; "A and B" is two names. A name that
    is only an agency (``PAP``) stays.

    Args:
        names: author strings as declared or found.
        site: the site's names (see :func:`site_names`), for a trailing publisher.
    """
    site = set(site)
    out: dict[str, str] = {}
    for raw in names:
        name = _squash(raw).strip(" ,;|")
        name = _BY.sub("", name) if _BY.match(name) else name
        if _BY.fullmatch(name + " ") or not name:
            continue
        match = _TRAILER.match(name)
        if match:
            head, tail = (match.group(1), match.group(2)) if match.group(1) else match.group(3, 4)
            if tail.casefold() in _AGENCIES or is_publisher_name(tail, site):
                name = head.strip()
        parts = [p.strip(" ,;") for p in _AND.split(name)]
        # "A and B" is two people only when both look like names (capitalised first and
        # last words): "the Russian and Syrian defense ministries" is not
        if not all(
            len(p.split()) >= 2 and p[0].isupper() and p.split()[-1][0].isupper() for p in parts
        ):
            parts = [name]
        for part in parts:
            if part:
                out.setdefault(part.casefold(), part)
    return list(out.values())


def split_authors(value: str | None) -> list[str] | None:
    """trafilatura's ``author`` (``"A; B"``) as a list of names; None for none."""
    if not value:
        return None
    names = [a.strip() for a in re.split(r"\s*;\s*", value) if a.strip()]
    return names or None


def pick_authors(
    declared: list[str] | None,
    declared_is_fallback: bool,
    found: list[str] | None,
    site: Iterable[str] = (),
) -> list[str] | None:
    """The article's authors: the page's declared byline, else the one trafilatura found.

    A declared byline that is only the site's name or an organisation gives way to a person
    that trafilatura found in the page's visible byline; with no such person it stays.

    Args:
        declared: the authors :func:`etl_html_page.page_metadata` read, if any.
        declared_is_fallback: whether those are the site's name or an organisation.
        found: the names trafilatura read from the page's byline, if any.
        site: the site's names (see :func:`site_names`).
    """
    site = set(site)
    if declared and not declared_is_fallback:
        return declared
    seen = clean_authors(found or [], site)
    if any(not is_publisher_name(name, site) for name in seen):
        return seen
    return declared or seen or None
