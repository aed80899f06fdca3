"""The hook specifications under their first module name; they live in
:mod:`etl.plugins.hookspecs` (``from etl.hookspecs import hookimpl`` keeps working)."""

from etl.plugins.hookspecs import *  # noqa: F403
from etl.plugins.hookspecs import __all__  # noqa: F401
