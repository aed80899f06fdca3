"""What a parsed page says: its main text (:func:`main_text`) and its metadata.

The main text is trafilatura's, read per page as ``favor`` says (see :func:`main_text`).
The metadata is what the page declares: JSON-LD, Open Graph, meta tags, ``<time pubdate>``.
The ``html`` source's extraction (:mod:`etl_html`) asks :func:`page_metadata` for the
publication date (with its time and zone when the page gives them), the title, the authors
and the publisher, before trafilatura reads the page; whatever the page does not declare is
left to trafilatura and htmldate. Only structured declarations are read here: a site's own
markup conventions are not, so what works on one site works on the next.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

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


def page_metadata(tree: Any) -> dict[str, Any]:
    """What a parsed page declares about its article.

    Returns a dict with any of ``published_at`` (UTC datetime), ``published`` (the date as
    the page wrote it, ISO 8601 with its offset), ``date_source``, ``title``, ``authors``
    (list) and ``publisher``; a field the page does not declare is absent.

    Args:
        tree: the page as an lxml HTML element tree (read, not changed).
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
    for node in ld:
        if "title" not in out and _clean(node.get("headline")):
            out["title"] = _clean(node.get("headline"))
        if "authors" not in out and _names(node.get("author")):
            out["authors"] = list(dict.fromkeys(_names(node.get("author"))))
    if "title" not in out:
        title = next((tags[k] for k in _TITLE_META if k in tags), None)
        if title:
            out["title"] = title
    if "authors" not in out:
        author = next((tags[k] for k in _AUTHOR_META if k in tags), None)
        if author and not author.startswith(("http://", "https://")):
            out["authors"] = split_names(author)
    # the site's own name (og:site_name) before JSON-LD's publisher, which on hosted blogs
    # and syndicated pages names the platform ("Blogger") rather than the site
    publisher = next((tags[k] for k in _PUBLISHER_META if k in tags), None)
    publisher = publisher or next((n for node in ld for n in _names(node.get("publisher"))), None)
    if publisher:
        out["publisher"] = publisher
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
    lxml.etree.strip_tags(body, "ref")
    return trafilatura.xml.xmltotxt(body, False)
