"""Options every command takes (anywhere on the line), and how a command ends on an error.

``-v``/``-q``, ``--log-format`` and ``--disable-plugin`` are accepted both before the
command (``etl -v run p.toml``) and after it (``etl run p.toml -v``): the group stores what
it was given in the click context and each command adds its own.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

import click

#: exit code of a command whose output pipe was closed (what a shell reports for a
#: process ended by SIGPIPE: 128 + 13), as `head`-style pipelines expect
BROKEN_PIPE_EXIT = 141


def _global_options(func: Callable[..., Any], *, group: bool) -> Callable[..., Any]:
    """The four global options; on the group their defaults must be "not given"."""
    func = click.option(
        "--disable-plugin",
        "disable",
        multiple=True,
        metavar="NAME",
        help="do not load this plugin or distribution (repeatable)",
    )(func)
    func = click.option(
        "--log-format",
        type=click.Choice(["auto", "console", "json"]),
        default=None,
        help="log lines as text or JSON (default auto: text on a terminal, else JSON; "
        "JSON asked for by name also carries the run's events without -v)",
    )(func)
    func = click.option("-q", "--quiet", is_flag=True, help="errors only")(func)
    return click.option(
        "-v", "--verbose", count=True, help="more output; -v shows tracebacks, -vv debug events"
    )(func)


def group_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The global options on the ``etl`` group: stored for the command that follows."""

    @functools.wraps(func)
    def wrapper(
        verbose: int, quiet: bool, log_format: str | None, disable: tuple[str, ...], **kw: Any
    ) -> Any:
        ctx = click.get_current_context()
        ctx.meta["etl.global"] = {
            "verbose": verbose,
            "quiet": quiet,
            "log_format": log_format,
            "disable": disable,
        }
        return func(**kw)

    return _global_options(wrapper, group=True)


def fail(exc: BaseException, verbose: int) -> None:
    """End the command on ``exc``: its message and exit code (a traceback with -v)."""
    from etl.errors import EtlError
    from etl.log import redact

    if verbose > 0:
        # the exceptions' messages may quote a value from ${ENV} (a path that holds a token)
        click.echo(redact("".join(traceback.format_exception(exc))), err=True, nl=False)
    if isinstance(exc, EtlError):
        click.echo(redact(f"etl: {exc}"), err=True)
        sys.exit(exc.exit_code)
    click.echo(redact(f"etl: internal error: {type(exc).__name__}: {exc}"), err=True)
    if verbose <= 0:
        click.echo("  hint: run again with -v to see the traceback, and report it", err=True)
    sys.exit(1)


def stdout_closed() -> bool:
    """Whether standard output is a pipe whose reader has gone (``etl plugins | head -1``).

    A BrokenPipeError may come from elsewhere (a plugin talking to a subprocess); only a
    closed standard output is the reader's choice and ends the command quietly.
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    try:
        import select

        poller = select.poll()
        poller.register(fd, 0)  # POLLERR and POLLHUP are always reported
        return any(event & (select.POLLERR | select.POLLHUP) for _, event in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll() here: trust the exception
        return True


def end_on_closed_pipe() -> None:
    """Exit quietly: nothing more can be shown to a reader who closed the pipe.

    Standard output is pointed at /dev/null first, so the interpreter's own flush at exit
    does not fail again with "Exception ignored ... BrokenPipeError".
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):
        pass
    sys.exit(BROKEN_PIPE_EXIT)


def resolve(
    verbose: int, quiet: bool, log_format: str | None, disable: tuple[str, ...]
) -> tuple[int, str, bool, tuple[str, ...]]:
    """The command's options joined with those given before it, to the group.

    Returns:
        (verbosity: -1 quiet, 0 default, 1 -v, 2 -vv; log format; whether the format was
        asked for by name; plugins to disable).
    """
    ctx = click.get_current_context(silent=True)
    before: dict[str, Any] = {}
    while ctx is not None:
        before = ctx.meta.get("etl.global") or before
        ctx = ctx.parent
    verbose += before.get("verbose", 0)
    quiet = quiet or before.get("quiet", False)
    fmt = log_format or before.get("log_format")
    disable = (*before.get("disable", ()), *disable)
    return (-1 if quiet else verbose), (fmt or "auto"), fmt is not None, disable


def command_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """-v/-q, --log-format and --disable-plugin on a command, and its error handling."""

    @functools.wraps(func)
    def wrapper(
        verbose: int, quiet: bool, log_format: str | None, disable: tuple[str, ...], **kw: Any
    ) -> Any:
        from etl import log

        level, fmt, named, disable = resolve(verbose, quiet, log_format, disable)
        log.configure(fmt, level, events=named and fmt == "json")
        try:
            return func(verbose=level, disable=disable, **kw)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt as exc:
            from etl.errors import Interrupted

            # Ctrl-C or SIGTERM: what became of the run (committed, checkpoints kept...)
            stop = exc if isinstance(exc, Interrupted) else Interrupted()
            click.echo(f"etl: {stop.message}", err=True)
            sys.exit(stop.exit_code)
        except BrokenPipeError as exc:
            if stdout_closed():
                end_on_closed_pipe()
            fail(exc, level)
        except BaseException as exc:
            fail(exc, level)

    return _global_options(wrapper, group=False)


def progress_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--progress auto|bar|log|none`` (for the commands that run a pipeline)."""

    def choose(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        from etl import progress

        progress.configure(value)

    return click.option(
        "--progress",
        type=click.Choice(["auto", "bar", "log", "none"]),
        default=None,
        expose_value=False,
        callback=choose,
        help="a live bar (on a terminal), a log line every few seconds, or nothing "
        "(default auto: a bar on a terminal, else log lines; ETL_PROGRESS=0: none)",
    )(func)


class DatasetPath(click.Path):
    """A dataset's folder (checked as ``click.Path`` checks it) or its URL (``s3://...``,
    passed as it is: the store opens it with the environment's credentials)."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, str) and "://" in value:
            return value
        return super().convert(value, param, ctx)
