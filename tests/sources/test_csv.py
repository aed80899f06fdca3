"""The csv source end to end through the real CLI, on rows made from the corpora's articles."""

import csv
import gzip
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.helpers import DATA, ROOT, read_dataset, read_rejects, run_etl, write_pipeline

GIVEME = sorted((DATA / "jsonl" / "giveme5w1h").glob("news_cluster__*.json"))


def real_articles() -> list[dict]:
    """The news-please articles of the corpora that have text, title and date."""
    out = []
    for path in GIVEME:
        if not path.stat().st_size:
            continue
        a = json.loads(path.read_text(encoding="utf-8"))
        if a.get("text") and a.get("title") and a.get("date_publish"):
            out.append(a)
    return out


def to_csv(rows: list[list[str]], delimiter: str = ",") -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def run(tmp_path: Path, source: str) -> tuple[list[dict], list[dict], object]:
    p = write_pipeline(
        tmp_path / "p.toml",
        f'[[sources]]\nplugin = "csv"\n{source}\n[sink]\nplugin = "parquet"\npath = "out"\n',
    )
    proc = run_etl("run", str(p))
    assert proc.returncode == 0, proc.stderr
    return (
        read_dataset(tmp_path / "out").to_pylist(),
        read_rejects(tmp_path / "out").to_pylist(),
        proc,
    )


def test_csv_with_default_columns_multiline_text_and_bad_rows(tmp_path):
    articles = real_articles()
    assert len(articles) >= 5
    header = ["Headline", "Body", "URL", "Date", "Source_Domain", "Authors"]
    rows = [header]
    for a in articles:
        rows.append(
            [a["title"], a["text"], a["url"], a["date_publish"], a["source_domain"], "Ann; Bo"]
        )
    text = to_csv(rows)
    lines = text.splitlines(keepends=True)
    # the articles' texts hold newlines inside quotes: find where each record starts
    starts = [1]
    reader = csv.reader(io.StringIO(text, newline=""))
    for _ in reader:
        starts.append(reader.line_num + 1)
    damaged = (
        "".join(lines)
        + "Too,few,fields\n"  # record at line starts[-1]
        + 'A title,"an unclosed "quote" here,x,2020-01-01,y,z\n'
        + "Late headline,Late body text.,http://late.example/,not a date,late.example,\n"
    )
    (tmp_path / "news.csv").write_text(damaged, encoding="utf-8")
    got, rejects, _ = run(tmp_path, 'paths = ["news.csv"]')
    titles = {r["title"]: r for r in got}
    assert len(got) == len(articles) + 1
    for a in articles:
        row = titles[a["title"]]
        assert row["text"] == a["text"].replace("\r\n", "\n")
        assert row["uri"] == a["url"]
        assert row["publisher"] == a["source_domain"]
        assert row["published_at"] == datetime.fromisoformat(a["date_publish"]).replace(tzinfo=UTC)
        assert row["authors"] == ["Ann; Bo"]
    late = titles["Late headline"]
    assert late["published_at"] is None
    assert dict(late["metadata"])["published_at_raw"] == "not a date"
    bad_line = len(text.splitlines()) + 1
    assert sorted((r["location"], r["reason"]) for r in rejects) == [
        (f"line {bad_line}", "wrong number of fields"),
        (f"line {bad_line + 1}", "malformed CSV"),
    ]
    first = titles[articles[0]["title"]]
    assert dict(first["metadata"])["location"] == "line 2"
    second = titles[articles[1]["title"]]
    assert dict(second["metadata"])["location"] == f"line {starts[2]}"


def test_tsv_gzipped_with_explicit_fields_and_keep_extra(tmp_path):
    rows = [
        ["story_id", "hed", "copy", "when", "outlet", "section"],
        ["1", "Rates held", "The bank held rates.", "1700000000", "Daily", "Economy"],
        [
            "2",
            "Team wins",
            "The team won again.",
            "Tue, 14 Nov 2023 22:13:20 GMT",
            "Daily",
            "Sport",
        ],
        ["3", "No copy", "", "2023-11-14", "Daily", "Sport"],
    ]
    (tmp_path / "feed.tsv.gz").write_bytes(gzip.compress(to_csv(rows, "\t").encode()))
    got, rejects, _ = run(
        tmp_path,
        'paths = ["feed.tsv.gz"]\nkeep_extra = true\n'
        'fields = { title = "hed", text = "copy", published_at = "when", publisher = "outlet" }',
    )
    titles = {r["title"]: r for r in got}
    assert set(titles) == {"Rates held", "Team wins"}
    when = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert titles["Rates held"]["published_at"] == when
    assert titles["Team wins"]["published_at"] == when
    assert titles["Team wins"]["publisher"] == "Daily"
    meta = dict(titles["Rates held"]["metadata"])
    assert meta["section"] == "Economy" and meta["story_id"] == "1"
    assert "hed" not in meta
    assert [(r["location"], r["reason"]) for r in rejects] == [("line 4", "no text")]


def test_semicolons_no_header_and_empty_files(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.csv").write_text(
        "Rates held;The bank held rates.;2023-11-14\n", encoding="utf-8"
    )
    (tmp_path / "in" / "empty.csv").write_bytes(b"")
    got, rejects, _ = run(
        tmp_path,
        'paths = ["in"]\ndelimiter = ";"\ncolumns = ["title", "text", "date"]',
    )
    assert [(r["title"], r["text"]) for r in got] == [("Rates held", "The bank held rates.")]
    assert got[0]["published_at"] == datetime(2023, 11, 14, tzinfo=UTC)
    assert [(Path(r["input"]).name, r["reason"]) for r in rejects] == [("empty.csv", "empty file")]


@pytest.mark.parametrize(
    ("option", "expect"),
    [
        ('delimeter = ";"', "unknown option 'delimeter'"),
        ('fields = { headline = "title" }', "fields: 'headline' is not an article column"),
        ('delimiter = ";;"', "option 'delimiter' must be one character"),
        ('encoding = "klingon"', "unknown encoding 'klingon'"),
    ],
)
def test_validate_catches_mistakes(tmp_path, option, expect):
    (tmp_path / "a.csv").write_text("text\nx\n", encoding="utf-8")
    p = write_pipeline(
        tmp_path / "p.toml",
        f'[[sources]]\nplugin = "csv"\npaths = ["a.csv"]\n{option}\n'
        '[sink]\nplugin = "parquet"\npath = "out"\n',
    )
    proc = run_etl("validate", str(p))
    assert proc.returncode == 2, proc.stdout
    assert expect in proc.stderr
    assert "plugin 'csv'" in proc.stderr


def test_the_example_pipeline(tmp_path):
    example = ROOT / "examples" / "csv.toml"
    proc = run_etl("run", str(example), "--set", f"sink.path={tmp_path / 'out'}")
    assert proc.returncode == 0, proc.stderr
    rows = {r["title"]: r for r in read_dataset(tmp_path / "out").to_pylist()}
    harbour = rows["Harbour reopens after storm repairs"]
    assert harbour["text"].endswith("Fishing boats were the first to return.")
    assert harbour["publisher"] == "Coast Herald"
    assert harbour["uri"] == "https://coast.example/harbour"
    assert rows["Library extends opening hours"]["published_at"] == datetime(
        2024, 3, 12, tzinfo=UTC
    )
    assert rows["Council approves bike lanes"]["published_at"] == datetime(2024, 3, 13, tzinfo=UTC)
    rejects = read_rejects(tmp_path / "out").to_pylist()
    assert [(r["location"], r["reason"]) for r in rejects] == [("line 5", "wrong number of fields")]


def test_etl_plugins_lists_both_sources_with_their_options(tmp_path):
    proc = run_etl("plugins", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    found = {(p["kind"], p["name"]): p for p in json.loads(proc.stdout)}
    for name, extra in (
        ("jsonl", {"format", "max_record_bytes"}),
        ("csv", {"delimiter", "columns"}),
    ):
        plugin = found[("source", name)]
        assert plugin["supplier"] == "etl (builtin)"
        options = {o["name"]: o for o in plugin["options"]}
        assert {"paths", "fields", "keep_extra", "retries", "timeout", *extra} <= set(options)
        assert options["paths"]["required"] is True
        assert options["retries"]["default"] == 3
