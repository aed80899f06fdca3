"""The jsonl source end to end through the real CLI: corpora files, damaged lines, mappings."""

import bz2
import gzip
import importlib.util
import json
import lzma
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.helpers import DATA, ROOT, read_dataset, read_rejects, run_etl, write_pipeline

JSONL = DATA / "jsonl"
DOLMA = JSONL / "dolma" / "cc_en_head-0091.jsonl"


def pipeline(tmp_path: Path, source: str, out: str = "out") -> Path:
    return write_pipeline(
        tmp_path / "p.toml",
        f'[[sources]]\nplugin = "jsonl"\n{source}\n[sink]\nplugin = "parquet"\npath = "{out}"\n',
    )


def run_ok(tmp_path: Path, source: str) -> tuple[dict, list[dict], str]:
    proc = run_etl("run", str(pipeline(tmp_path, source)))
    assert proc.returncode == 0, proc.stderr
    rows = read_dataset(tmp_path / "out").to_pylist()
    rejects = read_rejects(tmp_path / "out").to_pylist()
    return rows, rejects, proc.stdout


def by_title(rows: list[dict]) -> dict[str, dict]:
    return {r["title"]: r for r in rows if r["title"]}


def test_news_json_files_from_the_corpora(tmp_path):
    rows, rejects, _ = run_ok(
        tmp_path, f'paths = ["{JSONL / "giveme5w1h"}", "{JSONL / "newspaper4k"}"]'
    )
    titles = by_title(rows)
    china = titles["China opposes DPRK's missile launch: FM spokesperson"]
    assert china["published_at"] == datetime(2017, 9, 15, tzinfo=UTC)
    assert china["publisher"] == "africa.chinadaily.com.cn"
    assert china["uri"] == "http://africa.chinadaily.com.cn/world/2017-09/15/content_32041310.htm"
    assert "Foreign Ministry spokesperson Hua Chunying said" in china["text"]
    assert china["source"] == "jsonl"

    wired = titles["Intensified Israeli Surveillance Has Put the West Bank on Lockdown"]
    # "2023-11-07T02:00:00-05:00" -> UTC
    assert wired["published_at"] == datetime(2023, 11, 7, 7, 0, tzinfo=UTC)
    assert wired["publisher"] == "WIRED"  # meta_site_name
    assert wired["language"] == "en"
    # newspaper4k wrote the authors as a stringified Python list
    assert wired["authors"][:2] == ["Tom Bennett", "Matt Jancer"]
    assert wired["text"].startswith("On Sunday, October 29, Ahmed Azza")

    cleveland = titles["Let me Google that for you: 2014's most popular food-related searches"]
    assert cleveland["published_at"] == datetime(2014, 12, 27, 12, 6, tzinfo=UTC)

    # damaged upstream: date_publish null -> a row without a date, and no date error
    hindu = titles["N. Korea fires missile over Japan"]
    assert hindu["published_at"] is None
    assert "date_error" not in dict(hindu["metadata"])

    reasons = {Path(r["input"]).name[:22]: (r["reason"], r["location"]) for r in rejects}
    assert reasons == {
        "news_cluster__050bdbcc": ("no text", "line 1"),  # text = null
        "news_cluster__e9f55c15": ("no text", "line 1"),  # text = null
        "news_cluster__8f530c86": ("empty file", None),  # 0 bytes
        "video_article_01.json": ("no text", "line 1"),  # no text key at all
    }
    assert len(rows) == 16 - 4  # 13 news-please files + 3 newspaper4k files
    assert all(r["id"] and r["word_count"] > 0 for r in rows)


def test_dolma_jsonl_with_dotted_fields_and_compressed_copies(tmp_path):
    (tmp_path / "in").mkdir()
    shutil.copy(DOLMA, tmp_path / "in" / "plain.jsonl")
    lines = DOLMA.read_bytes().splitlines(keepends=True)
    (tmp_path / "in" / "a.jsonl.gz").write_bytes(gzip.compress(b"".join(lines[:3])))
    (tmp_path / "in" / "b.jsonl.bz2").write_bytes(bz2.compress(b"".join(lines[3:6])))
    (tmp_path / "in" / "c.jsonl.xz").write_bytes(lzma.compress(b"".join(lines[6:8])))
    # a gzipped file without the suffix is found by its magic bytes
    (tmp_path / "in" / "d.jsonl").write_bytes(gzip.compress(b"".join(lines[8:])))
    # zstd needs the zstd extra (requirements-dev.txt has it): without it, no .zst copy
    has_zstd = importlib.util.find_spec("zstandard") is not None
    if has_zstd:
        shutil.copy(JSONL / "dolma" / "test.jsonl.zst", tmp_path / "in" / "e.jsonl.zst")
    rows, rejects, _ = run_ok(
        tmp_path,
        'paths = ["in"]\n'
        'fields = { uri = "id", text = ["text", "message"], '
        'published_at = "metadata.date_download", language = "metadata.language" }',
    )
    # the plain copy and the compressed pieces hold the same ten articles: ids dedupe them
    assert len(rows) == 10 + has_zstd
    uris = {r["uri"] for r in rows}
    assert (
        "http://100kinvesting.com/2016/11/28/first-teleconference-calls-invoice-factoring/" in uris
    )
    first = next(r for r in rows if r["uri"] and "100kinvesting" in r["uri"])
    assert first["published_at"] == datetime(2020, 3, 29, 9, 4, 10, tzinfo=UTC)
    assert first["language"] == "en"
    assert first["text"].startswith("We will be starting to hold weekly teleconference")
    if has_zstd:
        zst = next(r for r in rows if r["text"] == "this is a test")  # from the zstd file
        assert zst["uri"] is None
    assert rejects == []


def test_malformed_lines_are_rejects_and_the_rest_is_read(tmp_path):
    lines = DOLMA.read_text(encoding="utf-8").splitlines()
    damaged = [
        lines[0],
        lines[1][: len(lines[1]) // 2],  # line 2: cut in the middle
        lines[2],
        "",  # blank line 4: skipped, not a reject
        "this is not json",  # line 5
        lines[3],
        json.dumps({"title": "no body here"}),  # line 7: no text
        json.dumps(["not", "objects"]),  # line 8: an array of strings
        lines[4],
        json.dumps({"text": "   "}),  # line 10: blank text
        lines[5] + "}",  # line 11: trailing garbage
        lines[6],
    ]
    (tmp_path / "damaged.jsonl").write_text("\n".join(damaged), encoding="utf-8")
    rows, rejects, stdout = run_ok(tmp_path, 'paths = ["damaged.jsonl"]')
    assert [dict(r["metadata"])["location"] for r in rows] == [
        "line 1",
        "line 3",
        "line 6",
        "line 9",
        "line 12",
    ]
    got = sorted((r["location"], r["reason"]) for r in rejects)
    assert got == sorted(
        [
            ("line 2", "malformed JSON"),
            ("line 5", "malformed JSON"),
            ("line 7", "no text"),
            ("line 8 item 1", "not a JSON object"),
            ("line 8 item 2", "not a JSON object"),
            ("line 10", "no text"),
            ("line 11", "malformed JSON"),
        ]
    )
    assert all(r["input"].endswith("damaged.jsonl") for r in rejects)
    assert "this is not json" in next(r["detail"] for r in rejects if r["location"] == "line 5")
    assert "7 rejected" in stdout


def test_json_arrays_and_concatenated_documents(tmp_path):
    (tmp_path / "in").mkdir()
    articles = [
        {"headline": f"Story {i}", "body": f"Body of story {i}.", "meta": {"date": d}}
        for i, d in enumerate(
            ["2024-01-02T03:04:05Z", "Tue, 02 Jan 2024 03:04:05 +0100", 1704164645]
        )
    ]
    (tmp_path / "in" / "array.json").write_text(json.dumps(articles, indent=2), encoding="utf-8")
    pretty = "\n".join(
        json.dumps({**a, "headline": a["headline"] + "b", "body": a["body"] + " Again."}, indent=4)
        for a in articles
    )
    (tmp_path / "in" / "docs.json").write_text(pretty, encoding="utf-8")
    # an array whose third item is broken: two rows, then a reject naming the line
    broken = json.dumps(articles[:2], indent=1)[:-1] + ',\n {"body": "x", oops}\n]'
    (tmp_path / "in" / "broken.json").write_text(broken, encoding="utf-8")
    rows, rejects, _ = run_ok(
        tmp_path,
        'paths = ["in"]\nfields = { text = "body", title = "headline", published_at = "meta.date" }',
    )
    titles = by_title(rows)
    assert set(titles) == {"Story 0", "Story 1", "Story 2", "Story 0b", "Story 1b", "Story 2b"}
    assert len(rows) == 6  # broken.json's two good items repeat array.json's: deduplicated
    assert titles["Story 0"]["published_at"] == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert titles["Story 1"]["published_at"] == datetime(2024, 1, 2, 2, 4, 5, tzinfo=UTC)
    assert titles["Story 2"]["published_at"] == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert (
        dict(titles["Story 1"]["metadata"])["location"] == "line 9 item 2"
    )  # "[" then 7 lines of item 1
    bad_line = broken.count("\n", 0, broken.index('{"body": "x"')) + 1
    assert [(r["reason"], r["location"]) for r in rejects] == [
        ("malformed JSON", f"line {bad_line}")
    ]
    assert Path(rejects[0]["input"]).name == "broken.json"


def test_unparseable_date_is_kept_in_metadata_not_rejected(tmp_path):
    records = [
        {"text": "One.", "date": "sometime last week"},
        {"text": "Two.", "date": "2023-02-30"},
        {"text": "Three.", "published": 1700000000123},
        {"text": "Four.", "date": "17 March 2021"},
    ]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    rows, rejects, _ = run_ok(tmp_path, 'paths = ["d.jsonl"]')
    got = {r["text"]: r for r in rows}
    assert rejects == []
    for text, raw in (("One.", "sometime last week"), ("Two.", "2023-02-30")):
        assert got[text]["published_at"] is None
        meta = dict(got[text]["metadata"])
        assert meta["published_at_raw"] == raw
        assert meta["date_error"] == "unrecognised date format"
    assert got["Three."]["published_at"] == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
    assert got["Four."]["published_at"] == datetime(2021, 3, 17, tzinfo=UTC)


def test_keep_extra_and_record_too_large(tmp_path):
    records = [
        {"text": "Kept.", "section": "World", "tags": ["a", "b"], "score": 3},
        {"text": "x" * 5000},
        {"text": "After the long one."},
    ]
    (tmp_path / "e.jsonl").write_text("\n".join(json.dumps(r) for r in records), encoding="utf-8")
    rows, rejects, _ = run_ok(
        tmp_path, 'paths = ["e.jsonl"]\nkeep_extra = true\nmax_record_bytes = 1000'
    )
    got = {r["text"]: dict(r["metadata"]) for r in rows}
    assert got["Kept."]["section"] == "World"
    assert got["Kept."]["tags"] == '["a", "b"]'
    assert got["Kept."]["score"] == "3"
    assert "After the long one." in got
    assert [(r["reason"], r["location"]) for r in rejects] == [("record too large", "line 2")]


def test_batches_follow_run_batch_size(tmp_path):
    lines = [json.dumps({"text": f"Article number {i}."}) for i in range(2500)]
    (tmp_path / "many.jsonl").write_text("\n".join(lines), encoding="utf-8")
    write_pipeline(
        tmp_path / "p.toml",
        '[run]\nbatch_size = 1000\n[[sources]]\nplugin = "jsonl"\npaths = ["many.jsonl"]\n'
        '[sink]\nplugin = "parquet"\npath = "out"\n',
    )
    proc = run_etl("run", str(tmp_path / "p.toml"))
    assert proc.returncode == 0, proc.stderr
    rows = read_dataset(tmp_path / "out")
    assert rows.num_rows == 2500
    assert sorted(rows.column("text").to_pylist())[:2] == ["Article number 0.", "Article number 1."]


@pytest.mark.parametrize(
    ("option", "expect"),
    [
        ('feilds = { text = "body" }', "unknown option 'feilds'"),
        ('fields = { body = "text" }', "fields: 'body' is not an article column"),
        ("fields = { text = 3 }", "fields: 'text' must name an input key"),
        ('format = "xml"', "option 'format' is 'xml'"),
    ],
)
def test_validate_catches_mistakes(tmp_path, option, expect):
    (tmp_path / "a.jsonl").write_text('{"text": "x"}\n', encoding="utf-8")
    p = pipeline(tmp_path, f'paths = ["a.jsonl"]\n{option}')
    proc = run_etl("validate", str(p))
    assert proc.returncode == 2, proc.stdout
    assert expect in proc.stderr
    assert "plugin 'jsonl'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_example_pipeline(tmp_path):
    example = ROOT / "examples" / "jsonl.toml"
    proc = run_etl("run", str(example), "--set", f"sink.path={tmp_path / 'out'}")
    assert proc.returncode == 0, proc.stderr
    rows = by_title(read_dataset(tmp_path / "out").to_pylist())
    assert rows["Central bank holds rates for a third month"]["published_at"] == datetime(
        2024, 3, 19, 13, tzinfo=UTC
    )
    assert rows["Underdogs win the cup final on penalties"]["authors"] == ["Sam Okafor"]
    assert rows["Comet visible to the naked eye this week"]["published_at"] == datetime(
        2024, 3, 18, tzinfo=UTC
    )
    fair = rows["Spring fair returns to the square"]
    assert fair["published_at"] is None
    assert dict(fair["metadata"])["published_at_raw"] == "the weekend before Easter"
    rejects = read_rejects(tmp_path / "out").to_pylist()
    assert sorted((r["location"], r["reason"]) for r in rejects) == [
        ("line 4", "malformed JSON"),
        ("line 5", "no text"),
    ]


def test_hostile_lines_do_not_lose_the_rest_of_the_file(tmp_path):
    lines = [
        json.dumps({"text": "Before."}),
        "[" * 100_000 + "]" * 100_000,  # line 2: nested past Python's recursion limit
        '{"text": "Lone surrogate \\ud800 in the text.", "title": "T \\udfff"}',  # line 3
        b'{"text": "Latin-1 byte \xe9 here"}'.decode("latin-1"),  # line 4: not UTF-8
        json.dumps({"text": "After."}),
    ]
    (tmp_path / "h.jsonl").write_bytes("\n".join(lines).encode("latin-1"))
    rows, rejects, _ = run_ok(tmp_path, 'paths = ["h.jsonl"]')
    texts = {r["text"]: r for r in rows}
    assert set(texts) == {"Before.", "Lone surrogate \ufffd in the text.", "After."}
    assert texts["Lone surrogate \ufffd in the text."]["title"] == "T \ufffd"
    got = sorted((r["location"], r["reason"]) for r in rejects)
    assert got == [("line 2", "malformed JSON"), ("line 4", "malformed JSON")]
    assert "nested too deeply" in next(r["detail"] for r in rejects if r["location"] == "line 2")


def test_utf16_files_by_their_mark_and_legacy_encodings_by_option(tmp_path):
    (tmp_path / "in").mkdir()
    records = [{"text": "Grüße aus Köln.", "title": "Köln"}, {"text": "Ünïcödé zwei."}]
    lines = "\r\n".join(json.dumps(r, ensure_ascii=False) for r in records)
    (tmp_path / "in" / "u16.jsonl").write_bytes(lines.encode("utf-16"))  # with a BOM
    (tmp_path / "in" / "u32.json").write_bytes(
        json.dumps([{"text": "Aus UTF-32."}], ensure_ascii=False).encode("utf-32")
    )
    rows, rejects, _ = run_ok(tmp_path, 'paths = ["in"]')
    assert rejects == []
    assert {r["text"] for r in rows} == {"Grüße aus Köln.", "Ünïcödé zwei.", "Aus UTF-32."}
    assert by_title(rows)["Köln"]["text"] == "Grüße aus Köln."

    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "cp.jsonl").write_bytes(
        json.dumps({"text": "Café “quoted” — dash."}, ensure_ascii=False).encode("cp1252")
    )
    p = write_pipeline(
        tmp_path / "p2.toml",
        '[[sources]]\nplugin = "jsonl"\npaths = ["legacy"]\nencoding = "cp1252"\n'
        '[sink]\nplugin = "parquet"\npath = "out2"\n',
    )
    proc = run_etl("run", str(p))
    assert proc.returncode == 0, proc.stderr
    assert read_dataset(tmp_path / "out2").column("text").to_pylist() == ["Café “quoted” — dash."]
