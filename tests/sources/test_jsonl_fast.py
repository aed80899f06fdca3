"""The jsonl fast path (Arrow-read chunks) gives exactly the rows and rejects of the per-line path.

Each test runs the same inputs twice through a real pipeline with the parquet sink, once with
the fast path on and once with it off (``jsonl.FAST``), and compares what was written: every
article column and the metadata, and the rejects (reason, location, detail, input). Chunks
are made small (``jsonl_fast.FAST_CHUNK``) so that files cross many chunk boundaries, and clean
chunks sit next to chunks that need the per-line path.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from etl.sources import jsonl, jsonl_fast
from etl.sources.records import STRIP_CHARS
from etl.testing import run_pipeline
from tests.helpers import DATA

JSONL = DATA / "jsonl"
SKIP_COLUMNS = {"run_id", "ingested_at"}


def run(tmp_path: Path, name: str, paths: list[str], **options) -> tuple[list, list]:
    out = tmp_path / name
    result = run_pipeline(
        {
            "sources": [{"plugin": "jsonl", "paths": paths, **options}],
            "sink": {"plugin": "parquet", "path": str(out)},
        },
        tmp_path=tmp_path,
    )
    rows = [
        {k: v for k, v in row.items() if k not in SKIP_COLUMNS} for row in result.table.to_pylist()
    ]
    for row in rows:
        row["metadata"] = sorted(row["metadata"] or [])
    rows.sort(key=lambda r: (r["id"], str(r["metadata"])))
    rejects = sorted(
        (Path(r["input"]).name, r["location"] or "", r["reason"], r["detail"] or "")
        for r in result.rejects.to_pylist()
    )
    return rows, rejects


@pytest.fixture
def fast_chunks(monkeypatch):
    """Counts the chunks read by the fast path and by the per-line path."""
    seen = {"fast": 0, "per line": 0}
    chunk = jsonl._FastLines._chunk

    def counting(self, data, lineno):
        batch = chunk(self, data, lineno)
        seen["fast" if batch is not None else "per line"] += 1
        return batch

    monkeypatch.setattr(jsonl._FastLines, "_chunk", counting)
    return seen


def compare(tmp_path, monkeypatch, paths, chunk_sizes=(jsonl_fast.FAST_CHUNK,), **options):
    """Fast and per-line runs agree, for each chunk size; returns the per-line result."""
    monkeypatch.setattr(jsonl, "FAST", False)
    slow = run(tmp_path, "slow", paths, **options)
    monkeypatch.setattr(jsonl, "FAST", True)
    for size in chunk_sizes:
        monkeypatch.setattr(jsonl_fast, "FAST_CHUNK", size)
        fast = run(tmp_path, f"fast-{size}", paths, **options)
        assert fast[1] == slow[1], f"rejects differ with chunks of {size} bytes"
        assert len(fast[0]) == len(slow[0]), f"row counts differ with chunks of {size} bytes"
        for got, want in zip(fast[0], slow[0], strict=True):
            assert got == want, f"chunks of {size} bytes"
    return slow


def write_lines(path: Path, lines: list, end: str = "\n") -> Path:
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
    path.write_text(text + end, encoding="utf-8")
    return path


def article(i: int, **extra) -> dict:
    return {
        "url": f" https://news.example/{i} ",
        "title": f"Story {i}",
        "text": f"Body of story {i}.\nSecond line of {i}.",
        **extra,
    }


def test_strip_chars_are_pythons_whitespace():
    assert "".join(chr(c) for c in range(0x110000) if chr(c).isspace()) == STRIP_CHARS


def test_corpora_files_and_the_same_records_as_json_lines(tmp_path, monkeypatch, fast_chunks):
    # the news JSON files (one object per file) and the same objects as JSON Lines, twice:
    # compact UTF-8 and ASCII-escaped (\\u escapes, surrogate pairs for emoji and the like)
    records = []
    for path in sorted((JSONL / "giveme5w1h").glob("*.json")) + sorted(
        (JSONL / "newspaper4k").glob("*.json")
    ):
        text = path.read_text(encoding="utf-8")
        if text.strip():
            records.append(json.loads(text))
    records.append({"text": "Emoji \U0001f600 and \U0001d11e clef.", "title": "\U0001f4f0"})
    (tmp_path / "news.jsonl").write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n", encoding="utf-8"
    )
    (tmp_path / "ascii.jsonl").write_text(
        "\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8"
    )
    paths = [
        str(JSONL / "giveme5w1h"),
        str(JSONL / "newspaper4k"),
        str(JSONL / "dolma"),
        str(DATA / "transforms" / "language_gold.jsonl"),
        "news.jsonl",
        "ascii.jsonl",
    ]
    rows, rejects = compare(tmp_path, monkeypatch, paths, chunk_sizes=(jsonl_fast.FAST_CHUNK, 3000))
    assert len(rows) > 60
    assert fast_chunks["fast"] > 0


def test_a_clean_file_is_read_by_the_fast_path_only(tmp_path, monkeypatch, fast_chunks):
    write_lines(tmp_path / "clean.jsonl", [article(i) for i in range(300)])
    monkeypatch.setattr(jsonl_fast, "FAST_CHUNK", 4096)
    rows, rejects = run(tmp_path, "out", ["clean.jsonl"])
    assert len(rows) == 300 and rejects == []
    assert fast_chunks["fast"] > 5 and fast_chunks["per line"] == 0
    row = next(r for r in rows if r["title"] == "Story 7")
    assert row["uri"] == "https://news.example/7"  # stripped
    assert dict(row["metadata"]) == {"location": "line 8"}


# one line each: what the per-line path rejects, reads its own way, or reads like Arrow
EDGE_LINES = [
    "this is not json",
    '{"text": "cut in the mid',
    '{"text": "trailing garbage"}}',
    '{"text": "two"} {"text": "objects"}',
    '{"text": "two"}\r{"text": "objects, a CR between"}',
    '{"text": "comma"},',
    # two lines, two objects, both refused by Python: the first object ends on line 2
    '{"zz":\n{"a": 1}, "text": "over two lines"} {"text": "and a second object"}',
    '{"title": "no text at all"}',
    '{"text": ""}',
    '{"text": "   "}',
    '{"text": "\\u3000\\u2003\\u0085"}',
    '{"text": "\\u200b"}',  # a zero-width space is no whitespace to Python: kept
    '{"text": null, "body": "the body, as text is null"}',
    '{"text": 12345}',
    '{"text": {"nested": "object"}}',
    '{"text": ["a", "list"]}',
    '{"text": true}',
    '{"text": "Title a number", "title": 42}',
    '{"text": "Title an object", "title": {"name": " Named "}}',
    '{"text": "Title a list", "title": ["", " First "]}',
    '{"text": "Language a bool", "language": false}',
    '{"text": "Title blank", "title": "  \\t "}',
    '{"text": "Title with odd spaces", "title": "\\u00a0\\u2028 T \\u1680\\u001f"}',
    '{"text": "Headline when title is null", "title": null, "headline": " H "}',
    '{"text": "Title wins over headline", "title": "", "headline": "H"}',
    '{"text": "Lone surrogate \\ud800 here", "title": "T \\udfff"}',
    '{"text": "Upper case lone \\uDC00 surrogate"}',
    '{"text": "Reversed pair \\udc00\\ud800"}',
    '{"text": "Good pair \\ud83d\\ude00", "title": "\\uD83D\\uDCF0"}',
    '{"text": "Escaped backslash \\\\ud800 is no escape"}',
    '{"text": "Surrogate in another key", "other": "\\ud800"}',
    # a lone surrogate in a date and in a key: the per-line path lost the file's rows (the
    # date) or failed the run (the key, in the reject's detail) before records.py cleaned them
    '{"text": "Surrogate in a date", "date": "2024\\ud800"}',
    '{"text\\ud800": "a surrogate in the key, no text"}',
    '{"text": "Authors as list", "authors": [" Ana ", "", null, "Bo"]}',
    '{"text": "Authors empty list", "authors": [], "author": "Not used"}',
    '{"text": "Authors as string", "authors": " Ana Lopez "}',
    '{"text": "Authors None", "authors": "None"}',
    '{"text": "Authors stringified", "authors": "[\'A\', \'B\']"}',
    '{"text": "Authors JSON list string", "author": "[\\"A\\", \\"B\\"]"}',
    '{"text": "Authors objects", "authors": [{"name": "Ana"}]}',
    '{"text": "Authors numbers", "authors": [1, 2]}',
    '{"text": "Authors null then author", "authors": null, "author": "Cy"}',
    '{"text": "Date ISO", "date": "2024-01-02T03:04:05Z"}',
    '{"text": "Date naive", "published_at": "2024-01-02 03:04:05"}',
    '{"text": "Date RFC", "pubDate": "Tue, 02 Jan 2024 03:04:05 +0100"}',
    '{"text": "Date epoch", "timestamp": 1704164645}',
    '{"text": "Date epoch ms", "published": 1704164645123}',
    '{"text": "Date float", "date": 1704164645.5}',
    '{"text": "Date garbage", "date": "sometime last week"}',
    '{"text": "Date month 13", "date": "2023-13-01"}',
    '{"text": "Date none", "date": "None"}',
    '{"text": "Date spaces", "date": "  2024-01-02  "}',
    '{"text": "Date first key wins", "published_at": "2020-01-01", "date": "2021-01-01"}',
    '{"text": "Date bool", "date": true}',
    '{"text": "Inf value", "x": Inf}',
    '{"text": "Minus Inf value", "x": [-Inf]}',
    '{"text": "Infinity value", "x": Infinity}',
    '{"text": "NaN value", "x": NaN}',
    '{"text": "Minus NaN value", "x": -NaN}',
    '{"text": "Inf in a string: Inf, and Information"}',
    '{"text": "Big integer", "x": ' + "7" * 5000 + "}",
    '{"text": "Deep nesting", "x": ' + "[" * 3000 + "]" * 3000 + "}",
    '{"text": "Shallow nesting", "x": ' + "[" * 20 + "]" * 20 + "}",
    '{"text": "Duplicate key", "text": "the last one"}',
    '{"text": "Duplicate other key", "x": 1, "x": 2}',
    '{"text": "Escaped key", "titl\\u0065": "escaped title"}',
    '{"text": "Control \\u0000 escapes \\u001f kept"}',
    '{"text": "NUL byte \x00 raw"}',
    '{"text": "Tab \t raw"}',
    '["an", "array"]',
    '[{"text": "an array of one object"}]',
    "null",
    "42",
    '"a string"',
    "  ",
    "",
    '   {"text": "leading spaces"}',
    '{"text": "trailing spaces"}   ',
    '{"text": "CRLF line"}\r',
    "\ufeff" + '{"text": "a BOM mid-file"}',
]


@pytest.mark.slow
def test_edge_lines_between_clean_ones(tmp_path, monkeypatch, fast_chunks):
    # each case alone between clean lines in a file of its own (so that no other case sends
    # its chunk to the per-line path), and all of them in one file
    (tmp_path / "edges").mkdir()
    every = []
    for i, edge in enumerate(EDGE_LINES):
        lines = [json.dumps(article(2 * i)), edge, json.dumps(article(2 * i + 1))]
        data = "\n".join(lines).encode("utf-8")
        (tmp_path / "edges" / f"{i:03d}.jsonl").write_bytes(data)
        every.append(data)
    (tmp_path / "edges" / "all.jsonl").write_bytes(b"\n".join(every))
    rows, rejects = compare(
        tmp_path, monkeypatch, ["edges"], chunk_sizes=(jsonl_fast.FAST_CHUNK, 64, 700)
    )
    assert len(rejects) > 40
    assert fast_chunks["fast"] > 50 and fast_chunks["per line"] > 50


def test_invalid_utf8_and_encoded_surrogates(tmp_path, monkeypatch):
    lines = [json.dumps(article(i)).encode() for i in range(20)]
    lines[3] = b'{"text": "Latin-1 byte \xe9 here"}'
    lines[7] = b'{"text": "ok", "other": "bad \xff byte in another key"}'
    lines[11] = b'{"text": "UTF-8 encoded surrogate \xed\xa0\x80 (Python reads it)"}'
    lines[15] = b'{"text": "overlong \xc0\xaf slash"}'
    (tmp_path / "bytes.jsonl").write_bytes(b"\n".join(lines))
    compare(tmp_path, monkeypatch, ["bytes.jsonl"], chunk_sizes=(jsonl_fast.FAST_CHUNK, 200))


@pytest.mark.slow
def test_file_level_cases(tmp_path, monkeypatch, fast_chunks):
    d = tmp_path / "in"
    d.mkdir()
    clean = [json.dumps(article(i)) for i in range(40)]
    (d / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + "\n".join(clean).encode())
    (d / "bom-then-blank.jsonl").write_bytes(b"\xef\xbb\xbf\n" + "\n".join(clean[:3]).encode())
    (d / "only-bom.jsonl").write_bytes(b"\xef\xbb\xbf")
    (d / "empty.jsonl").write_bytes(b"")
    # a first line "null" crashes pyarrow.json (a segfault): never given to it
    (d / "null-first.jsonl").write_text("null\n" + "\n".join(clean[:3]), encoding="utf-8")
    (d / "null-only.jsonl").write_text("null\n", encoding="utf-8")
    (d / "blank.jsonl").write_bytes(b"\n \n\t\r\n")
    (d / "no-final-newline.jsonl").write_text("\n".join(clean[:5]), encoding="utf-8")
    (d / "blank-lines.jsonl").write_text(
        "\n\n".join(clean[:6]) + "\n\n\n" + "\n".join(clean[6:12]) + "\n", encoding="utf-8"
    )
    (d / "crlf.jsonl").write_bytes("\r\n".join(clean[:10]).encode() + b"\r\n")
    (d / "zipped.jsonl.gz").write_bytes(gzip.compress("\n".join(clean[10:30]).encode()))
    # authors a string in the first chunks, a list later; dates text then numbers
    mixed = [json.dumps(article(i, authors=f"Author {i}", date="2024-02-03")) for i in range(15)]
    mixed += [
        json.dumps(article(i, authors=[f"A{i}", f"B{i}"], date=1706900000 + i))
        for i in range(15, 30)
    ]
    mixed += [
        json.dumps(article(i, authors=f" Author {i} ", date="2024-02-03")) for i in range(30, 40)
    ]
    (d / "types.jsonl").write_text("\n".join(mixed) + "\n", encoding="utf-8")
    # nested values: many "[" and "{" in a chunk, few in a line (read fast), and a deep
    # last line without a newline (a RecursionError for Python's json)
    nested = [json.dumps(article(i, meta={"a": [1, {"b": [2, {"c": {}}]}]})) for i in range(80)]
    (d / "nested.jsonl").write_text("\n".join(nested), encoding="utf-8")
    deep = '{"text": "deep", "x": ' + "[" * 2000 + "]" * 2000 + "}"
    (d / "deep-last.jsonl").write_text("\n".join([*nested[:50], deep]), encoding="utf-8")
    compare(tmp_path, monkeypatch, ["in"], chunk_sizes=(jsonl_fast.FAST_CHUNK, 100, 1000))
    assert fast_chunks["fast"] > 10


def test_records_over_max_record_bytes(tmp_path, monkeypatch):
    lines = [json.dumps(article(i)) for i in range(30)]
    lines[4] = json.dumps({"text": "x" * 5000})  # longer than a chunk and than the limit
    lines[5] = json.dumps({"text": "y" * 950})  # under the limit, over a small chunk
    lines[9] = json.dumps({"text": "z" * 1200})  # over the limit, under a chunk
    lines[12] = json.dumps({"text": "w" * 1000})[:1000]  # exactly the limit, malformed
    lines[13] = json.dumps({"text": "v" * 1000})[:1001]  # one byte over
    (tmp_path / "long.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "long-last.jsonl").write_text(
        "\n".join(lines[:3]) + "\n" + json.dumps({"text": "u" * 3000}), encoding="utf-8"
    )
    (tmp_path / "long-first.jsonl").write_bytes(
        b"\xef\xbb\xbf" + json.dumps({"text": "t" * 995}).encode() + b"\n" + lines[0].encode()
    )
    rows, rejects = compare(
        tmp_path,
        monkeypatch,
        ["long.jsonl", "long-last.jsonl", "long-first.jsonl"],
        chunk_sizes=(jsonl_fast.FAST_CHUNK, 300, 2000),
        max_record_bytes=1000,
    )
    too_large = [(name, loc) for name, loc, reason, _ in rejects if reason == "record too large"]
    assert ("long.jsonl", "line 5") in too_large and ("long.jsonl", "line 10") in too_large
    assert ("long-last.jsonl", "line 4") in too_large


def test_fields_option_and_run_batch_size(tmp_path, monkeypatch, fast_chunks):
    records = [
        {"body": f"Body {i}.", "headline": f"H{i}", "meta": {"date": "2024-01-01"}, "by": ["X"]}
        for i in range(50)
    ]
    records[17]["body"] = ""
    write_lines(tmp_path / "f.jsonl", records)
    compare(
        tmp_path,
        monkeypatch,
        ["f.jsonl"],
        chunk_sizes=(jsonl_fast.FAST_CHUNK, 500),
        fields={"text": "body", "title": ["headline", "body"], "authors": "by", "uri": ""},
    )
    assert fast_chunks["fast"] > 0
    # a fast chunk of more rows than the run's batch size is cut to it (the rest joins the
    # last piece, which a smaller piece would do in the stream anyway, with a copy)
    write_lines(tmp_path / "many.jsonl", [article(i) for i in range(2500)])
    monkeypatch.setattr(jsonl_fast, "FAST_CHUNK", 8 << 20)
    sizes = []
    build = jsonl._FastLines.read

    def read(self, *args):
        for batch in build(self, *args):
            sizes.append(batch.num_rows)
            yield batch

    monkeypatch.setattr(jsonl._FastLines, "read", read)
    result = run_pipeline(
        {"sources": [{"plugin": "jsonl", "paths": ["many.jsonl"]}]},
        tmp_path=tmp_path,
        batch_size=1000,
    )
    assert result.table.num_rows == 2500
    assert sizes == [1000, 1500]


def test_the_inputs_memory_gets_the_files_hash_from_the_read(tmp_path, monkeypatch):
    # the fast path hashes the bytes it reads, so the sink does not read the file again:
    # the hash must be the file's, whatever the lines held
    from etl.dataset import Dataset, content_hash, file_content_hash, key_digest

    monkeypatch.setattr(jsonl_fast, "FAST_CHUNK", 500)
    d = tmp_path / "in"
    d.mkdir()
    lines = [json.dumps(article(i)) for i in range(40)]
    lines[7] = json.dumps({"text": "x" * 3000})  # over max_record_bytes: skipped
    lines[9] = "not json"
    (d / "a.jsonl").write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode())
    (d / "b.jsonl.gz").write_bytes(gzip.compress("\n".join(lines[:5]).encode()))
    calls = []
    monkeypatch.setattr(
        "etl.store.memory.file_content_hash",
        lambda key, like=None: calls.append(key) or file_content_hash(key, like),
    )
    run_pipeline(
        {
            "sources": [{"plugin": "jsonl", "paths": ["in"], "max_record_bytes": 1000}],
            "sink": {"plugin": "parquet", "path": str(tmp_path / "out")},
        },
        tmp_path=tmp_path,
    )
    remembered = Dataset(tmp_path / "out").remembered_inputs()
    for path in (d / "a.jsonl", d / "b.jsonl.gz"):
        assert remembered[key_digest(str(path))][2] == content_hash(path.read_bytes())
    assert [Path(k).name for k in calls] == ["b.jsonl.gz"]  # only the compressed one re-read


FUZZ_RECORDS = [
    {
        "text": "Body one.",
        "title": " T1 ",
        "url": "u1",
        "authors": ["A", " B "],
        "date": "2024-01-02",
    },
    {"text": "Body two \u00e9\u2028.", "headline": "H", "author": "X Y", "published": 1704164645},
    {"body": "Body three", "title": None, "language": "en", "x": [None, True, 1.5e3, {"a": {}}]},
    {"text": "Four", "authors": [], "pubDate": "Tue, 02 Jan 2024 03:04:05 +0100", "lang": "de"},
    {"text": "Five \U0001f600", "date": "2024-13-01", "creators": ["Z"], "site_name": " S "},
]
FUZZ_TOKENS = [
    "null", "true", "1", "-1.5e3", '"s"', "[]", "{}", "Inf", "-Inf", "NaN", "-NaN", "Infinity",
    "\\ud800", "\\udc00", "\\ud83d\\ude00", "\n", "\r", " ", "\t", '"', ":", ",", "}", "{", "[",
    "]", "\\", "\\u00", "\u3000", "\x00", "\x1f", '"text"', '"authors"', '"date"', '"title"',
    '""', '"[\\"A\\"]"', '"None"', '"  "', "\ufeff", "9" * 30,
]  # fmt: skip


@pytest.mark.parametrize("seed", range(12))
def test_mutated_lines_read_alike(tmp_path, monkeypatch, seed):
    """Differential fuzzing: random edits of JSON lines, both paths, two chunk sizes."""
    import random

    rng = random.Random(seed)
    lines = []
    for _ in range(rng.randint(20, 60)):
        line = json.dumps(rng.choice(FUZZ_RECORDS), ensure_ascii=rng.random() < 0.5)
        if rng.random() < 0.3:
            for _ in range(rng.randint(1, 3)):
                at = rng.randint(0, len(line))
                cut = at + (rng.randint(1, 6) if rng.random() < 0.6 else 0)
                line = (
                    line[:at]
                    + (rng.choice(FUZZ_TOKENS) if cut == at or rng.random() < 0.5 else "")
                    + line[cut:]
                )
        lines.append(line)
    data = "\n".join(lines) + ("\n" if rng.random() < 0.5 else "")
    (tmp_path / "f.jsonl").write_bytes(data.encode("utf-8", "surrogatepass"))
    compare(
        tmp_path,
        monkeypatch,
        ["f.jsonl"],
        chunk_sizes=(jsonl_fast.FAST_CHUNK, rng.randint(20, 600)),
        max_record_bytes=300,
    )
