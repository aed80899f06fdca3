"""The bundled ``text`` source: one article per plain-text file."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from etl.decode import DecodeError, decode_bytes
from etl.hookspecs import hookimpl
from etl.inputs import InputError, expand_paths, read_input_bytes
from etl.plugin import Option, Source, WorkUnit

if TYPE_CHECKING:
    from etl.context import Context

DEFAULT_MAX_BYTES = 64 * 1024 * 1024

# A trailing attribution: "... their own small clique mindset.\n(Global Times)"
_TRAILING = r"\(\s*(?P<v>[A-Z][A-Za-z0-9&.,' -]{1,48}?)\s*\)\s*$"
# A dateline: "BEIJING, Nov. 13 (Xinhua) -- ..." or "LONDON (Reuters) - ..."
_DATELINE = (
    r"^\s*[A-Z][A-Z .'/-]{1,40}(?:,\s*[A-Z][a-z]{2,8}\.? \d{1,2}(?:, \d{4})?)?\s*"
    r"\(\s*(?P<v>[A-Z][A-Za-z0-9&.' -]{1,48}?)\s*\)\s*(?:--|-|\x{2013}|\x{2014})"
)
# A headline: a first line of at most 200 characters not ending in a full stop, a colon or a
# comma, followed by a body.
_HEADLINE = r"^\s*(?P<v>[^\n]{1,200}?[^\s.,:;])[ \t]*\n\s*\S"
_HEADLINE_MAX_WORDS = 25


def extract_publisher(text: pa.Array) -> pa.Array:
    """The publisher a text names in a trailing attribution or a dateline (else null)."""
    tail = pc.utf8_slice_codeunits(text, -120)
    trailing = pc.struct_field(pc.extract_regex(tail, _TRAILING), 0)
    dateline = pc.struct_field(
        pc.extract_regex(pc.utf8_slice_codeunits(text, 0, 160), _DATELINE), 0
    )
    return pc.coalesce(trailing, dateline)


def split_headline(text: pa.Array) -> tuple[pa.Array, pa.Array]:
    """A headline where the first line looks like one, and the text without it.

    Returns ``(title, text)``; where there is no headline, title is null and text unchanged.
    """
    found = pc.struct_field(pc.extract_regex(text, _HEADLINE), 0)
    words = pc.count_substring_regex(found, r"\S+")
    found = pc.if_else(
        pc.less_equal(words, _HEADLINE_MAX_WORDS), found, pa.scalar(None, pa.string())
    )
    body = pc.utf8_ltrim(
        pc.replace_substring_regex(text, r"^\s*[^\n]*\n", "", max_replacements=1),
        characters="\n\r\t ",
    )
    return found, pc.if_else(pc.is_valid(found), body, text)


class TextSource(Source):
    """Plain-text files, one article per file; any encoding, headline and publisher found."""

    name = "text"
    options = (
        Option("paths", "paths", required=True, help="files, directories (recursive) or globs"),
        Option("include", "list", ["*"], help="file name patterns to take from directories"),
        Option(
            "encoding", "str", "auto", help="'auto' (BOM, UTF-8, then detection) or a codec name"
        ),
        Option(
            "publisher", "str", None, help="publisher for every article (else found in the text)"
        ),
        Option("published_at", "str", None, help="ISO 8601 publication time for every article"),
        Option("max_bytes", "int", DEFAULT_MAX_BYTES, help="larger files are rejected, not read"),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.published_at = None
        if self.opts.published_at is not None:
            try:
                value = datetime.fromisoformat(self.opts.published_at)
            except ValueError:
                raise self.error(
                    f"option 'published_at' is not an ISO 8601 time: {self.opts.published_at!r}",
                    hint='e.g. published_at = "2023-11-20T08:00:00Z"',
                ) from None
            self.published_at = value if value.tzinfo else value.replace(tzinfo=UTC)

    def units(self) -> Iterable[WorkUnit]:
        for ref in expand_paths(
            self.opts.paths, plugin=self.name, section=self.section, include=self.opts.include
        ):
            yield WorkUnit(ref)

    def read(self, unit: WorkUnit, ctx: Context) -> Iterator[pa.RecordBatch]:
        try:
            data = read_input_bytes(unit.input, max_bytes=self.opts.max_bytes)
        except InputError as exc:
            ctx.reject(exc.reason, detail=exc.detail)
            return
        try:
            text, encoding = decode_bytes(data, self.opts.encoding)
        except DecodeError as exc:
            ctx.reject(exc.reason, detail=exc.detail)
            return
        if not text.strip():
            ctx.reject("empty file", detail=f"{len(data)} bytes, no text")
            return
        yield self.articles_from_texts([text], [unit.key], [encoding], ctx)

    def articles_from_texts(
        self, texts: list[str], uris: list[str], encodings: list[str], ctx: Context
    ) -> pa.RecordBatch:
        raw = pa.array(texts, pa.string())
        raw = pc.replace_substring_regex(raw, r"\r\n?", "\n")
        title, text = split_headline(raw)
        publisher = (
            self.opts.publisher if self.opts.publisher is not None else extract_publisher(text)
        )
        metadata = [[("encoding", e)] for e in encodings]
        return ctx.articles(
            text=text,
            title=title,
            uri=uris,
            publisher=publisher,
            published_at=self.published_at,
            metadata=metadata,
        )


@hookimpl
def etl_register_plugins(register):
    register(TextSource)
