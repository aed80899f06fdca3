"""Registers the bundled executors: local (in process), processes (all cores), dask (a cluster).

The dask executor's module imports nothing of Dask until it runs, so registering it costs
nothing where Dask is not installed; building it there is a clear MissingDependency.
"""

from etl.executors.dask import DaskExecutor
from etl.executors.local import LocalExecutor
from etl.executors.processes import ProcessesExecutor
from etl.hookspecs import hookimpl


@hookimpl
def etl_register_plugins(register):
    register(LocalExecutor)
    register(ProcessesExecutor)
    register(DaskExecutor)
