"""A test transform that records its lifecycle: a line ``<pid> open``, ``<pid> batch`` or
``<pid> close`` per call, appended to the file its ``log`` option names (loaded as a local
plugin file, so it is shipped to workers)."""

import os

import etl


class Lifecycle(etl.Transform):
    """Passes batches through; logs open, each batch and close with the process id."""

    name = "lifecycle"
    options = (
        etl.Option("log", "str", "", help="append one line per call here"),
        etl.Option("fail_close", "bool", False, help="raise in close"),
    )

    def _note(self, what: str) -> None:
        with open(self.opts.log, "a") as f:
            f.write(f"{os.getpid()} {what}\n")

    def open(self, run):
        self._note("open")

    def process(self, batch, ctx):
        self._note("batch")
        return batch

    def close(self):
        self._note("close")
        if self.opts.fail_close:
            raise RuntimeError("the lifecycle transform cannot close")


@etl.hookimpl
def etl_register_plugins(register):
    register(Lifecycle)
