"""Listing inputs: local paths, globs and folders, ``http(s)://`` URLs and fsspec stores,
each as an :class:`~etl.plugin.InputRef` with its size, mtime and, for objects in a store, a
fingerprint from the listing (see :func:`object_fingerprint`). Nothing is read here."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from stat import S_ISLNK
from typing import Any

from etl.errors import ConfigError, MissingDependency
from etl.plugin import InputRef

_GLOB_CHARS = set("*?[")
COMPRESSION_SUFFIXES = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd"}


def is_url(path: str) -> bool:
    return "://" in path


def is_http(path: str) -> bool:
    return path.startswith(("http://", "https://"))


def strip_compression_suffix(name: str) -> str:
    """``a.jsonl.gz`` -> ``a.jsonl``; other names unchanged."""
    for suffix in COMPRESSION_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _matches(name: str, include: Sequence[str]) -> bool:
    if "*" in include:  # the default: every name (a listing of 100k files pays nothing)
        return True
    plain = strip_compression_suffix(name)
    for p in include:
        if "/" in p:
            if Path(name).match(p) or Path(plain).match(p):
                return True
        elif fnmatchcase(name, p) or fnmatchcase(plain, p):  # = Path.match, without a Path
            return True
    return False


# listing


def expand_paths(
    paths: Sequence[str],
    *,
    plugin: str,
    section: str,
    include: Sequence[str] = ("*",),
    outside_links: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> Iterator[InputRef]:
    """Every input that ``paths`` names, in a stable order, each once.

    A directory (local or in an fsspec store) is searched recursively for files matching
    ``include`` (hidden files and folders skipped). A glob is expanded wherever the store
    can list. An ``http(s)://`` URL is one input as it is. A path or glob that matches
    nothing is a configuration error.

    A local symlink found in a folder or by a glob must lead inside that folder (for a
    glob, the folder before its first wildcard): one that leads out (``in/x.txt ->
    /etc/passwd``) is an input whose reading is the reject ``link outside the input
    folder``, unless ``outside_links``. A path named as it is in ``paths`` is read wherever
    it leads: the pipeline named it.

    ``storage_options`` go to the fsspec filesystem of a URL (:mod:`etl.storage`).
    """
    seen: set[str] = set()
    for pattern in paths:
        matched = False
        if is_http(pattern):
            refs: Iterator[InputRef] = iter([InputRef(pattern)])
        elif is_url(pattern):
            refs = _expand_fsspec(pattern, include, plugin, section, storage_options)
        else:
            refs = _expand_local(pattern, include, outside_links)
        for ref in refs:
            matched = True
            if ref.key in seen:
                continue
            seen.add(ref.key)
            yield ref
        if not matched:
            raise ConfigError(
                f"plugin '{plugin}' ({section}): paths: nothing matches '{pattern}'",
                hint="check the path; relative paths are relative to the pipeline file's folder",
            )


def _expand_local(pattern: str, include: Sequence[str], outside_links: bool) -> list[InputRef]:
    if any(c in pattern for c in _GLOB_CHARS):
        refs = []
        unlisted: list[tuple[str, OSError]] = []
        linked: set[str] = set()
        matches = glob_local(pattern, unlisted, linked)
        root = None if outside_links else os.path.realpath(_glob_base(pattern) or os.curdir)
        for match in matches:
            if os.path.isdir(match):
                refs.extend(_walk(match, include, root))
            elif match in linked and root is not None and not _inside(match, root):
                refs.append(_outside(os.path.abspath(match), root))
            else:
                refs.append(_stat_ref(os.path.abspath(match)))
        refs.extend(_unlisted(os.path.abspath(f), exc) for f, exc in unlisted)
        return refs
    if os.path.isdir(pattern):
        return _walk(pattern, include, None if outside_links else os.path.realpath(pattern))
    if os.path.lexists(pattern):
        return [_stat_ref(os.path.abspath(pattern))]
    return []


def _inside(path: str, root: str) -> bool:
    """Whether ``path`` (links resolved) is ``root`` (a resolved folder) or below it."""
    real = os.path.realpath(path)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def _outside(path: str, root: str) -> InputRef:
    """The input that stands for a link leading out of the input folder: its reject."""
    return InputRef(
        path,
        problem=(
            "link outside the input folder",
            f"{path} leads to {os.path.realpath(path)}, outside {root}; set "
            "allow_outside_links = true to read it",
        ),
    )


def _unlisted(folder: str, exc: OSError) -> InputRef:
    """The input that stands for a folder the listing could not read: its reject names it
    (a folder skipped without a word would lose its files unnoticed)."""
    reason = "permission denied" if isinstance(exc, PermissionError) else "unreadable"
    why = exc.strerror or str(exc)
    return InputRef(folder, problem=(reason, f"cannot list the folder: {why}"))


def glob_local(
    pattern: str,
    unlisted: list[tuple[str, OSError]] | None = None,
    linked: set[str] | None = None,
) -> list[str]:
    """The local paths a glob matches, sorted: ``glob.glob(pattern, recursive=True)``,
    except that ``**`` never descends into a linked folder.

    ``glob`` follows folder links under ``**``, so ``ln -s . in/a`` (or three of them) makes
    ``in/**/*.txt`` list ``in/a/a/a/...`` without end. Here, as in a folder walk, ``**``
    spans real folders only; a link is still followed where the pattern names a level of
    its own (``in/*/x.txt``), which the pattern's length bounds. Names starting with ``.``
    match only a part that starts with ``.``, as with ``glob``. Folders that exist but
    cannot be listed are added to ``unlisted`` (with the error), where ``glob`` skipped
    them without a word. Matches reached through a link past the pattern's fixed folder
    (the match itself, or a folder on the way) are added to ``linked``.
    """
    parts = pattern.split(os.sep)
    start = _fixed_parts(parts)
    base = _glob_base(pattern)
    found: set[str] = set()
    via_link: set[str] = set()  # paths below the base that are, or pass through, a link
    stack = [(base, start)]  # a stack, not recursion: a hostile tree may be deep
    while stack:
        path, i = stack.pop()
        if i == len(parts):
            if path:  # "**" matches the current folder's contents, not the folder itself
                found.add(path)
                if linked is not None and (path in via_link or os.path.islink(path)):
                    linked.add(path)
            continue
        part = parts[i]
        if part == "**":
            stack.append((path, i + 1))  # ** matching no folder at all
            for entry in _entries(path, unlisted):
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append((_join(path, entry.name), i))
                elif i + 1 == len(parts):  # a trailing ** matches files too
                    found.add(_join(path, entry.name))
        elif not _magic(part):
            joined = _join(path, part)
            if i + 1 == len(parts) and os.path.lexists(joined) or os.path.isdir(joined):
                stack.append((joined, i + 1))
                if path in via_link or os.path.islink(joined):
                    via_link.add(joined)
        else:
            hidden = part.startswith(".")
            last = i + 1 == len(parts)
            for entry in _entries(path, unlisted):
                name = entry.name
                visible = hidden or not name.startswith(".")
                if visible and fnmatchcase(name, part) and (last or entry.is_dir()):
                    joined = _join(path, name)
                    stack.append((joined, i + 1))
                    if path in via_link or entry.is_symlink():
                        via_link.add(joined)
    return sorted(found)


def _fixed_parts(parts: list[str]) -> int:
    """How many leading parts of a split glob have no wildcard (the last one never counts)."""
    start = 0
    while start < len(parts) - 1 and not _magic(parts[start]):
        start += 1
    return start


def _glob_base(pattern: str) -> str:
    """The folder a glob starts from: its parts before the first wildcard ("" for none)."""
    parts = pattern.split(os.sep)
    start = _fixed_parts(parts)
    base = os.sep.join(parts[:start]) or ("" if start == 0 else os.sep)
    if start and not parts[0]:  # an absolute pattern: "/data/**" splits as ["", "data", ...]
        base = os.sep + base.lstrip(os.sep)
    return base


def _magic(part: str) -> bool:
    return any(c in part for c in _GLOB_CHARS)


def _join(folder: str, name: str) -> str:
    return os.path.join(folder, name) if folder else name


def _entries(folder: str, unlisted: list[tuple[str, OSError]] | None) -> list[os.DirEntry[str]]:
    """The entries of a folder; none where it cannot be listed (then noted in ``unlisted``,
    unless it is gone or no folder at all)."""
    try:
        with os.scandir(folder or os.curdir) as entries:
            return list(entries)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        if unlisted is not None:
            unlisted.append((folder or os.curdir, exc))
        return []


def _stat_ref(path: str) -> InputRef:
    try:
        st = os.stat(path)
    except OSError:
        # exists in the listing but cannot be stat'ed: the source rejects it on read
        return InputRef(path)
    return InputRef(path, st.st_size, st.st_mtime)


def _walk(directory: str, include: Sequence[str], inside: str | None = None) -> list[InputRef]:
    """Files under ``directory`` in sorted order, each with its size and mtime.

    ``os.fwalk`` hands out each folder's descriptor, so a file is stat'ed by its name in
    its folder rather than by its full path (a listing of 100k files is a third faster),
    and the path is joined once per file. Like ``os.walk``, folder symlinks are not followed.
    A folder that cannot be listed is an input of its own, whose reading is its reject; so
    is a file link that leads out of ``inside`` (a resolved folder; None: links anywhere).
    """
    refs: list[InputRef] = []
    stat, sep = os.stat, os.sep
    # fwalk names a folder it cannot open by its name only: note every folder it should
    # enter, to find which ones it did not
    failed: dict[str, OSError] = {}
    expected: list[str] = []
    entered: set[str] = set()
    # absolute once: fwalk then yields absolute, normalised folders
    top = os.path.abspath(directory)
    walk = os.fwalk(top, onerror=lambda exc: failed.setdefault(exc.filename, exc))
    try:
        for root, dirs, files, dir_fd in walk:
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            prefix = root if root.endswith(sep) else root + sep
            entered.add(root)
            expected.extend(prefix + d for d in dirs)
            for name in sorted(files):
                if name.startswith(".") or not _matches(name, include):
                    continue
                try:
                    # not following links: the same one call for a plain file, and a link
                    # is known as one
                    st = stat(name, dir_fd=dir_fd, follow_symlinks=False)
                    if S_ISLNK(st.st_mode):
                        if inside is not None and not _inside(prefix + name, inside):
                            refs.append(_outside(prefix + name, inside))
                            continue
                        st = stat(name, dir_fd=dir_fd)
                except OSError:
                    refs.append(InputRef(prefix + name))
                else:
                    refs.append(InputRef(prefix + name, st.st_size, st.st_mtime))
    except OSError as exc:  # fwalk raises for the top folder itself
        if entered:
            raise
        return [_unlisted(top, exc)]
    for folder in expected if failed else ():
        exc = failed.get(os.path.basename(folder))
        if exc is not None and folder not in entered and not os.path.islink(folder):
            refs.append(_unlisted(folder, exc))
    return refs


def _fsspec(plugin: str = "inputs") -> Any:
    try:
        import fsspec
    except ImportError:
        raise MissingDependency(plugin, "fsspec", "'etl[remote]'") from None
    return fsspec


def _expand_fsspec(
    pattern: str,
    include: Sequence[str],
    plugin: str,
    section: str,
    storage_options: Mapping[str, Any] | None = None,
) -> Iterator[InputRef]:
    from etl.storage import filesystem

    _fsspec(plugin)
    try:
        fs, path = filesystem(pattern, storage_options, plugin=plugin)
    except ConfigError as exc:
        raise ConfigError(
            f"plugin '{plugin}' ({section}): paths: cannot open '{pattern}': "
            f"{exc.message.rpartition(': ')[2]}",
            hint="check the URL and the section's storage_options",
        ) from exc
    try:
        if any(c in path for c in _GLOB_CHARS):
            found = []
            for match in sorted(fs.glob(path)):
                if fs.isdir(match):
                    found.extend(_find(fs, match, include))
                else:
                    found.append((match, fs.info(match)))
        elif fs.isdir(path):
            found = _find(fs, path, include)
        elif fs.exists(path):
            found = [(path, fs.info(path))]
        else:
            found = []
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"plugin '{plugin}' ({section}): paths: cannot list '{pattern}': "
            f"{type(exc).__name__}: {exc}",
            hint="check the URL and your credentials for the store",
        ) from exc
    for name, info in found:
        mtime = info.get("mtime") or info.get("LastModified") or info.get("created")
        if not isinstance(mtime, (int, float)):
            mtime = mtime.timestamp() if hasattr(mtime, "timestamp") else None
        fingerprint = object_fingerprint(info, mtime)
        yield InputRef(fs.unstrip_protocol(name), info.get("size"), mtime, fingerprint)


#: listing keys that name an object's version, most specific first (S3, GCS, Azure, others)
_VERSION_KEYS = ("VersionId", "version_id", "generation", "ETag", "etag", "md5Hash", "checksum")


def object_fingerprint(info: dict[str, Any], mtime: float | None) -> str | None:
    """What an object store's listing says about an object's version (no read needed):
    its version id or ETag, else its modification time, with its size; None without them."""
    size = info.get("size")
    for key in _VERSION_KEYS:
        value = info.get(key)
        if value:
            return f"{key}:{str(value).strip(chr(34))}:{size}"
    if mtime is not None and size is not None:
        return f"mtime:{mtime!r}:{size}"
    return None


def _find(fs: Any, directory: str, include: Sequence[str]) -> list[tuple[str, dict]]:
    found = fs.find(directory, detail=True)
    out = []
    for name in sorted(found):
        parts = name[len(directory) :].strip("/").split("/")
        if any(p.startswith(".") for p in parts):
            continue
        if _matches(parts[-1], include):
            out.append((name, found[name]))
    return out


# reading
