"""Registers the in-process executor."""

from etl.executors.local import LocalExecutor
from etl.hookspecs import hookimpl


@hookimpl
def etl_register_plugins(register):
    register(LocalExecutor)
