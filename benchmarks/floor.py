"""The floor: the benchmark's job written by hand, as tightly as we can, with pyarrow.

    python benchmarks/floor.py text  CORPUS/text          OUT.parquet [--batch 4096]
    python benchmarks/floor.py jsonl CORPUS/articles.jsonl OUT.parquet

The job: read every article; normalise newlines; split a headline off the text (text files);
hash the text for an id (SHA-256 of the UTF-8 text, 32 hex digits, as the framework does);
count characters (``len(str)``) and words (``len(str.split())``); find the publisher
attribution (a trailing ``(Xinhua)`` or a dateline); drop exact duplicates (first one wins);
write one zstd Parquet file. It produces the same ids, counts, titles and publishers as
``etl run`` with the ``text`` (or ``jsonl``) source and the ``parquet`` sink, and nothing
more: no rejects, no manifest, no checks the benchmark corpus does not need (it assumes
valid UTF-8). If the framework ever beats this, tighten this.

Deliberately self-contained (plain Python, pyarrow and the numpy that pyarrow hands arrays to):
it imports nothing from ``etl``, so the framework cannot make the floor slower.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# the same patterns as etl.sources.text (copied so that the floor stands alone)
_TRAILING = r"\(\s*(?P<v>[A-Z][A-Za-z0-9&.,' -]{1,48}?)\s*\)\s*$"
_DATELINE = (
    r"^\s*[A-Z][A-Z .'/-]{1,40}(?:,\s*[A-Z][a-z]{2,8}\.? \d{1,2}(?:, \d{4})?)?\s*"
    r"\(\s*(?P<v>[A-Z][A-Za-z0-9&.' -]{1,48}?)\s*\)\s*(?:--|-|\x{2013}|\x{2014})"
)
_HEADLINE = r"^\s*(?P<v>[^\n]{1,200}?[^\s.,:;])[ \t]*\n\s*\S"

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("uri", pa.string()),
        ("title", pa.string()),
        ("text", pa.string()),
        ("publisher", pa.string()),
        ("char_count", pa.int64()),
        ("word_count", pa.int64()),
    ]
)
_NULL = pa.scalar(None, pa.string())


def byte_view(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets from 0, UTF-8 bytes) of a string array, without copying."""
    n = len(text)
    offsets = np.frombuffer(text.buffers()[1], np.int32, n + 1, text.offset * 4)
    start, end = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(text.buffers()[2], np.uint8, end - start, start)
    return offsets - start, data


def word_counts(rel: np.ndarray, data: np.ndarray) -> np.ndarray:
    """len(s.split()) per string: word starts (non-space after space) summed per string.

    Only ASCII whitespace is looked for here: the floor knows its corpus has no control
    characters and no Unicode spaces (the framework checks for both).
    """
    space = data <= 32
    starts = np.empty(len(data), bool)
    starts[0] = True
    starts[1:] = space[:-1]
    starts[rel[:-1][rel[:-1] < len(data)]] = True
    starts &= ~space
    counts = np.zeros(len(rel) - 1, np.int64)
    nonempty = rel[:-1] < rel[1:]
    if nonempty.any():
        counts[nonempty] = np.add.reduceat(starts, rel[:-1][nonempty], dtype=np.int32)
    return counts


def articles(raw: pa.Array, uris: pa.Array, titles: pa.Array | None, seen: set) -> pa.Table:
    if pc.any(pc.match_substring(raw, "\r")).as_py():
        raw = pc.replace_substring_regex(raw, r"\r\n?", "\n")
    from_text_file = titles is None
    if from_text_file:  # its first line may be a headline
        found = pc.struct_field(pc.extract_regex(raw, _HEADLINE), 0)
        found = pc.if_else(pc.less_equal(pc.count_substring_regex(found, r"\S+"), 25), found, _NULL)
        body = pc.utf8_ltrim(
            pc.replace_substring_regex(raw, r"^\s*[^\n]*\n", "", max_replacements=1),
            characters="\n\r\t ",
        )
        titles, text = found, pc.if_else(pc.is_valid(found), body, raw)
    else:
        text = raw
    text = text.combine_chunks() if isinstance(text, pa.ChunkedArray) else text
    rel, data = byte_view(text)
    words = word_counts(rel, data)
    sha = hashlib.sha256
    view = memoryview(data)
    ids = [sha(view[rel[i] : rel[i + 1]]).hexdigest()[:32] for i in range(len(text))]
    keep = np.ones(len(ids), bool)
    add = seen.add
    for i, article_id in enumerate(ids):
        if article_id in seen:
            keep[i] = False
        else:
            add(article_id)
    keep &= words > 0  # an empty text is no article
    if from_text_file:
        publisher = pc.coalesce(
            pc.struct_field(pc.extract_regex(pc.utf8_slice_codeunits(text, -120), _TRAILING), 0),
            pc.struct_field(pc.extract_regex(pc.utf8_slice_codeunits(text, 0, 160), _DATELINE), 0),
        )
    else:  # the jsonl source takes the publisher from the record (these have none)
        publisher = pa.nulls(len(text), pa.string())
    table = pa.table(
        [
            pa.array(ids, pa.string()),
            uris,
            titles,
            text,
            publisher,
            pc.utf8_length(text).cast(pa.int64()),
            pa.array(words),
        ],
        schema=SCHEMA,
    )
    return table if keep.all() else table.filter(pa.array(keep))


_READ = 1 << 16


def _read_rest(fd: int) -> bytes:
    parts = []
    while part := os.read(fd, 1 << 20):
        parts.append(part)
    return b"".join(parts)


def text_batches(root: str, batch: int):
    paths = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        prefix = folder + os.sep
        paths.extend(prefix + f for f in sorted(files) if not f.startswith("."))
    for i in range(0, len(paths), batch):
        chunk = paths[i : i + batch]
        contents = []
        for path in chunk:
            # a descriptor and one read of 64 KB (the articles are 2-8 KB): no file object,
            # no fstat; bigger files are read to the end
            fd = os.open(path, os.O_RDONLY)
            try:
                data = os.read(fd, _READ)
                if len(data) == _READ:
                    data += _read_rest(fd)
            finally:
                os.close(fd)
            contents.append(data)
        raw = pa.array(contents, pa.binary()).cast(pa.string())
        yield raw, pa.array(chunk, pa.string()), None


def jsonl_batches(path: str, batch: int):
    import pyarrow.json as pj

    schema = pa.schema([("url", pa.string()), ("title", pa.string()), ("text", pa.string())])
    reader = pj.open_json(
        path,
        read_options=pj.ReadOptions(use_threads=False, block_size=4 << 20),
        parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
    )
    for rb in reader:
        yield rb.column("text"), rb.column("url"), rb.column("title")


def run(kind: str, source: str, out: str, batch: int = 1024) -> int:
    batches = text_batches(source, batch) if kind == "text" else jsonl_batches(source, batch)
    seen: set[str] = set()
    rows = 0
    # no dictionary for the distinct columns (the parquet sink does the same): it would hash
    # every text only to fall back to plain encoding
    repeating = ["publisher", "char_count", "word_count"]
    with pq.ParquetWriter(out, SCHEMA, compression="zstd", use_dictionary=repeating) as writer:
        for raw, uris, titles in batches:
            table = articles(raw, uris, titles, seen)
            writer.write_table(table, row_group_size=65536)
            rows += table.num_rows
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["text", "jsonl"])
    parser.add_argument("source")
    parser.add_argument("out")
    parser.add_argument("--batch", type=int, default=1024)
    args = parser.parse_args()
    rows = run(args.kind, args.source, args.out, args.batch)
    print(rows, file=sys.stderr)


if __name__ == "__main__":
    main()
