"""A test source: like ``lines``, but a file fails while ``<file>.fail`` exists (a transient
error: an exception escapes read), and a file ``<file>.gone`` makes it vanish (an I/O error)."""

from __future__ import annotations

from pathlib import Path

import etl
from etl.hookspecs import hookimpl
from etl.inputs import expand_paths


class FlakySource(etl.Source):
    """One article per line; fails while a marker file exists."""

    name = "flaky"
    options = (etl.Option("paths", "paths", required=True, help="files or folders"),)

    def units(self):
        for ref in expand_paths(
            self.opts.paths, plugin=self.name, section=self.section, include=["*.txt"]
        ):
            yield etl.WorkUnit(ref)

    def read(self, unit, ctx):
        path = Path(unit.key)
        if path.with_name(path.name + ".fail").exists():
            raise ConnectionError("the share went away for a moment")
        if path.with_name(path.name + ".silent").exists():
            return  # neither articles nor a reject: the streamer must account for it
        if path.with_name(path.name + ".unreadable").exists():
            ctx.reject("unreadable", detail="EIO")
            return
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not lines:
            ctx.reject("empty file")
            return
        yield ctx.articles(text=lines, uri=[unit.key] * len(lines))


@hookimpl
def etl_register_plugins(register):
    register(FlakySource)
