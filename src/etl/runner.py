"""Older name of the run layer (:mod:`etl.run`), kept so existing imports work."""

from etl.accounting import Totals
from etl.run import *  # noqa: F403
from etl.run import __all__ as _run_all

__all__ = [*_run_all, "Totals"]
