"""Finding inputs: paths, directories (recursive) and globs, expanded to InputRefs.

Later issues add compressed files and URLs here, so every file source gets them at once.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from etl.errors import ConfigError
from etl.plugin import InputRef

_GLOB_CHARS = set("*?[")


def expand_paths(
    paths: Sequence[str], *, plugin: str, section: str, include: Sequence[str] = ("*",)
) -> Iterator[InputRef]:
    """Every file that ``paths`` names, in a stable order, each once.

    A directory is searched recursively for files matching ``include`` (hidden files and
    folders skipped). A path or glob that matches nothing is a configuration error.
    """
    seen: set[str] = set()
    for pattern in paths:
        matched = False
        for path in _expand_one(pattern, include):
            matched = True
            if path in seen:
                continue
            seen.add(path)
            try:
                st = os.stat(path)
                yield InputRef(path, st.st_size, st.st_mtime)
            except OSError:
                # exists in the listing but cannot be stat'ed: the source rejects it on read
                yield InputRef(path)
        if not matched:
            raise ConfigError(
                f"plugin '{plugin}' ({section}): paths: nothing matches '{pattern}'",
                hint="check the path; relative paths are relative to the pipeline file's folder",
            )


def _expand_one(pattern: str, include: Sequence[str]) -> Iterator[str]:
    if any(c in pattern for c in _GLOB_CHARS):
        for match in sorted(glob.glob(pattern, recursive=True)):
            if os.path.isdir(match):
                yield from _walk(match, include)
            else:
                yield os.path.abspath(match)
    elif os.path.isdir(pattern):
        yield from _walk(pattern, include)
    elif os.path.lexists(pattern):
        yield os.path.abspath(pattern)


def _walk(directory: str, include: Sequence[str]) -> Iterator[str]:
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            if any(Path(name).match(p) for p in include):
                yield os.path.abspath(os.path.join(root, name))
