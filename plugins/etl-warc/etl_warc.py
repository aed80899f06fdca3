"""The ``warc`` source: WARC and ARC archives -> one article per HTML response record.

Records are read with warcio (gzipped per record or not; ARC records converted to WARC
form). Each HTML ``response`` is extracted as the ``html`` source does (``etl_html.extract``),
with the record's WARC-Target-URI as ``uri`` and its WARC-Date in ``metadata``. A truncated
or corrupt record is a reject with its offset; reading resumes at the next record boundary
found after it (a gzip member or a ``WARC/`` header line), always further on, so a damaged
archive cannot loop.
"""

from __future__ import annotations

import io
import logging
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

from etl.errors import MissingDependency
from etl.hookspecs import hookimpl
from etl.inputs import InputError, open_local
from etl.plugin import Option, WorkUnit
from etl.sources import FileSource

if TYPE_CHECKING:
    import pyarrow as pa

    from etl.context import Context

__version__ = "0.1.0"

INSTALL = "./plugins/etl-html ./plugins/etl-warc"
DEFAULT_INCLUDE = ["*.warc", "*.warc.gz", "*.arc", "*.arc.gz"]
DEFAULT_MAX_RECORD_BYTES = 64 * 1024 * 1024
HTML_TYPES = ("text/html", "application/xhtml+xml")
# how far past a corrupt record to look for the next one
_RESYNC_WINDOW = 1 << 20
_BOUNDARY = re.compile(
    rb"\x1f\x8b\x08|(?:^|\n)WARC/1\.[01]\r?\n|(?:^|\n)(?:https?|dns|filedesc|ftp):\S* \d"
)
_ARC_HEADER = re.compile(rb"(?:https?|dns|ftp):\S* \d")


def _imports():
    try:
        import etl_html
        from warcio.archiveiterator import ArchiveIterator
    except ImportError as exc:
        raise MissingDependency("warc", exc.name or "warcio", INSTALL) from None
    return ArchiveIterator, etl_html


def _find_next_record(stream: BinaryIO, start: int) -> int | None:
    """The offset of the first plausible record start at or after ``start``."""
    stream.seek(start)
    while True:
        window_at = stream.tell()
        window = stream.read(_RESYNC_WINDOW)
        if not window:
            return None
        match = _BOUNDARY.search(window)
        if match:
            found = window_at + match.start()
            if window[match.start() : match.start() + 1] == b"\n":
                found += 1
            return found
        if len(window) < _RESYNC_WINDOW:
            return None
        stream.seek(window_at + _RESYNC_WINDOW - 64)


def _ran_on(stream: BinaryIO, offset: int, before: int | None, start: int) -> int | None:
    """Where to read again after the record at ``offset`` if it ran on over other records: a
    record start inside it (after ``offset``, before ``before``; None: the end).

    A record cut short inside a gzip member can still parse (its headers are in the part that
    is left) and run on into the members after it, which warcio then never shows; an error,
    if any, comes only later. A gzip member counts as a record start only if it decompresses
    to a WARC or ARC header, so compressed bytes that happen to look like a gzip header do
    not. None if there is none (or it would not move past ``start``). The stream's position
    is kept.
    """
    position = stream.tell()
    try:
        at = offset + 1
        while True:
            found = _find_next_record(stream, at)
            if found is None or found <= start or (before is not None and found >= before):
                return None
            if _starts_record(stream, found):
                return found
            at = found + 1
    finally:
        stream.seek(position)


def _starts_record(stream: BinaryIO, at: int) -> bool:
    """A record starts at ``at``: a WARC or ARC header, or a gzip member holding one."""
    stream.seek(at)
    head = stream.read(4096)
    if head[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(31).decompress(head, 64)
        except zlib.error:
            return False
    head = head.lstrip(b"\r\n")
    return head.startswith((b"WARC/1.", b"filedesc:")) or bool(_ARC_HEADER.match(head))


class WarcSource(FileSource):
    """WARC and ARC files (gzipped or not): each HTML response record is an article."""

    name = "warc"
    default_include = DEFAULT_INCLUDE
    max_bytes_option = False  # a local archive is streamed; max_remote_bytes for remote ones
    # paths, include, retries and timeout come from FileSource
    options = (
        Option(
            "statuses",
            "list",
            [200],
            help="HTTP statuses whose responses are extracted (others are skipped and counted)",
        ),
        Option(
            "max_record_bytes",
            "int",
            DEFAULT_MAX_RECORD_BYTES,
            min=1,
            help="a larger response body is rejected, not read",
        ),
        Option(
            "favor",
            "str",
            "balanced",
            choices=("balanced", "precision", "recall"),
            help="extraction trade-off, as for the html source",
        ),
        Option("publisher", "str", None, help="publisher for every article (else the site name)"),
        Option(
            "max_remote_bytes",
            "int",
            1024 * 1024 * 1024,
            min=1,
            help="a remote archive is read into memory (to resync after damage): at most this",
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not all(isinstance(s, int) for s in self.opts.statuses):
            raise self.error("option 'statuses' must be a list of HTTP status numbers")
        _imports()

    def read(self, unit: WorkUnit, ctx: Context) -> Iterator[pa.RecordBatch]:
        _, etl_html = _imports()
        if "://" in unit.key:
            # decompressed whole (a gzip member per record or not, warcio reads it plain)
            data = self.read_bytes(unit, ctx, max_bytes=self.opts.max_remote_bytes)
            if data is None:  # rejected
                return
            stream: BinaryIO = io.BytesIO(data)
        else:
            # the file itself, not a decompressed stream: resyncing after damage seeks in it
            try:
                stream = open_local(unit.key)  # a FIFO or a device is refused, not read
            except InputError as exc:
                ctx.reject(exc.reason, detail=exc.detail)
                return
        if not _looks_like_archive(stream):
            # caught before warcio reads: a gzip bomb of zeros would otherwise be inflated
            # whole while warcio looks for the end of its first header line
            stream.close()
            ctx.reject(
                "not a WARC or ARC file",
                location="offset 0",
                detail="no WARC/ or filedesc: header at the start",
            )
            return
        seen: Counter[str] = Counter()
        rejected = 0
        found: list[dict[str, Any]] = []
        with stream:
            for item in self._records(stream, seen, ctx):
                if item is _SKIP:
                    continue
                if item is None:
                    rejected += 1
                    continue
                found.append(item)
                if len(found) >= ctx.batch_size:
                    yield etl_html.articles_batch(ctx, found, publisher=self.opts.publisher)
                    found = []
        for key, n in seen.items():
            if key != "articles":
                ctx.count(f"warc:{key}", n)
        if found:
            yield etl_html.articles_batch(ctx, found, publisher=self.opts.publisher)
        elif not rejected and not seen["articles"]:
            kinds = ", ".join(f"{k}={n}" for k, n in sorted(seen.items())) or "no records"
            ctx.reject("no HTML responses", detail=kinds)

    def _records(
        self, stream: BinaryIO, seen: Counter[str], ctx: Context
    ) -> Iterator[dict[str, Any] | None]:
        """Articles (dicts) and None for each reject, resyncing after corrupt records."""
        archive_iterator, _ = _imports()

        class Quiet(archive_iterator):
            # warcio prints a warning when a record is not followed by its blank lines (a
            # wrong Content-Length, a truncated record) and counts it in err_count; we turn
            # the count into a reject instead
            INC_RECORD = ""

        # ARC length fields are unreliable in the wild (warcio's own test ARC declares 12
        # bytes more than it holds): an ARC record is judged by its content, not its length
        check_length = not _is_arc(stream)
        start = 0
        while True:
            stream.seek(start)
            iterator = Quiet(stream, arc2warc=True)
            offset = start
            errors = 0
            # a record's article is held back until the next record shows that this one
            # ended where its Content-Length said (else it is a "truncated record" reject)
            pending: Any = _SKIP
            previous = None
            restart = None
            try:
                for record in iterator:
                    if _damaged(iterator, errors, previous, check_length):
                        errors = iterator.err_count
                        restart = _ran_on(stream, offset, iterator.offset, start)
                        if restart is not None:
                            self._corrupt(offset, pending, restart, seen, ctx)
                            yield None
                            break
                        pending = self._truncated(offset, pending, seen, ctx)
                    yield pending
                    # warcio's own position: the absolute start of the record just parsed
                    offset = iterator.offset
                    previous = record
                    pending = self._record(record, offset, seen, ctx)
                else:
                    end = iterator.offset  # where warcio stopped reading
                    # the last record may have run on over others without warcio noticing
                    restart = _ran_on(stream, offset, end, start) if previous else None
                    if restart is not None:
                        self._corrupt(offset, pending, restart, seen, ctx)
                        pending = None
                    elif _damaged(iterator, errors, previous, check_length):
                        pending = self._truncated(offset, pending, seen, ctx)
                    yield pending
                    if restart is None:
                        # warcio may also stop quietly at a damaged record: go on at the next
                        # record after it if there is one, else the rest is a record cut short
                        restart = _ran_on(stream, end, None, start)
                        if restart is None:
                            yield from self._check_tail(stream, end, ctx)
                            return
                        ctx.reject(
                            "corrupt record",
                            location=f"offset {end}",
                            detail=f"unreadable up to offset {restart}, where reading goes on",
                        )
                        yield None
            except Exception as exc:  # warcio raises many kinds on damaged input
                detail = f"{type(exc).__name__}: {exc}"[:500]
                failed_at = max(getattr(iterator, "offset", offset) or 0, offset)
                restart = (
                    _ran_on(stream, offset, failed_at, start)
                    if _damaged(iterator, errors, previous, check_length)
                    else None
                )
                if restart is not None:
                    self._corrupt(offset, pending, restart, seen, ctx)
                    yield None
                else:
                    yield pending
                    ctx.reject("corrupt record", location=f"offset {failed_at}", detail=detail)
                    yield None
                    restart = _find_next_record(stream, failed_at + 1)
                    if restart is None or restart <= start:
                        return
            start = restart

    @staticmethod
    def _corrupt(offset: int, pending: Any, restart: int, seen: Counter[str], ctx: Context) -> None:
        """Reject the record at ``offset``, which ran on over the records after it."""
        if isinstance(pending, dict):
            seen["articles"] -= 1
        ctx.reject(
            "corrupt record",
            location=f"offset {offset}",
            detail=f"cut short inside, it runs on over the next records; read again from "
            f"offset {restart}",
        )

    @staticmethod
    def _check_tail(stream: BinaryIO, end: int, ctx: Context) -> Iterator[None]:
        """A reject for bytes after the last record that warcio read (a record cut short)."""
        stream.seek(0, io.SEEK_END)
        size = stream.tell()
        if size <= end:
            return
        stream.seek(end)
        tail = stream.read(4096)
        if tail.strip(b"\r\n\x00 \t"):
            ctx.reject(
                "truncated record",
                location=f"offset {end}",
                detail=f"{size - end} bytes after the last complete record could not be read",
            )
            yield None

    @staticmethod
    def _truncated(offset: int, pending: Any, seen: Counter[str], ctx: Context) -> None:
        if isinstance(pending, dict):
            seen["articles"] -= 1
        ctx.reject(
            "truncated record",
            location=f"offset {offset}",
            detail="record not followed by its blank lines: Content-Length wrong or record cut short",
        )

    def _record(
        self, record: Any, offset: int, seen: Counter[str], ctx: Context
    ) -> dict[str, Any] | None:
        _, etl_html = _imports()
        kind = record.rec_type or "unknown"
        if kind != "response":
            seen[f"skipped_{kind}"] += 1
            return _SKIP
        http = record.http_headers
        content_type = (http.get_header("Content-Type") if http else None) or (
            record.rec_headers.get_header("Content-Type") or ""
        )
        if content_type.split(";")[0].strip().lower() not in HTML_TYPES:
            seen["skipped_not_html"] += 1
            return _SKIP
        status = None
        if http is not None and http.get_statuscode():
            try:
                status = int(http.get_statuscode())
            except ValueError:
                status = None
        if status is not None and status not in self.opts.statuses:
            seen["skipped_status"] += 1
            return _SKIP
        uri = (record.rec_headers.get_header("WARC-Target-URI") or "").strip().strip("<>")
        location = f"offset {offset}"
        body = record.content_stream().read(self.opts.max_record_bytes + 1)
        if len(body) > self.opts.max_record_bytes:
            ctx.reject("too large", location=location, detail=f"{uri}: body over max_record_bytes")
            return None
        try:
            found = etl_html.extract(
                body,
                uri or None,
                http_charset=etl_html.charset_from_content_type(content_type),
                favor=self.opts.favor,
            )
        except etl_html.NoArticle as exc:
            ctx.reject(exc.reason, location=location, detail=f"{uri}: {exc.detail}")
            return None
        seen["articles"] += 1
        meta = found["metadata"]
        if found.get("uri") and found["uri"] != uri:
            meta["canonical_url"] = found["uri"]
        found["uri"] = uri or found.get("uri")
        meta["warc_date"] = record.rec_headers.get_header("WARC-Date")
        meta["warc_record_id"] = record.rec_headers.get_header("WARC-Record-ID")
        meta["warc_offset"] = str(offset)
        if status is not None:
            meta["http_status"] = str(status)
        return found


_SKIP: Any = "skip"

# warcio logs a warning per URI with a space in it; with no logging set up, Python would print
# each to stderr over the run's summary. An application that configures logging still gets them.
logging.getLogger("warcio").addHandler(logging.NullHandler())


def _is_arc(stream: BinaryIO) -> bool:
    """An ARC file (its first record is the ``filedesc://`` header), gzipped or not."""
    stream.seek(0)
    head = stream.read(4096)
    stream.seek(0)
    if head[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(31).decompress(head, 64)
        except zlib.error:
            return False
    return head.lstrip().startswith(b"filedesc:")


def _looks_like_archive(stream: BinaryIO) -> bool:
    """The (decompressed) start of the stream is a WARC or ARC header."""
    stream.seek(0)
    head = stream.read(4096)
    stream.seek(0)
    if head[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(31).decompress(head, 256)
        except zlib.error:
            return False
    head = head.lstrip()
    return head.startswith((b"WARC/", b"filedesc:"))


def _damaged(iterator: Any, errors: int, previous: Any, check_length: bool) -> bool:
    """The record warcio read last (``previous``) did not end where it said: warcio counted
    an error since ``errors``, or (WARC, not ARC) its block is shorter than its length."""
    return iterator.err_count > errors or (check_length and _cut_short(previous))


def _cut_short(record: Any) -> bool:
    """The record's block ended before its Content-Length (the archive ends inside it)."""
    raw = getattr(record, "raw_stream", None)
    return bool(raw is not None and getattr(raw, "limit", 0))


@hookimpl
def etl_register_plugins(register):
    register(WarcSource)
