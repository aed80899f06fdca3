"""Remote inputs: ``http(s)://`` fetched with retries, within a deadline, redirects to
``http(s)://`` only; the fetch options every file source offers.

:mod:`etl.inputs` reads what this opens (and re-exports its names: plugins import them
from there). Three limits, each a reject of the input when it is passed:

* ``timeout``: seconds to connect, and to wait for each read;
* ``deadline``: seconds for the whole input, from the first connection to the last byte,
  retries and backoff included. A server that sends a byte a second never trips a per-read
  timeout; the deadline shuts the connection (a watchdog thread shuts the socket down, so a
  read blocked in the middle of the headers ends too);
* ``retries``: how many times a failed fetch (refused, timeout, 404, 408, 425, 429, 5xx) is
  tried again, backing off exponentially.

A redirect is followed only to ``http://`` or ``https://`` (urllib also follows ``ftp://``):
a page must not send the fetcher to another protocol. An ``ftp://`` or other fsspec URL is
read when the pipeline names it in ``paths``.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from etl.errors import InputError
from etl.plugin import Option

#: retries of a failed remote fetch, after the first attempt
DEFAULT_RETRIES = 3
#: seconds to wait for a remote input to connect or send data
DEFAULT_TIMEOUT = 30.0
#: seconds one remote input may take in all (connecting, retries, reading to its end)
DEFAULT_DEADLINE = 900.0
#: seconds before the first retry; doubled for each next one, at most MAX_BACKOFF
DEFAULT_BACKOFF = 0.5
MAX_BACKOFF = 30.0
#: HTTP statuses worth another try (besides every 5xx)
RETRY_STATUSES = frozenset({404, 408, 425, 429})
USER_AGENT = "etl (+https://pypi.org/project/etl)"
#: the schemes a redirect may lead to
REDIRECT_SCHEMES = ("http://", "https://")


REMOTE_OPTIONS: tuple[Option, ...] = (
    Option(
        "retries",
        "int",
        DEFAULT_RETRIES,
        min=0,
        help="retries of a failed remote fetch (refused, timeout, 404, 5xx), backing off",
        fingerprint=False,
    ),
    Option(
        "backoff",
        "float",
        DEFAULT_BACKOFF,
        min=0,
        help="seconds before the first retry, doubled before each next one (at most 30)",
        fingerprint=False,
    ),
    Option(
        "timeout",
        "float",
        DEFAULT_TIMEOUT,
        min=0,
        min_exclusive=True,
        help="seconds to wait for a remote input to answer",
        fingerprint=False,
    ),
    Option(
        "deadline",
        "float",
        DEFAULT_DEADLINE,
        min=0,
        min_exclusive=True,
        help="seconds one remote input may take in all, retries included, to its last byte",
        fingerprint=False,
    ),
)


#: where an fsspec store is and how to log in (etl.storage); every file source has it, since
#: listing ``paths`` needs it as much as reading does
STORAGE_OPTION = Option(
    "storage_options",
    "dict",
    {},
    help="options for the object store of s3://, gs://... paths (endpoint_url, region, "
    "key, secret, anon, profile...), passed to fsspec; credentials are redacted",
    fingerprint=False,
)


def remote_kwargs(opts: Any) -> dict[str, Any]:
    """The fetch settings of a plugin's options (the defaults where it has none)."""
    return {
        "retries": getattr(opts, "retries", DEFAULT_RETRIES),
        "backoff": getattr(opts, "backoff", DEFAULT_BACKOFF),
        "timeout": getattr(opts, "timeout", DEFAULT_TIMEOUT),
        "deadline": getattr(opts, "deadline", DEFAULT_DEADLINE),
        "storage_options": getattr(opts, "storage_options", None) or {},
    }


class Watch:
    """The deadline of one input: a timer that, when it fires, marks the input expired and
    shuts down the socket it is reading (so a blocked read returns at once).

    Args:
        seconds: the deadline; None for none.
    """

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.expired = False
        self._ends = time.monotonic() + seconds if seconds is not None else None
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        if seconds is not None:
            self._timer = threading.Timer(seconds, self._expire)
            self._timer.daemon = True
            self._timer.start()

    def left(self) -> float | None:
        """Seconds until the deadline (None: no deadline)."""
        return None if self._ends is None else self._ends - time.monotonic()

    def attach(self, sock: socket.socket | None) -> None:
        """The socket the input is read from now (each attempt connects anew)."""
        with self._lock:
            self._sock = sock
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            _shut(self._sock)

    def error(self) -> InputError:
        return InputError("timeout", f"not read in full within deadline {self.seconds:g} s")

    def check(self) -> None:
        """Raise the deadline's InputError if it has passed."""
        if self.expired or (self._ends is not None and time.monotonic() > self._ends):
            self.expired = True
            raise self.error()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.attach(None)


def _shut(sock: socket.socket | None) -> None:
    if sock is not None:
        # the plain socket's shutdown, also under TLS: the reading thread owns the TLS
        # state, and a blocked recv returns as soon as the socket is shut down
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watched:
    """A connection whose socket the input's :class:`Watch` can shut down (a mixin)."""

    def __init__(self, *args: Any, watch: Watch, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._watch = watch

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self._watch.attach(self.sock)  # type: ignore[attr-defined]


class _WatchedHTTP(_Watched, http.client.HTTPConnection):
    pass


class _WatchedHTTPS(_Watched, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, watch: Watch) -> None:
        super().__init__()
        self.watch = watch

    def http_open(self, req: Any) -> Any:
        return self.do_open(_WatchedHTTP, req, watch=self.watch)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, watch: Watch) -> None:
        super().__init__()
        self.watch = watch

    def https_open(self, req: Any) -> Any:
        return self.do_open(_WatchedHTTPS, req, context=self._context, watch=self.watch)


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects to ``http(s)://`` only (urllib follows ``ftp://`` too)."""

    def http_error_302(self, req: Any, fp: Any, code: int, msg: str, headers: Any) -> Any:
        location = headers.get("location") or headers.get("uri") or ""
        target = urllib.parse.urljoin(req.full_url, location)
        if location and not target.lower().startswith(REDIRECT_SCHEMES):
            fp.close()
            raise InputError(
                "unsupported redirect",
                f"{req.full_url} redirects ({code}) to {target.split(':', 1)[0]}:; only "
                "http(s) redirects are followed",
            )
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def fetch_error(exc: BaseException) -> tuple[str, str, bool]:
    """(reject reason, detail, worth retrying) for a failed fetch."""
    if isinstance(exc, urllib.error.HTTPError):
        retry = exc.code in RETRY_STATUSES or exc.code >= 500
        return f"HTTP {exc.code}", str(exc.reason), retry
    if isinstance(exc, urllib.error.URLError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timeout", str(exc) or "no answer in time", True
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused", str(exc), True
    if isinstance(exc, FileNotFoundError):
        return "not found", str(exc), False
    if isinstance(exc, PermissionError):
        return "permission denied", str(exc), False
    return "fetch failed", f"{type(exc).__name__}: {exc}", True


def with_retries(
    key: str, opener: Callable[[], Any], retries: int, backoff: float, watch: Watch | None = None
) -> Any:
    """``opener()``, tried again on a failure worth it; an InputError when it still fails
    after ``retries`` retries, or when the deadline passes first."""
    attempt = 0
    while True:
        try:
            return opener()
        except InputError:
            raise
        except Exception as exc:
            if watch is not None and watch.expired:
                raise watch.error() from None
            reason, detail, retry = fetch_error(exc)
        pause = min(backoff * (2**attempt), MAX_BACKOFF)
        left = watch.left() if watch is not None else None
        if left is not None and left <= pause:
            retry = False  # the deadline would pass before the next attempt
        if not retry or attempt >= retries:
            tries = f"{attempt + 1} attempt" + ("s" if attempt else "")
            raise InputError(reason, f"{key}: {detail} ({tries})")
        time.sleep(pause)
        attempt += 1


def open_http(
    url: str,
    timeout: float,
    retries: int,
    backoff: float,
    headers: Mapping[str, str] | None = None,
    watch: Watch | None = None,
) -> Any:
    """The response of a GET of ``url`` (retried, within ``watch``'s deadline)."""
    watch = watch if watch is not None else Watch(None)
    opener = urllib.request.build_opener(_HTTPHandler(watch), _HTTPSHandler(watch), _Redirects())
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})

    def attempt() -> Any:
        left = watch.left()
        wait = timeout if left is None else max(min(timeout, left), 0.001)
        return opener.open(request, timeout=wait)

    return with_retries(url, attempt, retries, backoff, watch)
