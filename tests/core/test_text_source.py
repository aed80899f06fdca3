"""The bundled text source, end to end through the real CLI, on awkward and real files."""

import codecs
import os
from pathlib import Path

import pytest

from tests.helpers import DATA, ROOT, read_dataset, read_rejects, run_etl, write_pipeline

SEED = (ROOT / "seeds" / "000_c9a46c306fd8d2c1.txt").read_text(encoding="utf-8")
BODY = "Prices rose again on Monday, officials said.\nThe rise was the third this year.\n"


def awkward_folder(root: Path) -> dict[str, str]:
    """Files in every encoding the text source must read; returns name -> expected outcome."""
    root.mkdir()
    german = "Die Preise stiegen am Montag, sagten Beamte. Größere Sorgen gibt es nicht.\n"
    files = {
        "utf8.txt": (BODY.encode("utf-8"), "utf-8"),
        "utf8-bom.txt": (codecs.BOM_UTF8 + "Ünïcödé text, with a BOM.\n".encode(), "utf-8-sig"),
        "utf16le.txt": (
            codecs.BOM_UTF16_LE + "UTF-16 little endian text.\n".encode("utf-16-le"),
            "utf-16-le",
        ),
        "utf16be.txt": (
            codecs.BOM_UTF16_BE + "UTF-16 big endian text.\n".encode("utf-16-be"),
            "utf-16-be",
        ),
        "utf32.txt": (codecs.BOM_UTF32_LE + "UTF-32 text here.\n".encode("utf-32-le"), "utf-32-le"),
        "cp1252.txt": ("He said “quotes” — and a dash, in café.\n".encode("cp1252"), "cp1252"),
        "latin1.txt": (german.encode("latin-1"), "cp1252"),  # a superset of latin-1
        "crlf.txt": (b"First line of a CRLF text, long enough.\r\nSecond line.\r\n", "utf-8"),
        "cr.txt": (b"Old Mac line endings here, it says.\rSecond line.\r", "utf-8"),
        "empty.txt": (b"", "reject:empty file"),
        "blank.txt": (b"  \n\t\n  ", "reject:empty file"),
        "binary.bin": (bytes(range(256)) * 8, "reject:binary file"),
        # one DEL or vertical tab in text is text; a file of them is not
        "del.txt": (b"A line with one DEL \x7f byte in it, and more words.\n", "utf-8"),
        "vtab.txt": (b"Words split\x0bby a vertical tab, as str.split() does.\n", "utf-8"),
        "tab-ff.txt": (b"A tab\there and a form feed\x0cthere, no CR.\n", "utf-8"),
        "dels.bin": (b"\x7f" * 40 + b"a few letters", "reject:binary file"),
        "nul.txt": ("UTF-16 without its BOM.".encode("utf-16-le"), "reject:binary file"),
    }
    for name, (data, _) in files.items():
        (root / name).write_bytes(data)
    os.symlink(root / "missing-target.txt", root / "dangling.txt")
    outcomes = {name: expected for name, (_, expected) in files.items()}
    outcomes["dangling.txt"] = "reject:unreadable"
    return outcomes


def test_every_awkward_file_is_one_row_or_one_reject(tmp_path):
    outcomes = awkward_folder(tmp_path / "in")
    pipeline = write_pipeline(
        tmp_path / "p.toml",
        '[[sources]]\nplugin = "text"\npaths = ["in"]\n[sink]\nplugin = "parquet"\npath = "out"\n',
    )
    proc = run_etl("run", str(pipeline))
    assert proc.returncode == 0, proc.stderr
    rows = {Path(r["uri"]).name: r for r in read_dataset(tmp_path / "out").to_pylist()}
    rejects = {Path(r["input"]).name: r for r in read_rejects(tmp_path / "out").to_pylist()}
    assert set(rows) | set(rejects) == set(outcomes)
    assert not set(rows) & set(rejects)
    for name, expected in outcomes.items():
        if expected.startswith("reject:"):
            assert rejects[name]["reason"] == expected.split(":", 1)[1], name
            assert rejects[name]["plugin"] == "text"
            assert rejects[name]["run_id"]
        else:
            assert dict(rows[name]["metadata"])["encoding"].startswith(expected), name
            assert "\r" not in rows[name]["text"]
            # the counts are Python's, whatever path the file took
            text = rows[name]["text"]
            assert rows[name]["char_count"] == len(text), name
            assert rows[name]["word_count"] == len(text.split()), name
    assert rows["cp1252.txt"]["text"] == "He said “quotes” — and a dash, in café.\n"
    assert "Größere" in rows["latin1.txt"]["text"]
    assert rows["utf16be.txt"]["text"] == "UTF-16 big endian text.\n"
    assert rows["crlf.txt"]["text"] == "First line of a CRLF text, long enough.\nSecond line.\n"
    assert "\x7f" in rows["del.txt"]["text"]
    assert rows["vtab.txt"]["word_count"] == 9
    assert "5 rejected" in proc.stdout or f"{len(rejects)} rejected" in proc.stdout


def test_real_legacy_encodings_from_the_corpora(tmp_path):
    pipeline = write_pipeline(
        tmp_path / "p.toml",
        f'[[sources]]\nplugin = "text"\npaths = ["{DATA / "text"}"]\n'
        '[sink]\nplugin = "parquet"\npath = "out"\n',
    )
    proc = run_etl("run", str(pipeline))
    assert proc.returncode == 0, proc.stderr
    rows = {
        str(Path(r["uri"]).relative_to(DATA / "text")): r
        for r in read_dataset(tmp_path / "out").to_pylist()
    }
    rejects = {
        str(Path(r["input"]).relative_to(DATA / "text")): r["reason"]
        for r in read_rejects(tmp_path / "out").to_pylist()
    }
    assert rejects == {
        "chardet/EUC-TW___ude_euc-tw1.txt": "undecodable",  # no Python codec for EUC-TW
        "newspaper/fool.com2.txt": "empty file",
    }
    expect = {
        "chardet/iso-8859-1___ude_2.txt": "entrer en France dépend",
        "chardet/windows-1254-turkish___ude_1.txt": "imtiyazlı ortakların",
        "chardet/iso-8859-9-turkish___ude_1.txt": "gerçekleştiren",
        "chardet/windows-1250-romanian___ude_1.txt": "Preşedintele României",
        "chardet/iso-8859-7-greek___ude_1.txt": "αίτημα",
        "charset_normalizer/sample-french-1.txt": "FÉVRIER",
        "charset_normalizer/sample-hebrew-2.txt": "ניבים",
        "uchardet/uk__windows-1251.txt": "Бабак",
        "chardet/EUC-KR___ude_euc2.txt": "북조선",
        "chardet/UTF-16__bom-utf-16-be.srt": "About 2 months ago",
    }
    for name, snippet in expect.items():
        assert snippet in rows[name]["text"], name
    # the ISO-2022-KR file holds the same Korean text as the EUC-KR one, and the UTF-16 LE and
    # UTF-32 subtitles the same text as the UTF-16 BE ones: same id, one row each
    assert "chardet/iso-2022-kr___ude_iso2.txt" not in rows
    assert "chardet/UTF-32__bom-utf-32-le.srt" not in rows
    assert "4 duplicates" in proc.stdout  # + the UTF-8 BOM subtitles
    proc_summary = proc.stdout
    assert "2 rejected" in proc_summary
    assert rows["newspaper/pixable.com1.txt"]["text"].count("\n") >= 1  # bare CR became LF


def test_seed_row(tmp_path):
    pipeline = write_pipeline(
        tmp_path / "p.toml",
        f'[[sources]]\nplugin = "text"\npaths = ["{ROOT / "seeds"}"]\n[sink]\nplugin = "parquet"\npath = "out"\n',
    )
    assert run_etl("run", str(pipeline)).returncode == 0
    (row,) = read_dataset(tmp_path / "out").to_pylist()
    assert row["text"] == SEED
    assert row["title"] is None
    assert row["publisher"] == "Global Times"
    assert (row["word_count"], row["char_count"]) == (960, 6441)
    assert row["source"] == "text"
    assert row["ingested_at"] is not None and row["run_id"]


@pytest.mark.parametrize(
    ("text", "title", "publisher"),
    [
        (
            "Storm hits coast\n\nA storm hit the coast on Monday, officials said.\n",
            "Storm hits coast",
            None,
        ),
        ("BEIJING, Nov. 13 (Xinhua) -- China said on Monday it would act.\n", None, "Xinhua"),
        ("LONDON (Reuters) - Shares fell on Tuesday.\nMore text follows here.\n", None, "Reuters"),
        ("A short paragraph that is a sentence.\nAnother one follows it.\n", None, None),
        (
            "Markets rally as rates hold\nStocks rose on Wednesday.\n(AP)\n",
            "Markets rally as rates hold",
            "AP",
        ),
    ],
)
def test_headline_and_publisher_heuristics(tmp_path, text, title, publisher):
    (tmp_path / "a.txt").write_text(text, encoding="utf-8")
    pipeline = write_pipeline(
        tmp_path / "p.toml",
        '[[sources]]\nplugin = "text"\npaths = ["a.txt"]\n[sink]\nplugin = "parquet"\npath = "out"\n',
    )
    assert run_etl("run", str(pipeline)).returncode == 0
    (row,) = read_dataset(tmp_path / "out").to_pylist()
    assert row["title"] == title
    assert row["publisher"] == publisher
    if title:
        assert not row["text"].startswith(title)


def test_constant_publisher_and_date_options(tmp_path):
    (tmp_path / "a.txt").write_text("Some text (Xinhua)\n", encoding="utf-8")
    pipeline = write_pipeline(
        tmp_path / "p.toml",
        '[[sources]]\nplugin = "text"\npaths = ["a.txt"]\npublisher = "Wire"\n'
        'published_at = "2023-11-20T08:00:00+01:00"\n[sink]\nplugin = "parquet"\npath = "out"\n',
    )
    assert run_etl("run", str(pipeline)).returncode == 0
    (row,) = read_dataset(tmp_path / "out").to_pylist()
    assert row["publisher"] == "Wire"
    assert row["published_at"].isoformat() == "2023-11-20T07:00:00+00:00"
