"""Measure the ``html`` source's main-text extraction against the corpora's gold pages.

Three gold sets (see tests/data/MANIFEST.tsv):

* ``trafilatura``: ``*.gold.json`` with snippets the main text must contain (``with``) and
  must not contain (``without``);
* ``scrapinghub``: ``*.html.gz`` with the full gold ``articleBody`` in ``*.gold.json``;
* ``newspaper4k``: ``*.html`` with the full gold text in ``*.gold.txt``.

Scores: the share of "must contain" snippets found, the share of "must not contain"
snippets absent, and token F1 (bag of words; CJK, kana and Burmese count per character)
against the full gold texts; title, date, date-time, authors and publisher where gold
has them. Pages are split once, by site, into a tuning and a held-out half
(:func:`assign_halves`), and both are reported beside trafilatura's defaults measured in
the same run. Run from the repository root:

    python plugins/etl-html/eval_extraction.py [--favor auto] [--json] [--timing]

The test suite imports :func:`load_cases` and :func:`score` to hold the numbers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
DEFAULT_CORPUS = HERE / "tests" / "data" / "html"

# Scripts written without spaces between words: one token per character.
_CHAR_SCRIPTS = "\u1000-\u109f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CHAR_SCRIPTS}]|[^\W{_CHAR_SCRIPTS}]+")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def token_f1(found: str, gold: str) -> float:
    got, want = Counter(tokens(found)), Counter(tokens(gold))
    if not got or not want:
        return 1.0 if got == want else 0.0
    common = sum((got & want).values())
    if not common:
        return 0.0
    precision = common / sum(got.values())
    recall = common / sum(want.values())
    return 2 * precision * recall / (precision + recall)


def _squash(text: str) -> str:
    return " ".join(text.split())


def load_cases(corpus: Path = DEFAULT_CORPUS) -> list[dict]:
    """Every gold page: ``{"set", "page", "with", "without", "gold_text"}``."""
    cases = []
    for gold in sorted((corpus / "trafilatura").glob("*.gold.json")):
        entry = json.loads(gold.read_text(encoding="utf-8"))["entries"][0]
        page = gold.with_name(entry["file"])
        cases.append(
            {
                "set": "trafilatura",
                "page": page,
                "with": entry.get("with") or [],
                "without": entry.get("without") or [],
                "gold_text": None,
                "title": entry.get("title") or None,
                "date": entry.get("date") or None,
                "authors": split_names(entry.get("author")),
                "url": entry.get("evaldata_key"),
            }
        )
    for gold in sorted((corpus / "scrapinghub").glob("*.gold.json")):
        entry = json.loads(gold.read_text(encoding="utf-8"))
        page = gold.with_name(gold.name.replace(".gold.json", ".html.gz"))
        cases.append(
            {
                "set": "scrapinghub",
                "page": page,
                "with": [],
                "without": [],
                "gold_text": entry["articleBody"],
                "url": entry.get("url"),
            }
        )
    for gold in sorted((corpus / "newspaper4k").glob("*.gold.txt")):
        page = gold.with_name(gold.name.replace(".gold.txt", ".html"))
        meta_file = gold.with_name(gold.name.replace(".gold.txt", ".meta.json"))
        meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file.exists() else {}
        cases.append(
            {
                "set": "newspaper4k",
                "page": page,
                "with": [],
                "without": [],
                "gold_text": gold.read_text(encoding="utf-8"),
                "url": meta.get("url"),
                "title": meta.get("title") or None,
                "published": meta.get("publish_date") or None,
                "date": (meta.get("publish_date") or "")[:10] or None,
                "authors": meta.get("authors") or None,
                "publisher": meta.get("meta_site_name") or None,
            }
        )
    for case in cases:
        case["site"] = site(case)
    assign_halves(cases)
    return cases


def site(case: dict) -> str:
    """The site a gold page comes from: its URL's registered domain, else its file's.

    ``www.spiegel.de`` and ``edition.cnn.com`` are ``spiegel.de`` and ``cnn.com``; a
    two-letter country domain under ``co``/``com``/``org``... keeps three labels.
    """
    url = case.get("url") or ""
    host = urlsplit(url).hostname if url.startswith(("http://", "https://")) else None
    # the page's file name starts with its host where the gold has no URL
    host = host or case["page"].name.removeprefix("hard::").split("-")[0]
    labels = host.lower().split(".")
    keep = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL else 2
    return ".".join(labels[-keep:])


_SECOND_LEVEL = {"co", "com", "org", "net", "gov", "ac", "ne", "or"}


def assign_halves(cases: list[dict]) -> None:
    """Put each page in ``tune`` or ``heldout`` by its site, fixed before any tuning.

    Within each gold set the sites are ordered by the SHA-256 of their name and dealt
    alternately to the two halves, so each set is split about evenly; a site already dealt
    (the same site in two gold sets) keeps its half, so no site is in both halves.
    """
    halves: dict[str, str] = {}
    for name in ("trafilatura", "scrapinghub", "newspaper4k"):
        sites = sorted(
            {c["site"] for c in cases if c["set"] == name},
            key=lambda s: hashlib.sha256(s.encode()).hexdigest(),
        )
        dealt = 0
        for s in sites:
            if s not in halves:
                halves[s] = ("tune", "heldout")[dealt % 2]
                dealt += 1
    for case in cases:
        case["half"] = halves[case["site"]]


def split_names(value: str | None) -> list[str] | None:
    """Gold authors as the trafilatura set writes them (``"A; B"``), as a list."""
    names = [n.strip() for n in (value or "").split(";") if n.strip()]
    return names or None


_FIELDS = ("date", "time", "title", "authors", "publisher")


def _instant(value: str | None):
    """A gold or extracted ISO date-time with a zone, as an aware datetime (else None)."""
    from datetime import datetime

    try:
        moment = datetime.fromisoformat(value or "")
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _field_right(name: str, case: dict, got: dict) -> bool | None:
    """Whether an extracted field matches gold; None where gold does not have it."""
    if name == "date":
        return got.get("date") == case["date"] if case.get("date") else None
    if name == "time":
        wanted = _instant(case.get("published"))
        # only gold that gives a time of day and a zone can say whether the time is right
        return _instant(got.get("published")) == wanted if wanted is not None else None
    if name == "title":
        if not case.get("title"):
            return None
        return _squash(case["title"]).lower() in _squash(got.get("title") or "").lower()
    if name == "authors":
        if not case.get("authors"):
            return None
        norm = {_squash(a).casefold() for a in case["authors"]}
        return {_squash(a).casefold() for a in got.get("authors") or []} == norm
    if not case.get("publisher"):
        return None
    wanted, found = _squash(case["publisher"]).lower(), _squash(got.get("publisher") or "").lower()
    return bool(found) and (found in wanted or wanted in found)


def score(
    cases: list[dict], texts: dict[str, str | None], fields: dict[str, dict] | None = None
) -> dict[str, dict]:
    """Scores per gold set and overall; ``texts`` maps a page's path to its extracted text.

    A page with no extracted text (a reject) scores as the empty text. ``fields`` maps a
    page's path to its extracted ``title``, ``date`` (ISO day), ``published`` (ISO date-time
    with offset), ``authors`` (list) and ``publisher``, each scored where gold has it:
    ``<field>_total`` pages with gold, ``<field>_found`` right, ``<field>_share``.
    """
    fields = fields or {}
    counters = ["pages", "extracted", "with_total", "with_found", "without_total"]
    counters += ["without_absent"] + [f"{f}_{k}" for f in _FIELDS for k in ("total", "found")]
    sets: dict[str, dict] = {}
    for case in cases:
        text = _squash(texts.get(str(case["page"])) or "")
        row = sets.setdefault(case["set"], {**dict.fromkeys(counters, 0), "f1": []})
        got = fields.get(str(case["page"]), {})
        for name in _FIELDS:
            right = _field_right(name, case, got)
            if right is not None:
                row[f"{name}_total"] += 1
                row[f"{name}_found"] += right
        row["pages"] += 1
        row["extracted"] += bool(text)
        row["with_total"] += len(case["with"])
        row["with_found"] += sum(_squash(s) in text for s in case["with"])
        row["without_total"] += len(case["without"])
        row["without_absent"] += sum(_squash(s) not in text for s in case["without"])
        if case["gold_text"] is not None:
            row["f1"].append(token_f1(text, case["gold_text"]))
    total = {**dict.fromkeys(counters, 0), "f1": []}
    for row in sets.values():
        for key in total:
            total[key] += row[key]
    sets["all"] = total
    for row in sets.values():
        f1 = row.pop("f1")
        row["f1_pages"] = len(f1)
        row["token_f1"] = sum(f1) / len(f1) if f1 else None
        row["with_share"] = row["with_found"] / row["with_total"] if row["with_total"] else None
        row["without_share"] = (
            row["without_absent"] / row["without_total"] if row["without_total"] else None
        )
        for name in _FIELDS:
            total_, found = row[f"{name}_total"], row[f"{name}_found"]
            row[f"{name}_share"] = found / total_ if total_ else None
    return sets


def _page_bytes(case: dict) -> bytes:
    from etl.inputs import read_input_bytes
    from etl.plugin import InputRef

    return read_input_bytes(InputRef(str(case["page"])), max_bytes=64 << 20)


def extract_all(
    cases: list[dict], fields: dict[str, dict] | None = None, **options
) -> dict[str, str | None]:
    """Each page's extracted text (None for a reject); its metadata into ``fields``."""
    import etl_html

    texts: dict[str, str | None] = {}
    for case in cases:
        try:
            found = etl_html.extract(_page_bytes(case), str(case["page"]), **options)
        except etl_html.NoArticle:
            texts[str(case["page"])] = None
            continue
        texts[str(case["page"])] = found["text"]
        if fields is not None:
            fields[str(case["page"])] = page_fields(found)
    return texts


def page_fields(found: dict) -> dict:
    """The scored metadata of one extraction (an ``etl_html.extract`` result or a row)."""
    moment = found.get("published_at")
    meta = dict(found.get("metadata") or {})
    return {
        "title": found.get("title"),
        "date": moment.date().isoformat() if moment else None,
        # the date as the page wrote it, with its offset (metadata.date), else the UTC instant
        "published": meta.get("date") or (moment.isoformat() if moment else None),
        "authors": list(found.get("authors") or []),
        "publisher": found.get("publisher"),
    }


def extract_trafilatura(cases: list[dict], fields: dict[str, dict]) -> dict[str, str | None]:
    """trafilatura's defaults (``bare_extraction`` with metadata) on the same decoded pages."""
    import etl_html
    import trafilatura

    texts: dict[str, str | None] = {}
    for case in cases:
        html, _ = etl_html.decode_html(_page_bytes(case))
        doc = trafilatura.bare_extraction(html, with_metadata=True)
        found = doc.as_dict() if doc is not None else {}
        texts[str(case["page"])] = found.get("text")
        date = found.get("date")
        fields[str(case["page"])] = {
            "title": found.get("title"),
            "date": (date or "")[:10] or None,
            "published": date,
            "authors": etl_html.split_authors(found.get("author")) or [],
            "publisher": found.get("sitename"),
        }
    return texts


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def table(scores: dict[str, dict]) -> str:
    """A Markdown table of :func:`score`'s result, one row per gold set."""
    lines = [
        "| gold set | pages | with text | must contain found | must not contain absent "
        "| token F1 (pages) | date = gold | title has gold |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in scores.items():
        f1 = "-" if row["token_f1"] is None else f"{row['token_f1']:.3f} ({row['f1_pages']})"
        lines.append(
            f"| {name} | {row['pages']} | {row['extracted']} | "
            f"{_pct(row['with_share'])} ({row['with_found']}/{row['with_total']}) | "
            f"{_pct(row['without_share'])} ({row['without_absent']}/{row['without_total']}) | "
            f"{f1} | "
            f"{_pct(row['date_share'])} ({row['date_found']}/{row['date_total']}) | "
            f"{_pct(row['title_share'])} ({row['title_found']}/{row['title_total']}) |"
        )
    return "\n".join(lines)


def _cell(row: dict, name: str) -> str:
    return f"{_pct(row[f'{name}_share'])} ({row[f'{name}_found']}/{row[f'{name}_total']})"


def halves_table(results: dict[str, dict[str, dict]]) -> str:
    """Both halves side by side for each extractor: ``results[extractor][half]`` scores."""
    lines = [
        "| half | extractor | token F1 (pages) | must not contain absent | must contain found "
        "| date = gold | date-time = gold | title has gold | authors = gold | publisher |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for half in ("tune", "heldout"):
        for extractor, by_half in results.items():
            row = by_half[half]["all"]
            f1 = "-" if row["token_f1"] is None else f"{row['token_f1']:.3f} ({row['f1_pages']})"
            lines.append(
                f"| {half} | {extractor} | {f1} | "
                f"{_pct(row['without_share'])} ({row['without_absent']}/{row['without_total']}) | "
                f"{_pct(row['with_share'])} ({row['with_found']}/{row['with_total']}) | "
                + " | ".join(_cell(row, n) for n in _FIELDS)
                + " |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument(
        "--favor", default="auto", choices=("auto", "balanced", "precision", "recall")
    )
    parser.add_argument("--json", action="store_true", help="print the scores as JSON")
    parser.add_argument(
        "--timing",
        action="store_true",
        help="run both extractors once more, alternately, and time that second pass "
        "(the first carries one-off costs: imports, dateparser's regexes per language)",
    )
    args = parser.parse_args(argv)
    cases = load_cases(args.corpus)
    timings: dict[str, tuple[float, float]] = {}
    results: dict[str, dict[str, dict]] = {}
    runs = (
        (f"etl html (favor={args.favor})", lambda f: extract_all(cases, f, favor=args.favor)),
        ("trafilatura defaults", lambda f: extract_trafilatura(cases, f)),
    )
    for name, run in runs:
        fields: dict[str, dict] = {}
        wall, cpu = time.perf_counter(), time.process_time()
        texts = run(fields)
        timings[name] = (time.perf_counter() - wall, time.process_time() - cpu)
        results[name] = {
            half: score([c for c in cases if c["half"] == half], texts, fields)
            for half in ("tune", "heldout")
        }
        results[name]["all"] = score(cases, texts, fields)
    if args.timing:
        for name, run in runs:
            wall, cpu = time.perf_counter(), time.process_time()
            run({})
            timings[name] = (time.perf_counter() - wall, time.process_time() - cpu)
    if args.json:
        print(json.dumps({"favor": args.favor, "timings": timings, "scores": results}))
        return 0
    print(halves_table(results))
    for name in results:
        print(f"\n{name}, all {len(cases)} pages:\n\n{table(results[name]['all'])}")
    for name, (wall, cpu) in timings.items():
        which = "second pass" if args.timing else "first pass, one-off costs included"
        print(f"\n{name}: {len(cases)} pages in {wall:.1f} s wall, {cpu:.1f} s CPU ({which})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
