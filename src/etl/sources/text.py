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
import stat
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from etl.dates import parse_iso
from etl.decode import DecodeError, decode_bytes
from etl.hookspecs import hookimpl
from etl.inputs import sniff_compression
from etl.plugin import Option, ReadsMany, WorkUnit
from etl.schema import normalize_newlines, utf8_bytes, word_counts
from etl.sources.files import DEFAULT_MAX_BYTES as DEFAULT_MAX_BYTES  # the old name, kept
from etl.sources.files import FileSource
from etl.store import content_hash

if TYPE_CHECKING:
    from etl.context import Context

# O_NONBLOCK: a FIFO among the inputs must not block open() (it is refused by fstat below)
_O_RDONLY = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)

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


class TextSource(FileSource, ReadsMany):
    """Plain-text files, one article per file; any encoding, headline and publisher found."""

    name = "text"
    # paths, include = ["*"], max_bytes (64 MB), retries and timeout come from FileSource
    options = (
        Option(
            "encoding", "str", "auto", help="'auto' (BOM, UTF-8, then detection) or a codec name"
        ),
        Option(
            "publisher", "str", None, help="publisher for every article (else found in the text)"
        ),
        Option("published_at", "str", None, help="ISO 8601 publication time for every article"),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.published_at = None
        if self.opts.published_at is not None:
            try:
                self.published_at = parse_iso(self.opts.published_at)
            except ValueError:
                raise self.error(
                    f"option 'published_at' is not an ISO 8601 time: {self.opts.published_at!r}",
                    hint='e.g. published_at = "2023-11-20T08:00:00Z"',
                ) from None

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
        contents: list[bytes] = []  # UTF-8 (or, where encodings has it, decoded to UTF-8)
        positions: list[int] = []
        encodings: dict[int, str] = {}  # by index in contents: files not read as plain UTF-8
        sizes: dict[int, int] = {}  # by index in contents: bytes read, where not len(content)
        plain = self.opts.encoding == "auto"
        max_bytes = self.opts.max_bytes
        digests = ctx.digests
        # The common file (local, listed size, plain UTF-8 text) in as few steps as we can:
        # this loop runs once per file. Anything else takes _read_careful.
        for pos, unit in enumerate(units):
            ref = unit.input
            key, size = ref.key, ref.size
            data = None
            if size is not None and size <= max_bytes and "://" not in key:
                data = _read_local(key, size)
            if data is not None:
                digests[key] = content_hash(data)
                if (
                    plain
                    and data
                    and data[0] not in _BOM_FIRST_BYTES
                    and b"\x00" not in data
                    and b"\x7f" not in data
                ):
                    contents.append(data)
                    positions.append(pos)
                    continue
            read = self._read_careful(unit, ctx, data)
            if read is not None:
                data, encoding, size = read
                if encoding is not None:
                    encodings[len(contents)] = encoding
                sizes[len(contents)] = size
                contents.append(data)
                positions.append(pos)
        try:
            raw = pa.array(contents, pa.binary()).cast(pa.string())
            suspects, lf_only = _scan_controls(raw)
        except pa.ArrowInvalid:  # not all UTF-8
            raw, suspects, lf_only = None, range(len(contents)), False
        if len(suspects):
            # not UTF-8, or control characters (binary?): those files the careful way
            bad = set()
            for i in suspects:
                if i in encodings:
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
                contents, positions, encodings, sizes = _renumber(
                    keep, contents, positions, encodings, sizes
                )
            if bad or raw is None:
                raw = pa.array(contents, pa.binary()).cast(pa.string())
                lf_only = False
        # no suspects: the only C0 controls are tab, LF, FF and CR (all spaces to split on)
        words = word_counts(raw, controls=bool(len(suspects))).to_numpy()
        empty = np.flatnonzero(words == 0)
        if len(empty):
            for i in empty.tolist():
                size = sizes.get(i, len(contents[i]))
                ctx.reject(
                    "empty file", detail=f"{size} bytes, no text", input=units[positions[i]].key
                )
            kept = np.ones(len(raw), dtype=bool)
            kept[empty] = False
            raw = raw.filter(pa.array(kept))
            words = words[kept]
            contents, positions, encodings, sizes = _renumber(
                np.flatnonzero(kept).tolist(), contents, positions, encodings, sizes
            )
        del contents
        uris = pa.array([units[p].key for p in positions], pa.string())
        if encodings:
            encoding_array = pa.array(
                [encodings.get(i, "utf-8") for i in range(len(positions))], pa.string()
            )
        else:
            encoding_array = pa.repeat(pa.scalar("utf-8"), len(positions))
        batch = self._articles(raw, uris, encoding_array, ctx, words, lf_only=lf_only)
        return batch, np.asarray(positions, dtype=np.int32)

    def _read_careful(
        self, unit: WorkUnit, ctx: Context, data: bytes | None
    ) -> tuple[bytes, str | None, int] | None:
        """A file the fast loop of read_many did not take, as ``(UTF-8 bytes, encoding or
        None for plain UTF-8, bytes read)``; None when it became a reject.

        ``data`` is the file's bytes where they were read already (a local file with a BOM,
        NUL or DEL bytes, or a named encoding), else None: then it is read through
        :meth:`FileSource.read_bytes` (compressed, remote, grown since listed, ...).
        """
        if data is None:
            data = self.read_bytes(unit, ctx, input=unit.key)
            if data is None:
                return None
        size = len(data)
        if (
            self.opts.encoding != "auto"
            or not data
            or data[0] in _BOM_FIRST_BYTES
            or b"\x00" in data
            or b"\x7f" in data
        ):
            # a named codec, nothing, a BOM, NUL or DEL bytes: decode it the careful way now
            try:
                text, encoding = self._decode(data, self.opts.encoding)
            except DecodeError as exc:
                ctx.reject(exc.reason, detail=exc.detail, input=unit.key)
                return None
            return text, encoding, size
        return data, None, size

    @staticmethod
    def _decode(data: bytes, encoding: str) -> tuple[bytes, str]:
        """``data`` decoded (as decode_bytes does) and encoded again as UTF-8."""
        text, encoding = decode_bytes(data, encoding)
        try:
            return text.encode("utf-8"), encoding
        except UnicodeEncodeError as exc:  # lone surrogates from a UTF-16 file
            raise DecodeError("undecodable", str(exc)) from None

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
        *,
        lf_only: bool = False,
    ) -> pa.RecordBatch:
        raw = normalize_newlines(raw) if not lf_only else raw  # lf_only: known to have no CR
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
            lf_only=True,  # normalised above
        )


# first bytes of the byte-order marks decode.py knows (UTF-32 BE starts with NUL)
_BOM_FIRST_BYTES = frozenset(b"\xef\xff\xfe")
_TEXT_CONTROLS = np.array([9, 10, 12, 13], dtype=np.uint8)


def _read_local(path: str, size: int) -> bytes | None:
    """A local file's bytes, read as listed (``size`` bytes); None if it cannot be read so,
    or is compressed: those take :func:`etl.inputs.read_input_bytes`, which says why."""
    try:
        fd = os.open(path, _O_RDONLY)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None  # a FIFO, a device: read_input_bytes rejects it
        # size + 1: a buffer that fits (not max_bytes, which would map and unmap 64 MB per
        # file), and a file that grew since it was listed is noticed. os.read on the
        # descriptor: no buffered file object per file.
        data = os.read(fd, size + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(data) > size or sniff_compression(data) is not None:
        return None
    return data


def _renumber(
    keep: list[int],
    contents: list[bytes],
    positions: list[int],
    encodings: dict[int, str],
    sizes: dict[int, int],
) -> tuple[list[bytes], list[int], dict[int, str], dict[int, int]]:
    """The lists of read_many with only the entries ``keep`` (in order), renumbered."""
    new = {old: i for i, old in enumerate(keep)}
    return (
        [contents[i] for i in keep],
        [positions[i] for i in keep],
        {new[i]: e for i, e in encodings.items() if i in new},
        {new[i]: n for i, n in sizes.items() if i in new},
    )


def _scan_controls(text: pa.Array) -> tuple[np.ndarray, bool]:
    """Rows holding a C0 control character other than tab, LF, FF and CR; and whether LF is
    the only C0 control in ``text`` at all (then it has no CR to normalise either).

    decode.py takes text with many control characters for a binary file; the rows found
    here get its exact check. DEL is looked for as the files are read. Text with only LF
    (the common case) costs two counting passes over its bytes.
    """
    offsets, data = utf8_bytes(text)
    low = np.count_nonzero(data < 32)
    if not low or low == np.count_nonzero(data == 10):
        return np.zeros(0, dtype=np.int64), True
    at = np.flatnonzero(data < 32)
    at = at[~np.isin(data[at], _TEXT_CONTROLS)]
    if not len(at):
        return at, False
    return np.unique(np.searchsorted(offsets, at, side="right") - 1), False


@hookimpl
def etl_register_plugins(register):
    register(TextSource)
