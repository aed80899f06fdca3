"""structlog set-up: readable lines on a terminal, JSON lines otherwise or on request.

Logs go to stderr; stdout is kept for results (summaries, --json output).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_LEVELS = {-1: logging.WARNING, 0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}


def configure(fmt: str = "auto", verbosity: int = 0) -> None:
    """Set up logging once per CLI call.

    Args:
        fmt: "console", "json" or "auto" (console on a terminal, else JSON).
        verbosity: -1 quiet (errors only), 0 warnings, 1 info (-v), 2 debug (-vv).
    """
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    level = logging.ERROR if verbosity < 0 else _LEVELS.get(min(verbosity, 2), logging.DEBUG)
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


#: values that came from ${ENV} in a pipeline file: never printed (see add_secrets)
_SECRETS: set[str] = set()


def add_secrets(values: Any) -> None:
    """Show these values as ``***`` in every log line from now on."""
    _SECRETS.update(v for v in values if v)


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
    return structlog.get_logger("etl").bind(**bound)
