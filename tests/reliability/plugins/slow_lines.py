"""A test source: one article per line, ``delay`` seconds per file, so a test can interrupt a
run part way deterministically (a few seconds for 30 files) instead of racing a fast one.

``pids = "<folder>"`` leaves an empty file named after each process that read a file (the
workers of ``processes`` and ``dask``), so a test can check they are gone after the run.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import etl
from etl.hookspecs import hookimpl
from etl.inputs import expand_paths


class SlowLines(etl.Source):
    """One article per line of each file, after a pause per file."""

    name = "slow_lines"
    options = (
        etl.Option("paths", "paths", required=True, help="files or folders"),
        etl.Option("delay", "float", 0.0, help="seconds to wait before reading each file"),
        etl.Option("pids", "str", None, help="a folder to note the reading processes in"),
    )

    def units(self):
        for ref in expand_paths(self.opts.paths, plugin=self.name, section=self.section):
            yield etl.WorkUnit(ref)

    def read(self, unit, ctx):
        if self.opts.pids:
            (Path(self.opts.pids) / str(os.getpid())).touch()
        if self.opts.delay:
            time.sleep(self.opts.delay)
        lines = [line for line in Path(unit.key).read_text("utf-8").splitlines() if line.strip()]
        if not lines:
            ctx.reject("empty file")
            return
        yield ctx.articles(text=lines, uri=[f"{unit.key}#{i + 1}" for i in range(len(lines))])


@hookimpl
def etl_register_plugins(register):
    register(SlowLines)
