"""Older name of the store layer (:mod:`etl.store`), kept so existing imports work.

``Dataset`` is :class:`etl.store.Store`.
"""

from etl.store import *  # noqa: F403
from etl.store import Store as Dataset  # noqa: F401
from etl.store import __all__ as _store_all

__all__ = [*_store_all, "Dataset"]
