"""What a parsed page says: its main text (:func:`main_text`) and its metadata.

The main text is trafilatura's, read per page as ``favor`` says (see :func:`main_text`).
The metadata is what the page declares: JSON-LD, Open Graph, meta tags, ``<time pubdate>``.
The ``html`` source's extraction (:mod:`etl_html`) asks :func:`page_metadata` for the
publication date (with its time and zone when the page gives them), the title, the authors
and the publisher, before trafilatura reads the page; whatever the page does not declare is
left to trafilatura and htmldate. Only structured declarations are read here, and the
page's ``<h1>`` to check a declared title against (:mod:`etl_html_meta`): a site's own
markup conventions are not, so what works on one site works on the next.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from etl_html_meta import clean_authors, headline, is_publisher_name, site_names, strip_site_name

# schema.org types whose datePublished/headline/author describe the page's article
_ARTICLE_TYPES = re.compile(
    r"(Article|BlogPosting|Report|Posting|NewsArticle|WebPage|LiveBlogPosting)$", re.IGNORECASE
)
# meta tags that declare the first publication, most specific first
_DATE_META = (
    "article:published_time",
    "og:published_time",
    "og:article:published_time",
    "datepublished",
    "publishdate",
    "publish-date",
    "pubdate",
    "parsely-pub-date",
    "sailthru.date",
    "dc.date.issued",
    "dcterms.issued",
    "dc.date",
    "dcterms.date",
    "date",
    "article.published",
    "cxenseparse:recs:publishtime",
)
_TITLE_META = ("og:title", "twitter:title", "dc.title", "title")
_AUTHOR_META = ("author", "article:author", "dc.creator", "parsely-author", "sailthru.author")
_PUBLISHER_META = ("og:site_name", "application-name", "dc.publisher", "publisher")
_ISO = re.compile(
    r"^\s*(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?)?"
)
_SPACES = re.compile(r"\s+")


def _clean(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = _SPACES.sub(" ", value).strip()
    return value or None


def parse_declared_date(value: str | None) -> tuple[datetime, str] | None:
    """An ISO 8601 date as pages declare it: the UTC instant and the date as written.

    ``2021-03-14T09:30:00+01:00`` is 08:30 UTC; a day without a time is midnight UTC; a
    time without a zone is taken as UTC. The string kept is ISO 8601 with the page's offset
    when it had one, so the local time is not lost. None for anything else.
    """
    match = _ISO.match(value or "")
    if not match:
        return None
    year, month, day, hour, minute, second, zone = match.groups()
    try:
        if hour is None:
            moment = datetime(int(year), int(month), int(day), tzinfo=UTC)
            return moment, moment.date().isoformat()
        text = f"{year}-{month}-{day}T{hour}:{minute}:{second or '00'}"
        if zone:
            zone = "+00:00" if zone == "Z" else zone if ":" in zone else zone[:3] + ":" + zone[3:]
            local = datetime.fromisoformat(text + zone)
        else:
            local = datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError:
        return None
    if not 1990 <= local.year <= 2100:
        return None
    return local.astimezone(UTC), local.isoformat()


def _json_ld(tree: Any) -> list[dict]:
    """The page's JSON-LD objects that describe an article, ``@graph`` flattened."""
    found: list[dict] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            if "@graph" in node:
                walk(node["@graph"])
            types = node.get("@type")
            types = types if isinstance(types, list) else [types]
            if any(isinstance(t, str) and _ARTICLE_TYPES.search(t) for t in types):
                found.append(node)

    for script in tree.iterfind(".//script[@type]"):
        if "ld+json" not in (script.get("type") or "").lower() or not script.text:
            continue
        try:
            walk(json.loads(script.text))
        except ValueError:  # broken JSON-LD is common; the other declarations remain
            continue
    # an Article says more about the page than the WebPage around it
    found.sort(key=lambda n: "WebPage" in str(n.get("@type")))
    return found


def _names(value: Any) -> list[str]:
    """Person or organisation names from a JSON-LD ``author``/``publisher`` value."""
    if isinstance(value, list):
        return [n for item in value for n in _names(item)]
    if isinstance(value, dict):
        name = _clean(value.get("name"))
        return [name] if name else []
    name = _clean(value)
    # a URL or a bare id is not a name
    return [name] if name and not name.startswith(("http://", "https://", "/")) else []


def split_names(value: str) -> list[str]:
    """Names from one declared author string: ``A; B``, ``A | B``, ``"A, B"``.

    A comma separates names only when every part has two words or more, so ``Doe, Jane``
    stays one name. Quotes around the whole are dropped.
    """
    names = []
    for part in re.split(r"\s*[;|]\s*", value.strip().strip("'\"“”")):
        parts = [p.strip() for p in part.split(",")]
        if len(parts) > 1 and all(len(p.split()) >= 2 for p in parts):
            names.extend(parts)
        elif part.strip():
            names.append(part.strip())
    return names


def _meta_tags(tree: Any) -> dict[str, str]:
    """``<meta>`` contents by lower-cased name/property/itemprop; the first of each wins."""
    tags: dict[str, str] = {}
    for el in tree.iterfind(".//meta"):
        content = _clean(el.get("content"))
        if not content:
            continue
        for attr in ("property", "name", "itemprop"):
            key = (el.get(attr) or "").strip().lower()
            if key:
                tags.setdefault(key, content)
    return tags


def _authors(ld: list[dict], tags: dict[str, str], names: set[str]) -> tuple[list[str], bool]:
    """The first declared byline that names a person, else the first declared at all.

    Returns the names and whether they are that fallback (no person declared).
    In order: each JSON-LD article's ``author``, then the author meta tags. An author that
    is the site's own name, or a JSON-LD ``Organization``, is a fallback: a person declared
    elsewhere on the page comes first.
    """
    candidates: list[tuple[list[str], bool]] = []
    for node in ld:
        value = node.get("author")
        found = clean_authors(_names(value), names)
        if found:
            values = value if isinstance(value, list) else [value]
            organisation = all(
                isinstance(v, dict) and "Organization" in str(v.get("@type")) for v in values
            )
            candidates.append((found, organisation))
    for key in _AUTHOR_META:
        value = tags.get(key)
        if value and not value.startswith(("http://", "https://")):
            found = clean_authors(split_names(value), names)
            if found:
                candidates.append((found, False))
    for found, organisation in candidates:
        if not organisation and not all(is_publisher_name(a, names) for a in found):
            return found, False
    return (candidates[0][0], True) if candidates else ([], False)


def page_metadata(tree: Any, url: str | None = None) -> dict[str, Any]:
    """What a parsed page declares about its article.

    Returns a dict with any of ``published_at`` (UTC datetime), ``published`` (the date as
    the page wrote it, ISO 8601 with its offset), ``date_source``, ``title``, ``authors``
    (list), ``authors_are_publisher`` (True where the only byline declared is the site's
    own name or an organisation) and ``publisher``; a field the page does not declare is
    absent. The title is the visible ``<h1>`` headline where the declared one is that
    headline with the site's name around it, cut short or reworded (see
    :mod:`etl_html_meta`); authors lose "By ..." and a trailing ", <publisher>".

    Args:
        tree: the page as an lxml HTML element tree (read, not changed).
        url: the page's web address, if any (its host is one of the site's names).
    """
    out: dict[str, Any] = {}
    ld = _json_ld(tree)
    tags = _meta_tags(tree)
    candidates = [(f"json-ld {n.get('@type')}", n.get("datePublished")) for n in ld]
    candidates += [(f"meta {key}", tags.get(key)) for key in _DATE_META]
    for el in tree.iterfind(".//time[@datetime]"):
        if el.get("pubdate") is not None or (el.get("itemprop") or "") == "datePublished":
            candidates.append(("time pubdate", el.get("datetime")))
    for source, value in candidates:
        parsed = parse_declared_date(value if isinstance(value, str) else None)
        if parsed:
            out["published_at"], out["published"] = parsed
            out["date_source"] = source
            break
    # the site's own name (og:site_name) before JSON-LD's publisher, which on hosted blogs
    # and syndicated pages names the platform ("Blogger") rather than the site
    publisher = next((tags[k] for k in _PUBLISHER_META if k in tags), None)
    publisher = publisher or next((n for node in ld for n in _names(node.get("publisher"))), None)
    if publisher:
        out["publisher"] = publisher
    names = site_names(publisher, url) | {n for node in ld for n in _names(node.get("publisher"))}
    title = next(
        (_clean(node.get("headline")) for node in ld if _clean(node.get("headline"))), None
    )
    title = title or next((tags[k] for k in _TITLE_META if k in tags), None)
    if title:
        # the visible headline where the declared title is it with the site's name around
        # it, cut short or reworded; else the declared title without the site's name
        out["title"] = headline(tree, title, names) or strip_site_name(title, names)
    else:
        # no declaration: <title> only vouches for an <h1>; else trafilatura decides
        shown = headline(tree, _clean(tree.findtext(".//title")), names)
        if shown:
            out["title"] = shown
    authors, fallback = _authors(ld, tags, names)
    if authors:
        out["authors"] = authors
        out["authors_are_publisher"] = fallback
    return out


#: a block of the main text whose characters are mostly link text is navigation
#: ("read more: <link>", lists of related articles), not the article
_MAX_LINK_SHARE = 0.5


def main_text(
    trafilatura: Any,
    tree: Any,
    url: str | None,
    *,
    favor: str,
    include_comments: bool,
    include_tables: bool,
    need_date: bool = True,
) -> dict[str, Any]:
    """trafilatura's extraction of a parsed page, as a dict with ``mode`` (how it was read).

    Args:
        trafilatura: the imported module (imported by the caller, which reports its absence).
        tree: the page parsed by ``trafilatura.utils.load_html`` (trafilatura prunes it).
        url: the page's web address, if any.
        favor: ``"auto"``, ``"balanced"``, ``"precision"`` or ``"recall"``.
        include_comments: keep readers' comments.
        include_tables: keep the text of tables.
        need_date: whether htmldate's date is wanted (False: the page declared one, and
            htmldate takes only its fast path, which never loads dateparser).

    ``favor="auto"``: trafilatura's precision mode, then every block whose text is mostly
    link text dropped. The other values are trafilatura's own modes, unchanged.
    """

    def run(mode: str, page: Any) -> dict[str, Any]:
        doc = trafilatura.bare_extraction(
            page,
            url=url,
            with_metadata=True,
            include_comments=include_comments,
            include_tables=include_tables,
            include_links=favor == "auto",
            favor_precision=mode == "precision",
            favor_recall=mode == "recall",
            date_extraction_params=_date_params(need_date),
        )
        if doc is None:
            return {"text": ""}
        found = doc.as_dict()
        if favor == "auto" and doc.body is not None:
            found["text"] = _without_link_blocks(trafilatura, doc.body)
        return found

    if favor != "auto":
        return {**run(favor, tree), "mode": favor}
    return {**run("precision", tree), "mode": "auto: precision"}


def _date_params(extensive: bool) -> dict[str, Any]:
    # htmldate's date is used only where the page declares none (page_metadata); the
    # first-publication heuristic (original_date) takes older related dates on news pages.
    # Its extensive search loads dateparser (seconds, once per process): only when needed.
    return {
        "original_date": False,
        "extensive_search": extensive,
        "max_date": datetime.now().astimezone().strftime("%Y-%m-%d"),
    }


def _without_link_blocks(trafilatura: Any, body: Any) -> str:
    """The text of trafilatura's result tree, link-dense blocks dropped and links unwrapped."""
    import lxml.etree

    for el in list(body.iter("p", "item", "head", "quote", "cell")):
        if any(child.tag in ("p", "item", "list") for child in el):
            continue  # a container: its own blocks are judged
        text = "".join(el.itertext())
        length = len("".join(text.split()))
        if not length:
            continue
        linked = sum(len("".join("".join(ref.itertext()).split())) for ref in el.iter("ref"))
        if linked / length > _MAX_LINK_SHARE and el.getparent() is not None:
            el.getparent().remove(el)
    for ref in list(body.iter("ref")):
        _drop_bracketed(ref)
    lxml.etree.strip_tags(body, "ref")
    return trafilatura.xml.xmltotxt(body, False)


def _drop_bracketed(ref: Any) -> None:
    """Drop a link written in brackets inside a paragraph ("... [read more]"), brackets too.

    A bracketed link is a pointer to another page ("[more]", "[czytaj więcej]", "[1]"),
    not a sentence of the article; too short to make its paragraph link-dense.
    """
    parent, before = ref.getparent(), ref.getprevious()
    if parent is None:
        return
    lead = (before.tail if before is not None else parent.text) or ""
    tail = ref.tail or ""
    if not (lead.rstrip().endswith("[") and tail.lstrip().startswith("]")):
        return
    lead = lead.rstrip()[:-1]
    tail = tail.lstrip()[1:]
    if before is not None:
        before.tail = lead
    else:
        parent.text = lead
    # the text after the link joins what came before it
    if before is not None:
        before.tail = (before.tail or "") + tail
    else:
        parent.text = (parent.text or "") + tail
    ref.tail = None
    parent.remove(ref)
