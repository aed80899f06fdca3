"""``etl init``: look at a folder (or a URL) and write a pipeline file that runs as it is.

What is found decides the sources: plain text, JSON Lines / JSON, CSV/TSV, saved web pages,
feeds and WARC archives (compressed copies too). For JSON Lines and CSV the first records are
read, and their keys mapped to the article's columns (``fields``). A kind whose plugin is not
installed is written commented out, with what to install.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etl.errors import ConfigError

#: file kinds: extension -> source plugin
KINDS = {
    ".txt": "text",
    ".text": "text",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".jsonlines": "jsonl",
    ".jl": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".tsv": "csv",
    ".tab": "csv",
    ".html": "html",
    ".htm": "html",
    ".rss": "feed",
    ".atom": "feed",
    ".xml": "feed",
    ".warc": "warc",
    ".arc": "warc",
}
COMPRESSED = (".gz", ".bz2", ".xz", ".zst")
#: where a plugin that is not installed comes from
INSTALL = {"html": "./plugins/etl-html", "feed": "./plugins/etl-feed", "warc": "./plugins/etl-warc"}
#: files looked at, at most (a huge tree is sampled, not walked whole)
MAX_FILES = 20_000
#: records read from each JSON Lines / CSV sample file, and files sampled per source
SAMPLE_RECORDS = 20
SAMPLE_FILES = 20


@dataclass
class Found:
    """The files of one source plugin found in the folder."""

    plugin: str
    count: int = 0
    extensions: Counter[str] = field(default_factory=Counter)
    examples: list[Path] = field(default_factory=list)
    #: files whose first records are read (JSON Lines, JSON, CSV)
    samples: list[Path] = field(default_factory=list)


def kind_of(name: str) -> tuple[str | None, str]:
    """(source plugin, extension) of a file name; compression suffixes are looked through."""
    lower = name.lower()
    for suffix in COMPRESSED:
        if lower.endswith(suffix):
            lower = lower[: -len(suffix)]
            break
    ext = os.path.splitext(lower)[1]
    return KINDS.get(ext), ext


def survey(folder: Path) -> dict[str, Found]:
    """The files under ``folder`` by source plugin (hidden files and etl datasets skipped)."""
    found: dict[str, Found] = {}
    seen = 0
    for root, dirs, files in os.walk(folder):
        # a dataset's own files (an earlier `etl run` into this folder) are not inputs
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "_etl")
        for name in sorted(files):
            if name.startswith("."):
                continue
            seen += 1
            if seen > MAX_FILES:
                return found
            plugin, ext = kind_of(name)
            if plugin is None:
                continue
            entry = found.setdefault(plugin, Found(plugin))
            entry.count += 1
            entry.extensions[ext] += 1
            if len(entry.examples) < 3:
                entry.examples.append(Path(root) / name)
            if len(entry.samples) < SAMPLE_FILES:
                entry.samples.append(Path(root) / name)
    return found


def _read_text(path: Path, limit: int = 1 << 20) -> str:
    """The first ``limit`` bytes of a file as text, decompressed when compressed."""
    import bz2
    import gzip
    import lzma

    lower = path.name.lower()
    opener: Any = open
    if lower.endswith(".gz"):
        opener = gzip.open
    elif lower.endswith(".bz2"):
        opener = bz2.open
    elif lower.endswith(".xz"):
        opener = lzma.open
    elif lower.endswith(".zst"):
        return ""  # zstandard may not be installed; the keys are then left to the defaults
    try:
        with opener(path, "rb") as f:
            return f.read(limit).decode("utf-8", "replace")
    except (OSError, EOFError, lzma.LZMAError):
        return ""


def sample_records(path: Path, plugin: str) -> list[dict[str, Any]]:
    """The first records of a JSON Lines, JSON or CSV file (as dicts)."""
    text = _read_text(path)
    if not text:
        return []
    if plugin == "csv":
        lower = path.name.lower()
        delimiter = "\t" if any(x in lower for x in (".tsv", ".tab")) else ","
        reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
        try:
            return [row for _, row in zip(range(SAMPLE_RECORDS), reader, strict=False)]
        except csv.Error:
            return []
    records: list[dict[str, Any]] = []
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(stripped)
        except ValueError:
            return []
        return [r for r in data[:SAMPLE_RECORDS] if isinstance(r, dict)]
    for line in text.splitlines()[: SAMPLE_RECORDS + 5]:
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            records.append(value)
    return records[:SAMPLE_RECORDS]


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    """A record's keys, nested objects one level down (``meta.date``)."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            for inner, v in value.items():
                out[f"{key}.{inner}"] = v
        else:
            out[str(key)] = value
    return out


def map_fields(
    records: list[dict[str, Any]], allowed: set[str] | None = None
) -> tuple[dict[str, str], list[str]]:
    """(article column -> key, every key seen): the keys found for each column.

    A key is matched to a column by the names the record sources try (any case, nested one
    level: ``meta.date``); when no key is a known name for the text, the key with the longest
    string values is taken. Only ``allowed`` keys are mapped (the source stops on a mapped
    key that the first record of an input lacks).
    """
    from etl.sources.records import DEFAULT_FIELDS

    keys: dict[str, list[Any]] = {}
    for record in records:
        for key, value in _flat(record).items():
            keys.setdefault(key, []).append(value)
    if allowed is not None:
        seen = list(keys)
        keys = {k: v for k, v in keys.items() if k in allowed}
    else:
        seen = list(keys)
    by_name = {k.rsplit(".", 1)[-1].lower(): k for k in reversed(list(keys))}
    mapping: dict[str, str] = {}
    for column, names in DEFAULT_FIELDS.items():
        for name in names:
            key = by_name.get(name.lower())
            if key is not None and key not in mapping.values():
                mapping[column] = key
                break
    if "text" not in mapping:
        lengths = {
            k: sum(len(v) for v in vs if isinstance(v, str)) / len(vs)
            for k, vs in keys.items()
            if k not in mapping.values()
        }
        if lengths and max(lengths.values()) > 0:
            mapping["text"] = max(lengths, key=lengths.__getitem__)
    return mapping, seen


def _toml(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _key(key: str) -> str:
    return key if key.replace("_", "").isalnum() else _toml(key)


def render(
    folder: str, found: dict[str, Found], out_dir: Path, sink_path: str, installed: set[str]
) -> str:
    """The pipeline file's text."""
    lines = [
        f"# A pipeline for {folder}, written by `etl init` from what it found there.",
        "# Check it with `etl validate`, run it with `etl run`; every key is in docs/pipeline.md.",
        "# Relative paths are relative to this file's folder.",
        "",
    ]
    runnable = 0
    for plugin in sorted(found, key=lambda p: -found[p].count):
        entry = found[plugin]
        exts = ", ".join(f"{n} {e}" for e, n in entry.extensions.most_common())
        lines.append(f"# {entry.count} file(s) for the {plugin} source ({exts}), e.g.")
        lines += [f"#   {os.path.relpath(e, out_dir)}" for e in entry.examples]
        body = _source(plugin, entry, folder)
        if plugin in installed:
            runnable += 1
            lines += ["[[sources]]", *body, ""]
        else:
            lines.append(f"# the {plugin} source is not installed: pip install {INSTALL[plugin]}")
            lines += [f"# {x}" for x in ("[[sources]]", *body)] + [""]
    if not runnable:
        raise ConfigError(
            f"{folder}: no inputs a installed source reads",
            hint="point etl init at a folder of .txt, .jsonl, .json or .csv files, or "
            "install the plugin it names",
        )
    lines += [
        "# Transforms run in order on every batch; uncomment what you need (docs/transforms.md).",
        "# [[transforms]]",
        '# plugin = "dedup"          # drop exact duplicates; method = "near" for near ones',
        "# [[transforms]]",
        '# plugin = "filter"',
        '# where = "word_count >= 50"',
        "",
        "[sink]",
        'plugin = "parquet"',
        f"path = {_toml(sink_path)}",
        '# partition_by = ["publisher"]',
        "",
    ]
    return "\n".join(lines)


def _source(plugin: str, entry: Found, folder: str) -> list[str]:
    """The lines of one ``[[sources]]`` table."""
    include = sorted(
        {f"*{e}" for e in entry.extensions}
        | {f"*{e}{c}" for e in entry.extensions for c in COMPRESSED}
    )
    body = [f"plugin = {_toml(plugin)}", f"paths = [{_toml(folder)}]"]
    body.append(
        f"include = [{', '.join(_toml(i) for i in include)}]  # what is taken from the folder"
    )
    if plugin in ("jsonl", "csv"):
        samples = [sample_records(e, plugin) for e in entry.samples or entry.examples]
        records = [r for s in samples for r in s]
        # keys every sampled input's first record has: a mapped key an input lacks stops a run
        firsts = [set(_flat(s[0])) for s in samples if s]
        common = set.intersection(*firsts) if firsts else set()
        mapping, keys = map_fields(records, common)
        if mapping:
            pairs = ", ".join(f"{c} = {_toml(k)}" for c, k in mapping.items())
            body.append(f"fields = {{ {pairs} }}")
            body.append(f"# keys seen: {', '.join(keys[:30])}")
        else:
            body.append('# fields = { text = "body", title = "headline" }  # no records read')
        body.append("keep_extra = true            # the other keys go to metadata")
    if plugin == "text":
        body.append('# publisher = "Example Times"   # else found in the text')
    return body


def url_plugin(url: str) -> str:
    """The source plugin for a URL, by the extension of its path."""
    from urllib.parse import urlparse

    path = urlparse(url).path
    plugin, _ = kind_of(path.rsplit("/", 1)[-1])
    if plugin is not None:
        return plugin
    return "feed" if any(w in path.lower() for w in ("rss", "feed", "atom")) else "html"


def init_pipeline(
    source: str, output: str | Path, *, force: bool = False, disable: tuple[str, ...] = ()
) -> tuple[Path, int]:
    """Write a pipeline for ``source`` (a folder, a file or a URL) to ``output``.

    Returns:
        (the pipeline file, how many inputs it lists). The pipeline is checked as
        ``etl validate`` checks it before it is written.
    """
    import tomllib

    from etl.config import pipeline_from_dict
    from etl.plugins import get_plugin_manager
    from etl.run.plan import build_plan

    out = Path(output)
    if out.exists() and not force:
        raise ConfigError(f"{out} exists", hint="choose another file with -o, or --force")
    out_dir = out.resolve().parent
    installed = set(get_plugin_manager(disable=disable).registry["source"])
    if "://" in source:
        plugin = url_plugin(source)
        found = {plugin: Found(plugin, 1, Counter({kind_of(source)[1] or "": 1}))}
        where, name = source, "web"
    else:
        path = Path(source).resolve()
        if not path.exists():
            raise ConfigError(f"no folder or file at {source}")
        if path.is_file():
            plugin, ext = kind_of(path.name)
            if plugin is None:
                raise ConfigError(f"{source}: not a kind of file etl reads ({', '.join(KINDS)})")
            found = {plugin: Found(plugin, 1, Counter({ext: 1}), [path])}
        else:
            found = survey(path)
        if not found:
            raise ConfigError(
                f"{source}: no files etl reads (by extension: {', '.join(KINDS)})",
                hint="give the folder that holds your articles",
            )
        where = os.path.relpath(path, out_dir)
        name = path.stem if path.is_file() else (path.name or "dataset")
        folder = path if path.is_dir() else path.parent
    sink = out_dir / "out" / name
    if "://" not in source and sink.is_relative_to(folder) and "jsonl" in found:
        # the dataset's own .json files (its manifests) must not become inputs
        sink = folder.parent / f"{name}-dataset"
    text = render(where, found, out_dir, os.path.relpath(sink, out_dir), installed)
    plan = build_plan(
        pipeline_from_dict(tomllib.loads(text), base_dir=out_dir, name=out.name),
        disable=disable,
    )
    out.write_text(text, encoding="utf-8")
    return out, len(plan.units)
