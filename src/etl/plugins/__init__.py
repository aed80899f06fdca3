"""The plugin layer: hook specs, base classes, options, capabilities and the manager.

* :mod:`~etl.plugins.options`: :class:`Option` and how values are checked;
* :mod:`~etl.plugins.base`: :class:`Plugin` and the four kinds (``Source``, ``Transform``,
  ``Sink``, ``Executor``), ``InputRef``, ``WorkUnit``, ``WriteResult``;
* :mod:`~etl.plugins.capabilities`: ``ReadsMany``, ``WorkerFiles`` (with ``WorkerWriter``
  and ``StagedFile``);
* :mod:`~etl.plugins.hookspecs`: the hooks and the ``hookimpl`` marker;
* :mod:`~etl.plugins.manager`: :class:`PluginManager` and :func:`get_plugin_manager`.

Plugin authors import these names from ``etl`` (``etl.Source``, ``etl.hookimpl``...).
"""

from etl.plugins.manager import DEFAULT_PLUGINS, PluginManager, get_plugin_manager

__all__ = ["DEFAULT_PLUGINS", "PluginManager", "get_plugin_manager"]
