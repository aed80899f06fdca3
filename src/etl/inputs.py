"""Inputs from anywhere: local paths and globs, ``http(s)://`` URLs, fsspec stores.

Every file source lists its inputs with :func:`expand_paths` and reads them with
:func:`read_input_bytes` (the whole input, for one-article-per-file sources) or
:func:`open_input` (a stream, for line-oriented sources). Both:

* decompress gzip, bzip2, xz and zstd transparently, found by magic bytes (so a ``.gz``
  that is not gzipped is read as it is, and a gzipped file without the suffix is still
  decompressed); directory listings match ``include`` patterns against the name with its
  compression suffix removed too (``*.jsonl`` takes ``a.jsonl.gz``);
* fetch ``http(s)://`` URLs with the standard library (:mod:`etl.remote`), retrying a
  failed fetch (refused, timeout, 404, 408, 429, 5xx) ``retries`` times with exponential
  backoff, each input within a total ``deadline``, redirects to ``http(s)://`` only;
* open other schemes (``s3://``, ``gs://``, ``memory://``...) with fsspec, an optional
  extra (``pip install 'etl[remote]'``) imported only when such a path appears;
* read local regular files only (:func:`open_local`: a FIFO or a device is refused);
* stop at ``max_bytes`` of decompressed content and at a decompression bomb (more than
  ``MAX_RATIO`` times the compressed bytes read, past the first ``BOMB_SLACK`` bytes; an
  HTTP ``Content-Encoding: gzip`` counts as compression), raising :class:`InputError`,
  which a source turns into a reject. Nothing is ever read whole into memory beyond the
  limit.

A source gives its users the fetch options by adding :data:`REMOTE_OPTIONS` to its own
``options`` and passing :func:`remote_kwargs` ``(self.opts)`` to the readers (a
:class:`etl.sources.FileSource` has both done for it). A plugin that fetches pages of its own
(the ``feed`` source's ``fetch = true``) calls :func:`fetch`: the same retries, limits and
decompression, and the response's Content-Type and final URL.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any

from etl.errors import InputError
from etl.listing import (  # noqa: F401 - part of this module's interface
    COMPRESSION_SUFFIXES,
    _fsspec,
    expand_paths,
    is_http,
    is_url,
    object_fingerprint,
    strip_compression_suffix,
)
from etl.plugin import InputRef
from etl.remote import (  # noqa: F401 - part of this module's interface
    DEFAULT_BACKOFF,
    DEFAULT_DEADLINE,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    MAX_BACKOFF,
    REMOTE_OPTIONS,
    RETRY_STATUSES,
    USER_AGENT,
    Watch,
    open_http,
    remote_kwargs,
    with_retries,
)

#: a decompressed stream larger than this many times its compressed bytes is a bomb ...
MAX_RATIO = 200
#: ... once past this many decompressed bytes (small files may compress very well)
BOMB_SLACK = 64 * 1024 * 1024


# magic bytes of the compressions every file source reads transparently
_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


_MAGIC_FIRST_BYTES = frozenset(magic[0] for magic, _ in _MAGIC)


def sniff_compression(head: bytes) -> str | None:
    """The compression whose magic bytes ``head`` starts with, or None."""
    if not head or head[0] not in _MAGIC_FIRST_BYTES:  # the common case, in one look
        return None
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


class _Counting(io.RawIOBase):
    """The raw input; counts bytes, and turns network and disk errors into InputError."""

    def __init__(
        self, f: Any, key: str, expected: int | None = None, watch: Watch | None = None
    ) -> None:
        self._f = f
        self._key = key
        self._expected = expected
        self._watch = watch
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        watch = self._watch
        try:
            into = getattr(self._f, "readinto", None)
            if into is not None:  # straight into the caller's buffer: no copy
                n = into(b) or 0
            else:
                data = self._f.read(len(b))
                n = len(data)
                b[:n] = data
        except InputError:
            raise
        except (OSError, ValueError, http.client.HTTPException) as exc:
            if watch is not None:  # a read the deadline cut short: that is the reason
                watch.check()
            if isinstance(exc, TimeoutError):
                raise InputError("timeout", f"reading stalled: {exc}") from None
            raise InputError("read failed", f"{type(exc).__name__}: {exc}") from None
        if watch is not None:  # the deadline may pass while bytes still trickle in
            watch.check()
        if not n and len(b) and self._expected is not None and self.count < self._expected:
            # http.client ends a body cut short quietly: say so instead of a silent truncation
            raise InputError(
                "read failed",
                f"the connection closed after {self.count} of {self._expected} bytes",
            )
        self.count += n
        return n

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._f.close()
        super().close()


class _Limited(io.RawIOBase):
    """The decompressed content; stops at max_bytes and at a decompression bomb."""

    def __init__(
        self, f: Any, raw: _Counting, kind: str | None, max_bytes: int | None, max_ratio: float
    ) -> None:
        self._f = f
        self._raw = raw
        self._kind = kind
        self._max_bytes = max_bytes
        self._max_ratio = max_ratio
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        import lzma

        try:
            data = self._f.read(len(b))
        except InputError:
            raise
        except (OSError, EOFError, lzma.LZMAError, ValueError) as exc:
            kind = self._kind or "input"
            raise InputError(f"corrupt {kind} data", f"{type(exc).__name__}: {exc}") from None
        except Exception as exc:  # zstandard.ZstdError and kin
            raise InputError(f"corrupt {self._kind} data", f"{type(exc).__name__}: {exc}") from None
        n = len(data)
        self.count += n
        if self._max_bytes is not None and self.count > self._max_bytes:
            more = " (decompressed)" if self._kind else ""
            raise InputError("too large", f"more than max_bytes {self._max_bytes}{more}")
        if (
            self._kind
            and self.count > BOMB_SLACK
            and self.count > self._max_ratio * max(self._raw.count, 1)
        ):
            raise InputError(
                "decompression bomb",
                f"{self._raw.count} {self._kind} bytes expanded to more than {self.count} "
                f"(ratio over {self._max_ratio:g})",
            )
        b[:n] = data
        return n

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._f.close()
        self._raw.close()
        super().close()


def _decompressor(kind: str, stream: IO[bytes]) -> Any:
    import bz2
    import gzip
    import lzma

    if kind == "gzip":
        return gzip.GzipFile(fileobj=stream)
    if kind == "bz2":
        return bz2.BZ2File(stream)
    if kind == "xz":
        return lzma.LZMAFile(stream)
    try:
        import zstandard
    except ImportError:
        raise InputError(
            "unsupported compression", "zstd input needs: pip install zstandard"
        ) from None
    return zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True)


def _open_raw(
    ref: InputRef,
    timeout: float,
    retries: int,
    backoff: float,
    watch: Watch,
    storage_options: Mapping[str, Any] | None = None,
) -> tuple[Any, Any]:
    """(the byte stream, the HTTP response or None)."""
    if ref.problem is not None:  # the listing refused it: a reject, nothing opened
        raise InputError(*ref.problem)
    if is_http(ref.key):
        response = open_http(ref.key, timeout, retries, backoff, watch=watch)
        return response, response
    if is_url(ref.key):
        from etl.storage import filesystem

        fs, path = filesystem(ref.key, storage_options)
        return with_retries(ref.key, lambda: fs.open(path, "rb"), retries, backoff, watch), None
    return open_local(ref.key), None


#: flags that open a FIFO without waiting for a writer (a FIFO is refused right after)
_O_PROBE = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


def open_local(path: str) -> io.BufferedReader:
    """A local regular file, opened for reading; anything else is an :class:`InputError`.

    A FIFO would block ``open()`` until something writes to it, and a device such as
    ``/dev/zero`` (or a link to one) never ends: the file is opened without blocking and
    refused unless ``fstat`` says it is a regular file (``not a regular file``).

    Args:
        path: the file's path.

    Raises:
        InputError: ``unreadable`` (it cannot be opened) or ``not a regular file``.
    """
    try:
        fd = os.open(path, _O_PROBE)
    except OSError as exc:
        raise InputError("unreadable", f"{type(exc).__name__}: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise InputError(
                "not a regular file", f"{_file_kind(mode)}: only regular files are read"
            )
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _file_kind(mode: int) -> str:
    """What a file that is not a regular one is, in words."""
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


@contextlib.contextmanager
def open_input(
    ref: InputRef,
    *,
    max_bytes: int | None = None,
    retries: int = DEFAULT_RETRIES,
    timeout: float = DEFAULT_TIMEOUT,
    backoff: float = DEFAULT_BACKOFF,
    max_ratio: float = MAX_RATIO,
    buffer_size: int = 1 << 20,
    deadline: float | None = DEFAULT_DEADLINE,
    storage_options: Mapping[str, Any] | None = None,
) -> Iterator[io.BufferedReader]:
    """A buffered binary stream of the input's (decompressed) content.

    Opening may raise :class:`InputError` (unreadable, not a regular file, HTTP 404 after
    the retries, ...); so may reading, part way (too large, decompression bomb, corrupt
    gzip data, timeout): a source keeps what it read before and rejects the rest.

    Args:
        ref: the input (a local path, an ``http(s)://`` URL or an fsspec URL).
        max_bytes: the most decompressed bytes to read (None: no limit).
        retries: how many times a failed fetch is tried again.
        timeout: seconds to wait for a remote answer (to connect, and for each read).
        backoff: seconds before the first retry, doubled each time.
        max_ratio: the largest decompressed/compressed ratio before it counts as a bomb.
        buffer_size: the read buffer (``peek`` sees this far ahead).
        deadline: seconds a remote input may take in all, from opening it to its last
            byte (retries included); None: no limit. Local files have none.
        storage_options: the source's ``storage_options`` for an fsspec URL (endpoint,
            region, credentials...: :mod:`etl.storage`).
    """
    watch = Watch(deadline if is_url(ref.key) else None)
    try:
        f, response = _open_raw(ref, timeout, retries, backoff, watch, storage_options)
        with _stream(ref, f, response, max_bytes, max_ratio, buffer_size, watch) as stream:
            yield stream
    finally:
        watch.cancel()


@contextlib.contextmanager
def _stream(
    ref: InputRef,
    f: Any,
    response: Any,
    max_bytes: int | None,
    max_ratio: float,
    buffer_size: int,
    watch: Watch | None = None,
) -> Iterator[io.BufferedReader]:
    """The (decompressed, limited) content of an opened input; closes ``f`` and ``response``."""
    length = response.headers.get("Content-Length", "") if response is not None else ""
    raw = _Counting(f, ref.key, int(length) if length.isdigit() else None, watch)
    limited: _Limited | None = None
    try:
        known = int(length) if length.isdigit() else ref.size
        source: io.RawIOBase = raw
        encoding = response.headers.get("Content-Encoding", "") if response is not None else ""
        encoded = encoding.lower() in ("gzip", "x-gzip")
        if encoded:
            import gzip

            source = _Counting(gzip.GzipFile(fileobj=io.BufferedReader(raw)), ref.key)
            known = None
        head_stream = io.BufferedReader(source, buffer_size=1 << 16)
        kind = sniff_compression(head_stream.peek(8)[:8])
        if kind is None and max_bytes is not None and known is not None and known > max_bytes:
            raise InputError("too large", f"{known} bytes > max_bytes {max_bytes}")
        inner = _decompressor(kind, head_stream) if kind else head_stream
        # a Content-Encoding is compression too: its ratio to the bytes received is checked
        # like a file's (4 MB on the wire must not inflate to 4 GiB without a limit)
        limited = _Limited(inner, raw, kind or ("gzip" if encoded else None), max_bytes, max_ratio)
        stream = io.BufferedReader(limited, buffer_size=buffer_size)
        yield stream
    finally:
        if limited is not None:
            limited.close()
        else:
            raw.close()
        if response is not None:
            with contextlib.suppress(Exception):
                response.close()


def read_input_bytes(
    ref: InputRef,
    *,
    max_bytes: int,
    retries: int = DEFAULT_RETRIES,
    timeout: float = DEFAULT_TIMEOUT,
    backoff: float = DEFAULT_BACKOFF,
    deadline: float | None = DEFAULT_DEADLINE,
    storage_options: Mapping[str, Any] | None = None,
) -> bytes:
    """The whole (decompressed) content of an input, at most ``max_bytes``.

    Works for local paths, ``http(s)://`` and fsspec URLs alike. Compression is found by
    magic bytes, whatever the file is called. More than ``max_bytes`` after decompression
    (a decompression bomb included) raises InputError without reading further; so does a
    fetch that still fails after ``retries`` retries, or takes more than ``deadline``
    seconds in all.
    """
    with open_input(
        ref,
        max_bytes=max_bytes,
        retries=retries,
        timeout=timeout,
        backoff=backoff,
        deadline=deadline,
        storage_options=storage_options,
    ) as stream:
        return stream.read()


@dataclass(frozen=True)
class Fetched:
    """What :func:`fetch` got: the (decompressed) body, the Content-Type header (None if
    absent) and the final URL, after redirects."""

    body: bytes
    content_type: str | None
    url: str


def fetch(
    url: str,
    *,
    max_bytes: int | None,
    retries: int = DEFAULT_RETRIES,
    timeout: float = DEFAULT_TIMEOUT,
    backoff: float = DEFAULT_BACKOFF,
    headers: Mapping[str, str] | None = None,
    deadline: float | None = DEFAULT_DEADLINE,
) -> Fetched:
    """GET an ``http(s)://`` URL the way remote inputs are fetched, for a plugin that fetches
    pages of its own.

    The same retries (refused, timeout, 404, 408, 425, 429, 5xx; ``backoff`` seconds, doubled
    each time, at most :data:`MAX_BACKOFF`), the same ``max_bytes``, decompression-bomb and
    deadline limits, redirects to ``http(s)://`` only, and ``Content-Encoding: gzip``
    undone. Raises :class:`InputError` whose reason is the reject reason (``HTTP 404``,
    ``timeout``, ``too large``, ``unsupported link``, ``unsupported redirect``...).

    Args:
        url: the page's URL; anything but ``http(s)://`` is an ``unsupported link``.
        max_bytes: the most (decompressed) bytes to read; None: no limit.
        retries: how many times a failed fetch is tried again.
        timeout: seconds to wait for an answer.
        backoff: seconds before the first retry.
        headers: request headers besides (or replacing) the default User-Agent.
        deadline: seconds the page may take in all, retries included; None: no limit.
    """
    if not is_http(url):
        raise InputError("unsupported link", url)
    watch = Watch(deadline)
    try:
        response = open_http(url, timeout, retries, backoff, headers, watch)
        content_type = response.headers.get("Content-Type")
        final = response.geturl() or url
        ref = InputRef(url)
        with _stream(ref, response, response, max_bytes, MAX_RATIO, 1 << 20, watch) as stream:
            body = stream.read()
    finally:
        watch.cancel()
    return Fetched(body, content_type, final)
