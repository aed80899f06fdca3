"""The plugin manager: builtins, then installed distributions, then local plugin files.

Order (later may not re-use an earlier name of the same kind):

1. ``DEFAULT_PLUGINS``: the bundled modules, registered like any third-party plugin;
2. the entry-point group ``etl`` of installed distributions (``ETL_LOAD_PLUGINS`` limits
   them to the named distributions; empty means none);
3. the files or modules a pipeline names in ``plugins = [...]``.

Nothing else is imported. Build a fresh registry with :func:`get_plugin_manager` for each CLI
call or test; there is no module-level global.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import pluggy

from etl.errors import ConfigError, PluginError
from etl.plugins import hookspecs
from etl.plugins.base import KINDS, Plugin, Registered
from etl.plugins.options import check_option_declarations

ENTRY_POINT_GROUP = "etl"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "etl.sources.text",
    "etl.sources.jsonl",
    "etl.sources.csv_source",
    "etl.sinks.parquet",
    "etl.transforms",
    "etl.executors.builtin",
)


class PluginManager(pluggy.PluginManager):
    """pluggy's manager plus the registry of plugin classes by kind and name."""

    def __init__(self) -> None:
        super().__init__("etl")
        self.add_hookspecs(hookspecs)
        self.registry: dict[str, dict[str, Registered]] = {kind: {} for kind in KINDS}
        self.blocked_names: set[str] = set()
        self._collected: set[str] = set()

    # loading

    def load_module(self, module: ModuleType, supplier: str, version: str = "") -> None:
        name = getattr(module, "__name__", repr(module))
        if self.is_registered(module) or name in self._collected:
            return
        self.register(module, name=name)
        self._collect(module, supplier, version)

    def _collect(self, module: ModuleType, supplier: str, version: str) -> None:
        impl = getattr(module, "etl_register_plugins", None)
        if impl is None:
            return
        self._collected.add(module.__name__)

        def register(cls: type[Plugin]) -> None:
            self.add_plugin_class(cls, supplier=supplier, version=version, module=module.__name__)

        impl(register=register)

    def add_plugin_class(
        self, cls: type[Plugin], *, supplier: str, version: str = "", module: str = ""
    ) -> None:
        """Register one plugin class; an error if its kind and name are taken."""
        if not (isinstance(cls, type) and issubclass(cls, Plugin)) or cls.kind not in KINDS:
            raise PluginError(
                f"{supplier} ({module}) registered {cls!r}, which is not a Source, "
                "Transform, Sink or Executor subclass",
                hint="register the class itself (not an instance) and subclass etl.Source, etc.",
            )
        if not cls.name:
            raise PluginError(f"plugin class {cls.__qualname__} ({module}) has no `name`")
        try:
            check_option_declarations(cls)
        except PluginError as exc:
            raise PluginError(f"{exc.message}; supplied by {supplier}", hint=exc.hint) from exc
        if cls.name in self.blocked_names:
            return
        taken = self.registry[cls.kind].get(cls.name)
        if taken is not None and taken.cls is not cls:
            raise PluginError(
                f"two {cls.kind} plugins are named '{cls.name}': one from {taken.supplier} "
                f"({taken.module}), one from {supplier} ({module})",
                hint="uninstall one, or disable one with --disable-plugin",
            )
        cls.supplier = supplier
        cls.supplier_version = version
        self.registry[cls.kind][cls.name] = Registered(cls, supplier, version, module)

    def load_builtins(self, modules: Iterable[str] = DEFAULT_PLUGINS) -> None:
        from etl import __version__

        for modname in modules:
            self.load_module(importlib.import_module(modname), "etl (builtin)", __version__)

    def load_entry_points(self, only: set[str] | None = None) -> None:
        """Load the ``etl`` entry points, of only the named distributions if ``only`` is set."""
        found: set[str] = set()
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist is not None else "?"
            version = ep.dist.version if ep.dist is not None else ""
            found.add(_canon(dist))
            if only is not None and _canon(dist) not in only:
                continue
            if ep.name in self.blocked_names or _canon(dist) in self.blocked_names:
                continue
            try:
                module = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"plugin '{ep.name}' from the distribution {dist} {version} failed to "
                    f"import: {type(exc).__name__}: {exc}",
                    hint=f"reinstall it (pip install --force-reinstall {dist}) or disable it "
                    f"with --disable-plugin {ep.name}",
                ) from exc
            self.load_module(module, dist, version)
        missing = sorted((only or set()) - found)
        if missing:
            raise ConfigError(
                f"ETL_LOAD_PLUGINS names {', '.join(missing)}, but no installed distribution of "
                "that name declares an `etl` entry point; installed: "
                f"{', '.join(sorted(found)) or 'none'}",
                hint="set ETL_LOAD_PLUGINS to distribution names (pip list shows them), "
                "comma-separated; empty means builtins only",
            )

    def load_local(self, spec: str, base_dir: Path) -> None:
        """Load a plugin named in a pipeline: a ``.py`` file (relative to ``base_dir``) or a module."""
        if spec.endswith(".py") or "/" in spec or os.sep in spec:
            path = (base_dir / spec).resolve()
            if not path.is_file():
                raise ConfigError(
                    f"plugins = [...]: no such plugin file '{spec}' (looked for {path})"
                )
            modname = "etl_local_" + path.stem
            module_spec = importlib.util.spec_from_file_location(modname, path)
            assert module_spec is not None and module_spec.loader is not None
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[modname] = module
            try:
                module_spec.loader.exec_module(module)
            except Exception as exc:
                sys.modules.pop(modname, None)
                raise PluginError(
                    f"plugin file '{spec}' failed to import: {type(exc).__name__}: {exc}"
                ) from exc
            self.load_module(module, f"local file {path}")
        else:
            try:
                module = importlib.import_module(spec)
            except Exception as exc:
                raise ConfigError(
                    f"plugins = [...]: module '{spec}' failed to import: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            self.load_module(module, f"module {spec}")

    # lookup

    def get(self, kind: str, name: str, section: str = "") -> type[Plugin]:
        found = self.registry[kind].get(name)
        if found is None:
            installed = ", ".join(sorted(self.registry[kind])) or "none"
            where = f" ({section})" if section else ""
            close = difflib.get_close_matches(name, self.registry[kind], n=1, cutoff=0.5)
            other = [k for k in KINDS if k != kind and name in self.registry[k]]
            guess = f"; did you mean '{close[0]}'?" if close else ""
            if other:
                guess = f"; '{name}' is a {other[0]} plugin"
            raise ConfigError(
                f"no {kind} plugin named '{name}'{where}. Installed: {installed}{guess}",
                hint=_install_hint(kind, name),
                key="plugin",
            )
        return found.cls

    def all(self) -> list[Registered]:
        return [reg for kind in KINDS for reg in self.registry[kind].values()]


# first-party plugin packages that live under plugins/, for "install X" hints
_FIRST_PARTY = {
    "html": "etl-html",
    "normalize": "etl-nlp",
    "language": "etl-nlp",
    "feed": "etl-feed",
    "warc": "etl-warc",
    "delta": "etl-delta",
    "dask": "etl[dask]",
}


def _install_hint(kind: str, name: str) -> str | None:
    package = _FIRST_PARTY.get(name)
    if package is None:
        return "run `etl plugins` to list what is installed"
    if package.startswith("etl["):
        return f"pip install '{package}'"
    return f"pip install ./plugins/{package}"


def _canon(name: str) -> str:
    return name.lower().replace("_", "-")


def get_plugin_manager(
    *,
    local: Iterable[str] = (),
    base_dir: Path | None = None,
    disable: Iterable[str] = (),
    entry_points: bool | None = None,
) -> PluginManager:
    """A fresh plugin manager with builtins, entry points and the given local plugins.

    Args:
        local: plugin files or modules named by a pipeline.
        base_dir: where relative plugin files are found (the pipeline's folder).
        disable: plugin names or distribution names not to load (``--disable-plugin``).
        entry_points: load installed distributions; by default yes, limited by
            ``ETL_LOAD_PLUGINS`` when that is set.
    """
    pm = PluginManager()
    pm.blocked_names = {_canon(d) for d in disable} | set(disable)
    pm.load_builtins()
    load_env = os.environ.get("ETL_LOAD_PLUGINS")
    if entry_points is None or entry_points:
        only = None
        if load_env is not None:
            only = {_canon(d.strip()) for d in load_env.split(",") if d.strip()}
        if only is None or only:
            pm.load_entry_points(only)
    for spec in local:
        pm.load_local(spec, base_dir or Path.cwd())
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise _unknown_hooks(pm, exc.plugin) from exc
    return pm


def _unknown_hooks(pm: PluginManager, module: object) -> PluginError:
    """A misspelt hook, named with the file that has it and the hook it probably meant."""
    known = [name for name in dir(hookspecs) if name.startswith("etl_")]
    marker = f"{pm.project_name}_impl"
    unknown = [
        name
        for name in dir(module)
        if name.startswith("etl_") and name not in known and hasattr(getattr(module, name), marker)
    ]
    guesses = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1)
        guesses.append(f"'{name}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
    where = getattr(module, "__file__", None) or pm.get_name(module)
    return PluginError(
        f"plugin module {where} implements unknown hooks: {', '.join(guesses)}",
        hint=f"the hooks are {', '.join(known)} (docs/plugins.md, Hook reference)",
    )
