"""The bundled ``text`` source: one article per plain-text file.

Files are read many at a time (:meth:`TextSource.read_many`, which the streamer calls with up
to a batch of units): the bytes of each file are read in a plain loop, and everything else
(UTF-8 validation, the binary check, headline, publisher, ids, counts) runs once per batch
on Arrow arrays. Files that are not plain UTF-8 (a BOM, NUL bytes, another encoding, a
compressed or remote input) take the careful path of :func:`etl.decode.decode_bytes` and
:func:`etl.inputs.read_input_bytes`, one at a time.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from etl.dataset import content_hash
from etl.decode import DecodeError, decode_bytes
from etl.hookspecs import hookimpl
from etl.inputs import InputError, expand_paths, read_input_bytes, sniff_compression
from etl.plugin import Option, Source, WorkUnit
from etl.schema import normalize_newlines, utf8_bytes, word_counts

if TYPE_CHECKING:
    from etl.context import Context

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
_O_RDONLY = os.O_RDONLY | getattr(os, "O_BINARY", 0)

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
        batch, _ = self.read_many([unit], ctx)
        if batch.num_rows:
            yield batch

    def read_many(
        self, units: Sequence[WorkUnit], ctx: Context
    ) -> tuple[pa.RecordBatch, np.ndarray]:
        """The articles of several files at once, and the position in ``units`` of each row.

        Rejects name their file (``input=unit.key``). The streamer calls this with up to a
        batch of units; :meth:`read` is the same for one unit.
        """
        contents: list[bytes] = []  # UTF-8 (or, where encodings[i] is None, taken for it)
        positions: list[int] = []
        encodings: list[str | None] = []
        sizes: list[int] = []
        auto = self.opts.encoding == "auto"
        for pos, unit in enumerate(units):
            try:
                data = self._read_bytes(unit, ctx)
            except InputError as exc:
                ctx.reject(exc.reason, detail=exc.detail, input=unit.key)
                continue
            size = len(data)
            encoding = None
            if not auto or data[:1] in _BOM_STARTS or b"\x00" in data:
                # a named codec, a BOM or NUL bytes: decode it the careful way now
                try:
                    data, encoding = self._decode(data, self.opts.encoding)
                except DecodeError as exc:
                    ctx.reject(exc.reason, detail=exc.detail, input=unit.key)
                    continue
            contents.append(data)
            positions.append(pos)
            encodings.append(encoding)
            sizes.append(size)
        try:
            raw = pa.array(contents, pa.binary()).cast(pa.string())
            suspects = _rows_with_controls(raw)
        except pa.ArrowInvalid:  # not all UTF-8
            raw, suspects = None, range(len(contents))
        if len(suspects):
            # not UTF-8, or control characters (binary?): those files the careful way
            bad = set()
            for i in suspects:
                if encodings[i] is not None:
                    continue
                try:
                    contents[i], encodings[i] = self._decode(contents[i], "auto")
                except DecodeError as exc:
                    ctx.reject(exc.reason, detail=exc.detail, input=units[positions[i]].key)
                    bad.add(i)
                else:
                    raw = None  # the decoded text may differ from the bytes
            if bad:
                keep = [i for i in range(len(contents)) if i not in bad]
                contents = [contents[i] for i in keep]
                positions = [positions[i] for i in keep]
                encodings = [encodings[i] for i in keep]
                sizes = [sizes[i] for i in keep]
            if bad or raw is None:
                raw = pa.array(contents, pa.binary()).cast(pa.string())
        del contents
        # no suspects: the only C0 controls are tab, LF, FF and CR (all spaces to split on)
        plain = not len(suspects)
        words = word_counts(raw, controls=not plain).to_numpy()
        empty = np.flatnonzero(words == 0)
        if len(empty):
            for i in empty.tolist():
                ctx.reject(
                    "empty file", detail=f"{sizes[i]} bytes, no text", input=units[positions[i]].key
                )
            kept = np.ones(len(raw), dtype=bool)
            kept[empty] = False
            raw = raw.filter(pa.array(kept))
            words = words[kept]
            positions = [p for p, k in zip(positions, kept.tolist(), strict=True) if k]
            encodings = [e for e, k in zip(encodings, kept.tolist(), strict=True) if k]
        uris = pa.array([units[p].key for p in positions], pa.string())
        if any(e is not None for e in encodings):
            encoding_array = pa.array([e or "utf-8" for e in encodings], pa.string())
        else:
            encoding_array = pa.repeat(pa.scalar("utf-8"), len(encodings))
        batch = self._articles(raw, uris, encoding_array, ctx, words)
        return batch, np.asarray(positions, dtype=np.int32)

    @staticmethod
    def _decode(data: bytes, encoding: str) -> tuple[bytes, str]:
        """``data`` decoded (as decode_bytes does) and encoded again as UTF-8."""
        text, encoding = decode_bytes(data, encoding)
        try:
            return text.encode("utf-8"), encoding
        except UnicodeEncodeError as exc:  # lone surrogates from a UTF-16 file
            raise DecodeError("undecodable", str(exc)) from None

    def _read_bytes(self, unit: WorkUnit, ctx: Context) -> bytes:
        """A file's bytes: a plain local file directly, anything else via read_input_bytes.

        A plain local file's content hash goes to ``ctx.digests`` (the sink remembers it without
        reading the file again).
        """
        ref = unit.input
        max_bytes = self.opts.max_bytes
        if ref.size is not None and ref.size <= max_bytes and "://" not in ref.key:
            try:
                fd = os.open(ref.key, _O_RDONLY)
            except OSError:
                fd = -1  # read_input_bytes says why
            if fd >= 0:
                try:
                    # the listed size + 1: a buffer that fits (not max_bytes, which would
                    # map and unmap 64 MB per file), and a file that grew since is noticed.
                    # os.read on the descriptor: no buffered file object per file
                    data = os.read(fd, ref.size + 1)
                except OSError:
                    data = None
                finally:
                    os.close(fd)
                if data is not None and len(data) <= ref.size and sniff_compression(data) is None:
                    ctx.digests[ref.key] = content_hash(data)
                    return data
        return read_input_bytes(ref, max_bytes=max_bytes)

    def articles_from_texts(
        self, texts: list[str], uris: list[str], encodings: list[str], ctx: Context
    ) -> pa.RecordBatch:
        """Articles from decoded texts (one per file), their paths and encodings."""
        return self._articles(
            pa.array(texts, pa.string()),
            pa.array(uris, pa.string()),
            pa.array(encodings, pa.string()),
            ctx,
        )

    def _articles(
        self,
        raw: pa.Array,
        uris: pa.Array,
        encodings: pa.Array,
        ctx: Context,
        raw_words: np.ndarray | None = None,
    ) -> pa.RecordBatch:
        raw = normalize_newlines(raw)
        title, text = split_headline(raw)
        word_count = None
        if raw_words is not None:
            # the headline is the first line, cut at a line break: the body has the text's
            # words less the headline's (counting the short titles, not the long bodies)
            title_words = word_counts(title).fill_null(0).to_numpy()
            word_count = pa.array(raw_words - title_words, pa.int64())
        publisher = (
            self.opts.publisher if self.opts.publisher is not None else extract_publisher(text)
        )
        n = len(raw)
        metadata = pa.MapArray.from_arrays(
            pa.array(np.arange(0, n + 1, dtype=np.int32)),
            pa.repeat(pa.scalar("encoding"), n),
            encodings,
        )
        return ctx.articles(
            text=text,
            title=title,
            uri=uris,
            publisher=publisher,
            published_at=self.published_at,
            metadata=metadata,
            word_count=word_count,
        )


# first bytes of the byte-order marks decode.py knows (UTF-32 BE starts with NUL); and b""
_BOM_STARTS = (b"\xef", b"\xff", b"\xfe", b"")
_TEXT_CONTROLS = np.array([9, 10, 12, 13], dtype=np.uint8)


def _rows_with_controls(text: pa.Array) -> np.ndarray:
    """Rows holding a C0 control character other than tab, LF, FF and CR, or DEL.

    decode.py takes text with many of them for a binary file; the rows found here get its
    exact check (rare in text, so the common batch costs two passes over its bytes).
    """
    offsets, data = utf8_bytes(text)
    at = np.flatnonzero(data < 32)
    if len(at):
        at = at[~np.isin(data[at], _TEXT_CONTROLS)]
    delete = np.flatnonzero(data == 127)
    if len(delete):
        at = np.concatenate([at, delete])
    if not len(at):
        return at
    return np.unique(np.searchsorted(offsets, at, side="right") - 1)


@hookimpl
def etl_register_plugins(register):
    register(TextSource)
