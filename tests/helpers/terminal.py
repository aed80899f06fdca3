"""Run the real ``etl`` command in a terminal (a pseudo-terminal from Python's ``pty``).

For what only shows on a terminal: the live progress display, colours, ``NO_COLOR``.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path


def run_in_terminal(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float = 120,
    columns: int = 120,
) -> tuple[int, str]:
    """Run ``etl ARGS`` with a pseudo-terminal as its stdin, stdout and stderr.

    Returns:
        (exit code, everything the terminal received, escape sequences included).
    """
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    # a terminal of a known width, as a person's would be
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    full_env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "ETL_PROGRESS")}
    full_env.update({"TERM": "xterm-256color", "COLUMNS": str(columns), **(env or {})})
    proc = subprocess.Popen(
        [sys.executable, "-m", "etl.cli", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=cwd,
        env=full_env,
        close_fds=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the last holder of the terminal closed it
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace")
