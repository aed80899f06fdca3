"""The ``feed`` source: RSS 0.9x/1.0/2.0, Atom and JSON Feed -> one article per entry.

XML feeds are parsed by feedparser from the bytes we read (never from a URL), so the parser
itself fetches nothing: no external entity, no DTD (tested with XXE and billion-laughs
inputs). JSON Feed (1.0/1.1) is read with the json module. ``fetch = true`` downloads each
entry's page and replaces the feed's text with the page's main text (``etl_html.extract``).
"""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from etl.dates import parse_iso, parse_rfc2822
from etl.decode import DecodeError, detect, sniff_bom
from etl.errors import MissingDependency
from etl.hookspecs import hookimpl
from etl.inputs import (
    DEFAULT_BACKOFF,
    InputError,
    fetch,
)
from etl.plugin import Option, WorkUnit
from etl.sources import DEFAULT_MAX_BYTES as DEFAULT_MAX_BYTES  # the old name, kept
from etl.sources import FileSource

if TYPE_CHECKING:
    import pyarrow as pa

    from etl.context import Context

__version__ = "0.1.0"

INSTALL = "./plugins/etl-html ./plugins/etl-feed"
# compressed copies (feed.xml.gz...) match too: etl.inputs strips the suffix
DEFAULT_INCLUDE = ["*.xml", "*.rss", "*.atom", "*.rdf", "*.json", "*.feed"]
USER_AGENT = "etl-feed/0.1 (+https://github.com/; fetch=true)"

_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*\?>")
_XML_DECL_ENCODING = re.compile(rb"^\s*<\?xml[^>]*encoding\s*=")


class FeedError(Exception):
    """A feed that yields no entries; ``reason`` is the reject reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class FetchError(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def _imports():
    try:
        import etl_html
        import feedparser
    except ImportError as exc:
        raise MissingDependency("feed", exc.name or "feedparser", INSTALL) from None
    return feedparser, etl_html


def _utc(value: Any) -> datetime | None:
    """A feedparser ``*_parsed`` struct (UTC) or an RFC 3339 string, as a UTC datetime.

    XML feeds' dates are feedparser's: it reads the many date notations of RSS and Atom in
    the wild into UTC structs, which are kept. JSON Feed dates are strings, read by
    :mod:`etl.dates` (RFC 3339, and the RFC 2822 that JSON Feeds in the wild use too).
    """
    if value is None:
        return None
    if isinstance(value, str):
        for parse in (parse_iso, parse_rfc2822):
            try:
                return parse(value)
            except ValueError:
                pass
        return None
    try:
        return datetime(*value[:6], tzinfo=UTC)
    except (TypeError, ValueError):
        return None


def _language(value: str | None) -> str | None:
    if not value:
        return None
    primary = re.split(r"[-_]", value.strip())[0].lower()
    return primary if primary.isalpha() and 2 <= len(primary) <= 3 else None


def _undeclared_to_utf8(data: bytes) -> tuple[bytes, str | None]:
    """Transcode an XML feed that declares no encoding and is not UTF-8 (detection).

    feedparser would fall back to windows-1252 and turn a Shift_JIS or GB2312 feed into
    mojibake; charset-normalizer reads them right.
    """
    if sniff_bom(data) is not None or _XML_DECL_ENCODING.match(data):
        return data, None
    try:
        data.decode("utf-8")
        return data, None
    except UnicodeDecodeError:
        pass
    try:
        text, encoding = detect(data)
    except DecodeError:
        return data, None
    body = _XML_DECL.sub(b"", text.encode("utf-8"), count=1)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body, encoding


def _is_json(data: bytes) -> bool:
    bom = sniff_bom(data)
    head = data[bom[1] if bom else 0 :][:64].lstrip()
    return head.startswith((b"{", b"["))


def parse_json_feed(data: bytes) -> tuple[dict, list[dict]]:
    """A JSON Feed (https://jsonfeed.org/version/1.1) as (feed fields, entries)."""
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FeedError("malformed feed", f"JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise FeedError("not a feed", "JSON without a JSON Feed 'items' list")

    def names(obj: dict) -> list[str]:
        people = obj.get("authors") or ([obj["author"]] if obj.get("author") else [])
        return [p["name"] for p in people if isinstance(p, dict) and p.get("name")]

    feed = {
        "title": html.unescape(doc["title"]) if isinstance(doc.get("title"), str) else None,
        "link": doc.get("home_page_url"),
        "language": doc.get("language"),
        "version": "json" + str(doc.get("version", "")).rsplit("/", 1)[-1].replace(".", ""),
        "authors": names(doc),
    }
    entries = []
    for item in doc["items"]:
        if not isinstance(item, dict):
            continue
        if item.get("content_html"):
            text, kind = item["content_html"], "html"
        elif item.get("content_text"):
            text, kind = item["content_text"], "text"
        else:
            text, kind = item.get("summary"), "text"
        entries.append(
            {
                "title": item.get("title"),
                "link": item.get("url") or item.get("external_url"),
                "id": item.get("id"),
                "published": _utc(item.get("date_published")),
                "updated": _utc(item.get("date_modified")),
                "authors": names(item) or feed["authors"],
                "content": text,
                "content_is_html": kind == "html",
                "language": item.get("language"),
            }
        )
    return feed, entries


def parse_xml_feed(data: bytes) -> tuple[dict, list[dict], str | None]:
    """An RSS/Atom feed as (feed fields, entries, warning of a partly malformed feed)."""
    feedparser, _ = _imports()
    data, detected = _undeclared_to_utf8(data)
    # a stream, never a string: feedparser fetches a string that looks like a URL
    parsed = feedparser.parse(io.BytesIO(data), sanitize_html=True)
    warning = None
    if parsed.get("bozo"):
        exc = parsed.get("bozo_exception")
        warning = f"{type(exc).__name__}: {exc}" if exc is not None else "malformed feed"
        if not parsed.entries:
            raise FeedError("malformed feed", warning)
    if not parsed.entries:
        if not parsed.get("version") and not parsed.feed:
            raise FeedError("not a feed", "no RSS, Atom or JSON Feed structure found")
        title = parsed.feed.get("title")
        raise FeedError("empty feed", f"no entries (feed title: {title!r})")
    f = parsed.feed
    feed = {
        "title": f.get("title"),
        "link": f.get("link"),
        "language": f.get("language"),
        "version": parsed.get("version") or "",
        "encoding": detected or parsed.get("encoding"),
        "authors": [a["name"] for a in f.get("authors", []) if a.get("name")],
    }
    entries = []
    for e in parsed.entries:
        content, is_html = None, False
        for part in e.get("content") or []:
            if part.get("value"):
                content, is_html = part["value"], "html" in (part.get("type") or "html")
                break
        if content is None and e.get("summary"):
            detail = e.get("summary_detail") or {}
            content, is_html = e["summary"], "html" in (detail.get("type") or "html")
        entries.append(
            {
                "title": e.get("title"),
                "link": e.get("link"),
                "id": e.get("id"),
                # dict.get: FeedParserDict.get maps published to updated, with a warning
                "published": _utc(dict.get(e, "published_parsed")),
                "updated": _utc(dict.get(e, "updated_parsed")),
                "authors": [a["name"] for a in e.get("authors", []) if a.get("name")]
                or feed["authors"],
                "content": content,
                "content_is_html": is_html,
                "language": (e.get("content") or [{}])[0].get("language")
                if e.get("content")
                else None,
            }
        )
    return feed, entries, warning


def fetch_page(
    url: str, *, timeout: float, retries: int, max_bytes: int, backoff: float = DEFAULT_BACKOFF
) -> tuple[bytes, str | None, str]:
    """GET ``url``: (body, Content-Type, final URL).

    :func:`etl.inputs.fetch` does it, with the retries, backoff and limits of remote inputs;
    its errors become :class:`FetchError` (same reason and detail).
    """
    try:
        page = fetch(
            url,
            max_bytes=max_bytes,
            retries=retries,
            timeout=timeout,
            backoff=backoff,
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        )
    except InputError as exc:
        raise FetchError(exc.reason, exc.detail) from None
    return page.body, page.content_type, page.url


class FeedSource(FileSource):
    """RSS 0.9x/1.0/2.0, Atom and JSON Feed files or URLs: one article per entry."""

    name = "feed"
    default_include = DEFAULT_INCLUDE
    # paths, include, retries and timeout come from FileSource; retries and timeout apply
    # to remote feeds and, with fetch = true, to each entry's page
    options = (
        Option("fetch", "bool", False, help="download each entry's page and extract its full text"),
        Option("publisher", "str", None, help="publisher for every article (else the feed title)"),
        Option(
            "max_bytes", "int", DEFAULT_MAX_BYTES, min=1, help="larger feeds or pages are rejected"
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _imports()

    def read(self, unit: WorkUnit, ctx: Context) -> Iterator[pa.RecordBatch]:
        _, etl_html = _imports()
        data = self.read_bytes(unit, ctx)
        if data is None:  # rejected
            return
        warning = None
        try:
            if _is_json(data):
                feed, entries = parse_json_feed(data)
            else:
                feed, entries, warning = parse_xml_feed(data)
        except FeedError as exc:
            ctx.reject(exc.reason, detail=exc.detail)
            return
        if not entries:
            ctx.reject("empty feed", detail=f"no entries (feed title: {feed.get('title')!r})")
            return
        if warning:
            ctx.count("feed:malformed_kept")
        found: list[dict[str, Any]] = []
        for number, entry in enumerate(entries, 1):
            article = self._article(entry, feed, warning, number, ctx, etl_html)
            if article is not None:
                found.append(article)
            if len(found) >= ctx.batch_size:
                yield etl_html.articles_batch(ctx, found, publisher=self.opts.publisher)
                found = []
        if found:
            yield etl_html.articles_batch(ctx, found, publisher=self.opts.publisher)

    def _article(
        self, entry: dict, feed: dict, warning: str | None, number: int, ctx: Context, etl_html
    ) -> dict[str, Any] | None:
        content = entry.get("content") or ""
        text = etl_html.html_to_text(content) if entry.get("content_is_html") else content.strip()
        link = entry.get("link")
        meta: dict[str, Any] = {
            "feed_title": feed.get("title"),
            "feed_link": feed.get("link"),
            "feed_version": feed.get("version"),
            "feed_encoding": feed.get("encoding"),
            "entry_id": entry.get("id"),
            "entry": str(number),
        }
        if entry.get("updated"):
            meta["updated_at"] = entry["updated"].isoformat()
        if warning:
            meta["feed_warning"] = warning[:500]
        article: dict[str, Any] = {
            "title": (etl_html.html_to_text(entry["title"]) if entry.get("title") else None)
            or None,
            "uri": link
            or (entry.get("id") if str(entry.get("id", "")).startswith("http") else None),
            "published_at": entry.get("published") or entry.get("updated"),
            "publisher": feed.get("title") or None,
            "authors": entry.get("authors") or None,
            "language": _language(entry.get("language") or feed.get("language")),
            "text": text,
            "metadata": meta,
        }
        if self.opts.fetch and article["uri"]:
            self._fetch_into(article, meta, ctx, etl_html)
        if not article["text"]:
            ctx.reject(
                "empty entry",
                location=f"entry {number}",
                detail=f"no content or summary: {entry.get('title')!r} {link or ''}".strip(),
            )
            return None
        return article

    def _fetch_into(self, article: dict, meta: dict, ctx: Context, etl_html) -> None:
        """Replace the feed's text with the entry page's main text; keep it if that fails."""
        try:
            body, content_type, final = fetch_page(
                article["uri"],
                timeout=self.opts.timeout,
                retries=self.opts.retries,
                max_bytes=self.opts.max_bytes,
            )
            page = etl_html.extract(
                body, final, http_charset=etl_html.charset_from_content_type(content_type)
            )
        except (FetchError, etl_html.NoArticle) as exc:
            meta["fetch_error"] = f"{exc.reason}: {exc.detail}" if exc.detail else exc.reason
            ctx.count("feed:fetch_failed")
            return
        ctx.count("feed:fetched")
        meta["fetched"] = "true"
        meta["page_encoding"] = page["metadata"].get("encoding")
        article["text"] = page["text"]
        for key in ("title", "published_at", "authors", "language"):
            if not article.get(key) and page.get(key):
                article[key] = page[key]
        if page.get("publisher"):
            meta["site_name"] = page["publisher"]


@hookimpl
def etl_register_plugins(register):
    register(FeedSource)
