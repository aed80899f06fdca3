"""Run the real ``etl`` command in a process forked from a server that imported it once.

An interpreter spends about 0.4 CPU-seconds importing click, pyarrow, numpy and etl before
an ``etl`` command does anything; an end-to-end test suite that starts a few hundred spends
most of its time there (it was a quarter of this project's). :func:`run_cli` runs each
command in a fork of multiprocessing's fork server instead (one server per test process,
started on first use; the ``processes`` executor's workers come from the same kind of
server), so a command costs a fork. The child is still a process of its own: the test's
working folder and environment, a clean ``sys.path`` (the folder, ``PYTHONPATH``, and what
a new interpreter has, without the test process's own entries), its own output, and an
exit that is the command's (``sys.exit``, ``os._exit`` at a crash point, a signal).

A new interpreter is used instead where a fork cannot stand for one: ``fresh=True``, an
``env`` that sets a variable only start-up reads (``PYTHONPATH``, ``PYTHONHOME``, or one in
:data:`START_UP_VARIABLES`), or a platform without ``forkserver`` (Windows).
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

#: what the server imports before its first fork: the command, and what a run needs (the
#: ``processes`` executor's own preload: pyarrow, the worker side, the bundled plugins)
PRELOAD = ["etl.cli", "etl.run.warm", __name__]
#: environment variables read when an interpreter starts, which a fork would not honour;
#: a test suite may add its own (this project's adds the one its sitecustomize reads)
START_UP_VARIABLES = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONSAFEPATH"}


def can_fork() -> bool:
    """Whether this platform has multiprocessing's ``forkserver`` start method."""
    return "forkserver" in multiprocessing.get_all_start_methods()


def fork_server(also: Iterable[str] = ()) -> multiprocessing.context.BaseContext:
    """The ``forkserver`` context, its server started if it is not running yet.

    There is one fork server per process, whoever starts it: what it imports is set by the
    first to start it. A test suite whose tests also fork other workers from it (a Dask
    ``LocalCluster`` with ``distributed.worker.multiprocessing-method = "forkserver"``)
    starts it first, with what those need in ``also``.

    Args:
        also: more modules for the server to import (import errors are ignored).

    Returns:
        The ``multiprocessing`` context whose processes are forks of that server.
    """
    from multiprocessing import forkserver

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([*PRELOAD, *also])
    forkserver.ensure_running()
    return context


@functools.cache
def _interpreter_path() -> tuple[str, ...]:
    """``sys.path`` of a new interpreter, past its first entry and without PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = "import json, sys; print(json.dumps(sys.path[1:]))"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return tuple(json.loads(out.stdout))


def _command(args: list[str], cwd: str, env: dict[str, str], path: list[str], out: str) -> None:
    """The child: the test's folder, environment and ``sys.path``, output to files; then
    ``etl ARGS``, whose exit is this process's."""
    for fd, name in ((1, "stdout"), (2, "stderr")):
        file = os.open(os.path.join(out, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(file, fd)
        os.close(file)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.path[:] = path
    sys.argv = ["etl", *args]
    from etl.cli import main

    main()


def run_forked(
    args: list[str], cwd: str | Path | None, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """``etl ARGS`` in a fork of the server, with ``env`` as its whole environment (see
    :func:`etl.testing.run_cli`)."""
    where = os.path.abspath(cwd if cwd is not None else os.getcwd())
    extra = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    # as `python -m etl.cli` has it: the working folder first, then PYTHONPATH
    path = [where, *extra, *_interpreter_path()]
    context = fork_server()
    with tempfile.TemporaryDirectory(prefix="etl-run-cli-") as out:
        child = context.Process(target=_command, args=(list(args), where, env, path, out))
        child.start()
        child.join(timeout)
        if child.exitcode is None:
            child.kill()
            child.join()
            raise subprocess.TimeoutExpired(["etl", *args], timeout)
        stdout, stderr = (
            Path(out, name).read_text(errors="replace") if Path(out, name).exists() else ""
            for name in ("stdout", "stderr")
        )
    return subprocess.CompletedProcess(["etl", *args], child.exitcode, stdout, stderr)
