"""A cache of what ``etl plugins`` lists, so that listing does not import every plugin.

Importing the plugins means importing pyarrow and numpy (half a second on a small machine)
only to print their names and options. The listing is kept in a JSON file keyed by
everything it depends on: etl's version and Python's, ``--disable-plugin`` and
``ETL_LOAD_PLUGINS``, every installed distribution with an ``etl`` entry point (name, version,
entry point), and the size and modification time of every source file of etl and of those
plugins' modules. Any change to one of them makes a new key, so a listing is never stale; a
cache that cannot be read or written is simply not used.

``ETL_CACHE_DIR`` names the folder (default: ``$XDG_CACHE_HOME/etl``, else ``~/.cache/etl``);
``ETL_CACHE_DIR=""`` turns the cache off.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

#: etl.plugins.manager.ENTRY_POINT_GROUP (not imported: that costs what the cache saves)
ENTRY_POINT_GROUP = "etl"


def cache_dir() -> Path | None:
    """The cache folder; None when the cache is off."""
    configured = os.environ.get("ETL_CACHE_DIR")
    if configured is not None:
        return Path(configured) if configured else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "etl"


def _files(root: Path) -> list[tuple[str, int, int]]:
    """(path, size, mtime) of every Python file under ``root`` (a package) or of ``root``."""
    if root.is_file():
        st = root.stat()
        return [(str(root), st.st_size, st.st_mtime_ns)]
    out = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            if name.endswith(".py"):
                st = os.stat(os.path.join(folder, name))
                out.append((os.path.join(folder, name), st.st_size, st.st_mtime_ns))
    return out


def _module_files(module: str) -> list[tuple[str, int, int]]:
    """The source files of a top-level module or package, found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec(module.split(".")[0])
    if spec is None:
        return [(module, -1, -1)]
    if spec.submodule_search_locations:
        return [f for loc in spec.submodule_search_locations for f in _files(Path(loc))]
    return _files(Path(spec.origin)) if spec.origin and os.path.exists(spec.origin) else []


def key(disable: tuple[str, ...]) -> str:
    """The cache key of the listing ``etl plugins`` would print now."""
    import importlib.metadata

    from etl import __version__

    parts: list[Any] = [
        __version__,
        sys.version,
        sys.prefix,
        sorted(disable),
        os.environ.get("ETL_LOAD_PLUGINS"),
        _files(Path(__file__).resolve().parents[1]),
    ]
    for ep in sorted(
        importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name, e.value)
    ):
        dist = ep.dist
        parts.append(
            [ep.name, ep.value, dist.name if dist else None, dist.version if dist else None]
        )
        parts.append(_module_files(ep.module))
    blob = json.dumps(parts, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def load(disable: tuple[str, ...]) -> tuple[list[dict[str, Any]] | None, Path | None]:
    """(the cached listing or None, the file to store it in or None)."""
    folder = cache_dir()
    if folder is None:
        return None, None
    try:
        path = folder / f"plugins-{key(disable)}.json"
    except Exception:  # a distribution or module that cannot be looked at: no cache
        return None, None
    try:
        return json.loads(path.read_text(encoding="utf-8")), path
    except (OSError, ValueError):
        return None, path


def store(path: Path | None, items: list[dict[str, Any]]) -> None:
    """Keep ``items`` at ``path`` (atomically; quietly not when it cannot be written)."""
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for old in path.parent.glob("plugins-*.json"):  # one listing is enough
            if old != path:
                old.unlink(missing_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(items, default=str), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass
