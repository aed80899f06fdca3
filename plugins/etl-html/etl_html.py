"""The ``html`` source: saved web pages -> articles, with trafilatura for the main text.

Besides the plugin, this module is the HTML machinery the ``feed`` (``fetch = true``) and
``warc`` sources reuse: :func:`decode_html` (bytes to text with the page's charset) and
:func:`extract` (bytes to one article's fields, or :class:`NoArticle`).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from etl_html_meta import pick_authors, site_names, split_authors

from etl.budget import Budget, OverBudget
from etl.dates import parse_iso
from etl.decode import DecodeError, decode_bytes, detect, sniff_bom
from etl.errors import MissingDependency
from etl.hookspecs import hookimpl
from etl.plugin import Option, WorkUnit
from etl.sources import DEFAULT_MAX_BYTES as DEFAULT_MAX_BYTES  # the old name, kept
from etl.sources import FileSource

if TYPE_CHECKING:
    import pyarrow as pa

    from etl.context import Context

__version__ = "0.1.0"

# compressed copies (page.html.gz, .bz2, .xz, .zst) match too: etl.inputs strips the suffix
DEFAULT_INCLUDE = ["*.html", "*.htm", "*.xhtml"]
INSTALL = "./plugins/etl-html"

# Where a page declares its charset: <meta charset=...>, <meta http-equiv=Content-Type
# content="text/html; charset=...">, or an XML declaration. Browsers look in the first 1024
# bytes; real pages put long <head>s first, so we look further.
_SNIFF_BYTES = 8192
_META_CHARSET = re.compile(
    rb"""<meta[^>]+?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE
)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9._:-]+)""")
_HTTP_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_HTML_LANG = re.compile(
    r"""<html\b[^>]*?\s(?:xml:)?lang\s*=\s*["']?([A-Za-z]{2,3})(?:[-_][A-Za-z0-9-]+)?""",
    re.IGNORECASE,
)

# Labels whose browser meaning differs from Python's codec of the same name (WHATWG
# Encoding Standard): Latin-1 and ASCII pages are decoded as windows-1252 by every browser.
_LABEL_ALIASES = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "iso-8859-9": "cp1254",
    "gb2312": "gbk",
    "x-gbk": "gbk",
    "shift-jis": "shift_jis",
    "x-sjis": "shift_jis",
    "unicode": "utf-16-le",
    "utf-16": "utf-16-le",
}

#: pages with more characters of HTML than this skip trafilatura for the plain extraction
#: (trafilatura takes seconds a megabyte: a 20 MB page of paragraphs took over 150 s)
DEFAULT_MAX_EXTRACT_BYTES = 4 * 1024 * 1024
#: seconds one page's extraction may take before it is a reject (``extraction timeout``)
DEFAULT_EXTRACT_SECONDS = 30.0

# A page that declares a charset but holds a few bytes that charset forbids (the corpora's
# MISLABELED pages: UTF-8 with a stray Latin-1 byte or a character cut in half) keeps its
# declared charset with those bytes replaced, as browsers do; past this share of bad bytes
# among the non-ASCII ones the declaration is taken for a lie and the charset is detected.
_MAX_BAD_SHARE = 0.02


class NoArticle(Exception):
    """A page that yields no article; ``reason`` is the reject reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def _codec(label: str | bytes | None) -> str | None:
    """The Python codec for a charset label, or None if Python knows no such codec."""
    if not label:
        return None
    if isinstance(label, bytes):
        label = label.decode("ascii", "replace")
    label = label.strip().lower()
    label = _LABEL_ALIASES.get(label, label)
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def declared_charset(data: bytes) -> str | None:
    """The charset label a page declares in its first bytes (meta tag or XML declaration)."""
    head = data[:_SNIFF_BYTES]
    match = _XML_ENCODING.search(head) or _META_CHARSET.search(head)
    return match.group(1).decode("ascii", "replace") if match else None


def decode_html(
    data: bytes, *, http_charset: str | None = None, encoding: str = "auto"
) -> tuple[str, dict[str, str]]:
    """Decode a page: BOM, then the HTTP charset, then ``<meta charset>``, then detection.

    Returns the text and metadata about the decoding: ``encoding`` (the codec used),
    ``encoding_source`` (``bom``, ``http``, ``declared``, ``detected``, ``option``), and
    for a page whose declaration was wrong, ``declared_encoding`` and ``encoding_errors``
    (bytes replaced). Raises :class:`NoArticle` for bytes that are not text.

    Args:
        data: the page's bytes.
        http_charset: the charset of an HTTP Content-Type header, if the page came with one.
        encoding: ``"auto"``, or a codec name that overrides everything.
    """
    if encoding != "auto":
        try:
            text, used = decode_bytes(data, encoding)
        except DecodeError as exc:
            raise NoArticle(exc.reason, exc.detail) from None
        return text, {"encoding": used, "encoding_source": "option"}
    bom = sniff_bom(data)
    if bom is not None:
        name, length = bom
        text = data[length:].decode(name.replace("-sig", ""), "replace")
        return text, {"encoding": name, "encoding_source": "bom"}
    for source, label in (("http", http_charset), ("declared", declared_charset(data))):
        codec = _codec(label)
        if codec is None:
            continue
        if codec.startswith(("utf-16", "utf-32")):
            # a page that is readable ASCII declares UTF-16 wrongly (it has no BOM); skip it
            continue
        try:
            return data.decode(codec), {"encoding": codec, "encoding_source": source}
        except UnicodeDecodeError:
            pass
        text = data.decode(codec, "replace")
        bad = text.count("\ufffd")
        non_ascii = sum(1 for b in data if b >= 0x80) or 1
        if bad / non_ascii <= _MAX_BAD_SHARE:
            return text, {
                "encoding": codec,
                "encoding_source": source,
                "encoding_errors": str(bad),
            }
        try:
            text, used = detect(data)
        except DecodeError:
            return text, {"encoding": codec, "encoding_source": source, "encoding_errors": str(bad)}
        return text, {
            "encoding": used,
            "encoding_source": "detected",
            "declared_encoding": label,
        }
    try:
        text, used = decode_bytes(data)
    except DecodeError as exc:
        raise NoArticle(exc.reason, exc.detail) from None
    return text, {"encoding": used, "encoding_source": "detected"}


def charset_from_content_type(value: str | None) -> str | None:
    """The charset parameter of a Content-Type header value."""
    if not value:
        return None
    match = _HTTP_CHARSET.search(value)
    return match.group(1) if match else None


def _trafilatura():
    try:
        import trafilatura
    except ImportError as exc:  # lxml_html_clean missing shows up as an ImportError too
        raise MissingDependency("html", exc.name or "trafilatura", INSTALL) from None
    return trafilatura


def parse_date(value: str | None) -> datetime | None:
    """A date or time string as trafilatura/htmldate print it (ISO 8601), as a UTC datetime.

    trafilatura finds the page's date with htmldate, which reads the page's many date
    notations; what it hands back is ISO 8601, read here by :func:`etl.dates.parse_iso`.
    """
    if not value:
        return None
    try:
        return parse_iso(value)
    except ValueError:
        return None


def extract(
    data: bytes,
    url: str | None = None,
    *,
    http_charset: str | None = None,
    encoding: str = "auto",
    favor: str = "auto",
    include_comments: bool = False,
    include_tables: bool = True,
    max_extract_bytes: int | None = DEFAULT_MAX_EXTRACT_BYTES,
    seconds: float | None = DEFAULT_EXTRACT_SECONDS,
) -> dict[str, Any]:
    """Extract one article from a page's bytes.

    Returns a dict with the article columns ``text``, ``title``, ``uri`` (the page's
    canonical URL, else ``url``), ``published_at`` (UTC datetime), ``publisher`` (site
    name), ``authors`` (list), ``language`` and ``metadata`` (a dict of strings: encoding,
    description, hostname...). Raises :class:`NoArticle` when the page has no article text
    or is not text at all.

    Args:
        data: the page's bytes (already decompressed).
        url: where the page came from, if known (helps resolve links and the site name).
        http_charset: the charset of the HTTP response that carried the page, if any.
        encoding: ``"auto"`` or a codec name that overrides the page's own.
        favor: ``"auto"`` (trafilatura's precision mode without link-dense blocks), or
            one of trafilatura's own modes:
            ``"balanced"``, ``"precision"`` (less boilerplate), ``"recall"`` (more text).
        include_comments: keep readers' comments in the text.
        include_tables: keep the text of tables.
        max_extract_bytes: a page with more characters of HTML than this is read by
            :func:`plain_extraction` instead of trafilatura (None: never).
        seconds: the most seconds the extraction may take; a slower page is the
            :class:`NoArticle` ``extraction timeout`` (None: no limit).
    """
    trafilatura = _trafilatura()
    html, meta = decode_html(data, http_charset=http_charset, encoding=encoding)
    if not html.strip():
        raise NoArticle("empty page", f"{len(data)} bytes")
    web_url = url if url and url.startswith(("http://", "https://")) else None
    declared: dict[str, Any] = {}
    try:
        with Budget(seconds):
            if max_extract_bytes is not None and len(html) > max_extract_bytes:
                found = plain_extraction(html)
                meta["extraction"] = f"plain (over max_extract_bytes {max_extract_bytes})"
            else:
                from etl_html_page import main_text, page_metadata

                tree = trafilatura.utils.load_html(html)
                if tree is None:
                    raise NoArticle("no article text", f"{len(html)} characters, not HTML")
                declared = page_metadata(tree, web_url)
                if declared.get("authors_are_publisher"):
                    # a person in the visible byline, read while the tree is whole
                    declared["byline"] = trafilatura.metadata.extract_author(tree)
                found = main_text(
                    trafilatura,
                    tree,
                    web_url,
                    favor=favor,
                    include_comments=include_comments,
                    include_tables=include_tables,
                    need_date="published_at" not in declared,
                )
                meta["extraction"] = found.pop("mode")
    except OverBudget:
        raise NoArticle(
            "extraction timeout", f"{len(html)} characters of HTML, more than {seconds:g} s"
        ) from None
    except (ValueError, TypeError, AttributeError, RecursionError) as exc:
        # lxml and trafilatura's fallbacks raise these on pathological markup
        raise NoArticle("unparseable HTML", f"{type(exc).__name__}: {exc}") from None
    text = (found.get("text") or "").strip()
    if not text:
        raise NoArticle("no article text", f"{len(html)} characters of HTML, no main text found")
    lang = found.get("language")
    if not lang:
        match = _HTML_LANG.search(html[: _SNIFF_BYTES * 4])
        lang = match.group(1).lower() if match else None
    for key in ("description", "hostname", "image", "pagetype", "license"):
        if found.get(key):
            meta[key] = str(found[key])
    for key in ("categories", "tags"):
        if found.get(key):
            meta[key] = ", ".join(str(v) for v in found[key])
    published_at = declared.get("published_at")
    if published_at is not None:
        meta["date"] = declared["published"]
        meta["date_source"] = declared["date_source"]
    elif found.get("date"):
        published_at = parse_date(found.get("date"))
        meta["date"] = str(found["date"])
        meta["date_source"] = "htmldate"
    return {
        "text": text,
        "title": declared.get("title") or (found.get("title") or "").strip() or None,
        "uri": found.get("url") or url,
        "published_at": published_at,
        "publisher": declared.get("publisher") or (found.get("sitename") or "").strip() or None,
        "authors": pick_authors(
            declared.get("authors"),
            declared.get("authors_are_publisher", False),
            split_authors(declared.get("byline") or found.get("author")),
            site_names(declared.get("publisher") or found.get("sitename"), web_url),
        ),
        "language": lang,
        "metadata": meta,
    }


_BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "td",
        "th",
        "tr",
        "ul",
    ]
)
_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def html_to_text(fragment: str) -> str:
    """The text of an HTML fragment (a feed entry's content): tags dropped, blocks on lines."""
    if "<" not in fragment and "&" not in fragment:
        return fragment.strip()
    import lxml.etree
    import lxml.html

    try:
        root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    except (lxml.etree.ParserError, ValueError):
        return fragment.strip()
    return _block_text(root, ("script", "style", "template"))


#: what the plain extraction leaves out besides code: the page's frame, not its article
_FRAME_TAGS = ("script", "style", "template", "noscript", "nav", "header", "footer", "aside")
_FRAME_TAGS += ("form", "iframe", "svg", "head")


def plain_extraction(html: str) -> dict[str, Any]:
    """An article from a page too large for trafilatura: the text of its body without
    code, navigation, headers, footers and forms, blocks on lines, and its ``<title>``.

    One lxml parse and one pass over the elements: a 20 MB page takes seconds, where
    trafilatura's scoring takes minutes. No date, authors or boilerplate removal.
    """
    import lxml.etree
    import lxml.html

    try:
        root = lxml.html.document_fromstring(html)
    except (lxml.etree.ParserError, ValueError) as exc:
        raise ValueError(f"lxml: {exc}") from None
    title = root.findtext(".//title") or None
    return {"text": _block_text(root, _FRAME_TAGS), "title": title}


def _block_text(root: Any, drop: Sequence[str]) -> str:
    """The text of an element tree: ``drop`` tags removed, block elements on lines."""
    for el in list(root.iter(*drop)):
        el.drop_tree()
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag.lower() in _BLOCK_TAGS:
            el.text = "\n" + (el.text or "")
            el.tail = "\n" + (el.tail or "")
    text = root.text_content()
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


_COLUMNS = ("text", "title", "uri", "published_at", "publisher", "authors", "language")


def articles_batch(
    ctx: Context, found: Sequence[Mapping[str, Any]], **overrides: Any
) -> pa.RecordBatch:
    """One batch from several :func:`extract` results (``overrides`` set whole columns)."""
    columns: dict[str, Any] = {name: [f.get(name) for f in found] for name in _COLUMNS}
    columns["metadata"] = [
        {k: str(v) for k, v in (f.get("metadata") or {}).items() if v is not None} for f in found
    ]
    columns.update({k: v for k, v in overrides.items() if v is not None})
    return ctx.articles(**columns)


class HtmlSource(FileSource):
    """Saved web pages (.html/.htm, compressed too): main text, title, authors, date."""

    name = "html"
    default_include = DEFAULT_INCLUDE
    # paths, include, max_bytes (64 MB), retries and timeout come from FileSource
    options = (
        Option(
            "encoding", "str", "auto", help="'auto' (BOM, <meta charset>, detection) or a codec"
        ),
        Option(
            "favor",
            "str",
            "auto",
            choices=("auto", "balanced", "precision", "recall"),
            help="'auto' (trafilatura's precision mode, link-dense blocks dropped) "
            "or one of trafilatura's own modes",
        ),
        Option("include_comments", "bool", False, help="keep readers' comments in the text"),
        Option("include_tables", "bool", True, help="keep the text of tables"),
        Option("publisher", "str", None, help="publisher for every article (else the site name)"),
        Option(
            "max_extract_bytes",
            "int",
            DEFAULT_MAX_EXTRACT_BYTES,
            min=1,
            help="a page with more characters of HTML is read plainly (lxml), not by trafilatura",
        ),
        Option(
            "extract_seconds",
            "float",
            DEFAULT_EXTRACT_SECONDS,
            min=0,
            min_exclusive=True,
            help="the most seconds one page's extraction may take; a slower page is a reject",
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.opts.encoding != "auto" and _codec(self.opts.encoding) is None:
            raise self.error(
                f"option 'encoding': unknown codec {self.opts.encoding!r}",
                hint="use 'auto' or a Python codec name such as 'utf-8' or 'cp1252'",
            )
        _trafilatura()

    def read(self, unit: WorkUnit, ctx: Context) -> Iterator[pa.RecordBatch]:
        data = self.read_bytes(unit, ctx)
        if data is None:  # rejected
            return
        try:
            found = extract(
                data,
                unit.key,
                encoding=self.opts.encoding,
                favor=self.opts.favor,
                include_comments=self.opts.include_comments,
                include_tables=self.opts.include_tables,
                max_extract_bytes=self.opts.max_extract_bytes,
                seconds=self.opts.extract_seconds,
            )
        except NoArticle as exc:
            ctx.reject(exc.reason, detail=exc.detail)
            return
        found["metadata"]["input"] = unit.key
        yield articles_batch(ctx, [found], publisher=self.opts.publisher)


@hookimpl
def etl_register_plugins(register):
    register(HtmlSource)
