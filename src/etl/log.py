"""structlog set-up: readable lines on a terminal, JSON lines otherwise or on request.

Logs go to stderr; stdout is kept for results (summaries, --json output).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

_LEVELS = {-1: logging.WARNING, 0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}


#: (format, verbosity) of the last configure(); None until then
_settings: tuple[str, int] | None = None
#: whether structlog has been set up with _settings yet
_applied = False


def configure(fmt: str = "auto", verbosity: int = 0, *, events: bool = False) -> None:
    """Set up logging once per CLI call.

    structlog itself is imported and configured on the first event that passes the level:
    most runs log nothing at the default level, and its import (asyncio with it) is a
    noticeable part of a short run's start-up.

    Args:
        fmt: "console", "json" or "auto" (console on a terminal, else JSON).
        verbosity: -1 quiet (errors only), 0 warnings, 1 info (-v), 2 debug (-vv).
        events: log the run's events (info) at the default verbosity too: someone who asked
            for JSON logs by name feeds them to a machine, which wants the run's events.
    """
    global _settings, _applied
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    if events and verbosity == 0:
        verbosity = 1
    _settings = (fmt, verbosity)
    _applied = False


def use_color(stream: Any) -> bool:
    """Colours on ``stream``: only on a terminal, and never when ``NO_COLOR`` is set to
    anything but the empty string (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def settings() -> tuple[str, int] | None:
    """The (format, verbosity) configure() was last called with; None if it was not."""
    return _settings


def _threshold() -> int:
    """The lowest level logged; 0 (everything) when etl did not configure logging."""
    if _settings is None:
        return 0
    verbosity = _settings[1]
    return logging.ERROR if verbosity < 0 else _LEVELS.get(min(verbosity, 2), logging.DEBUG)


def _structlog() -> Any:
    """structlog, set up as configure() asked."""
    global _applied
    import structlog

    if _settings is not None and not _applied:
        fmt, _ = _settings
        renderer: Any = (
            structlog.processors.JSONRenderer()
            if fmt == "json"
            else structlog.dev.ConsoleRenderer(colors=use_color(sys.stderr))
        )
        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                _redact,
                renderer,
            ],
            wrapper_class=structlog.make_filtering_bound_logger(_threshold()),
            logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
            cache_logger_on_first_use=False,
        )
        _applied = True
    return structlog


#: values that came from ${ENV} in a pipeline file: never printed (see add_secrets)
_SECRETS: set[str] = set()


def add_secrets(values: Any) -> None:
    """Show these values as ``***`` in every log line from now on."""
    _SECRETS.update(v for v in values if v)


def redact(text: str) -> str:
    """``text`` with every value given to :func:`add_secrets` shown as ``***`` (for what
    is printed outside log lines: tracebacks, error messages)."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _redact(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    if not _SECRETS:
        return event
    secrets = sorted(_SECRETS, key=len, reverse=True)

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            for secret in secrets:
                value = value.replace(secret, "***")
            return value
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if isinstance(value, BaseException):
            return clean(str(value))
        return value

    return {k: clean(v) for k, v in event.items()}


def get_logger(**bound: Any) -> Any:
    """A logger whose events carry ``bound`` (run id, stage, plugin)."""
    return _Logger(bound)


class _Logger:
    """A structlog bound logger made on the first event that passes the level."""

    __slots__ = ("_bound",)

    def __init__(self, bound: dict[str, Any]) -> None:
        self._bound = bound

    def bind(self, **more: Any) -> _Logger:
        return _Logger({**self._bound, **more})

    def _emit(self, level: int, method: str, event: Any, kw: dict[str, Any]) -> None:
        if level < _threshold():
            return
        logger = _structlog().get_logger("etl").bind(**self._bound)
        getattr(logger, method)(event, **kw)

    def debug(self, event: Any = None, **kw: Any) -> None:
        self._emit(logging.DEBUG, "debug", event, kw)

    def info(self, event: Any = None, **kw: Any) -> None:
        self._emit(logging.INFO, "info", event, kw)

    def warning(self, event: Any = None, **kw: Any) -> None:
        self._emit(logging.WARNING, "warning", event, kw)

    def error(self, event: Any = None, **kw: Any) -> None:
        self._emit(logging.ERROR, "error", event, kw)

    def exception(self, event: Any = None, **kw: Any) -> None:
        self._emit(logging.ERROR, "exception", event, kw)

    def critical(self, event: Any = None, **kw: Any) -> None:
        self._emit(logging.CRITICAL, "critical", event, kw)
