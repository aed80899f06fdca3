"""Loaded at start-up by the Python processes the test suite starts (tests/conftest.py puts
this folder on their ``PYTHONPATH``): ``import pandas`` fails in them, as in a core install.

pandas is a test dependency (this process reads outputs with it), not one of etl's; but
where it is installed pyarrow imports it the first time an array is built from Python
values, about half a CPU-second in every ``etl`` process and worker the suite starts. A
test that needs pandas in a child sets ``ETL_TESTS_HIDE_PANDAS=0`` in the child's
environment (``tests.helpers.WITH_PANDAS``).
"""

import importlib.abc
import importlib.machinery
import os
import sys


class _Refuse(importlib.abc.Loader):
    def create_module(self, spec):
        raise ImportError("pandas is hidden from the test suite's child processes", name=spec.name)

    def exec_module(self, module):  # never reached
        raise ImportError(module.__name__)


class _HidePandas(importlib.abc.MetaPathFinder):
    hides_pandas = True  # tests/conftest.py takes it out of pytest's own processes (xdist)

    # a spec whose loader refuses, not an error from find_spec: libraries that only ask
    # whether pandas exists (polars, at import) must not fail
    def find_spec(self, name, path=None, target=None):
        if name == "pandas":
            return importlib.machinery.ModuleSpec(name, _Refuse())
        return None


if os.environ.get("ETL_TESTS_HIDE_PANDAS") == "1":
    sys.meta_path.insert(0, _HidePandas())
