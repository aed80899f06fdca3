"""Measure the ``html`` source's main-text extraction against the corpora's gold pages.

Three gold sets (see tests/data/MANIFEST.tsv):

* ``trafilatura``: ``*.gold.json`` with snippets the main text must contain (``with``) and
  must not contain (``without``);
* ``scrapinghub``: ``*.html.gz`` with the full gold ``articleBody`` in ``*.gold.json``;
* ``newspaper4k``: ``*.html`` with the full gold text in ``*.gold.txt``.

Scores: the share of "must contain" snippets found, the share of "must not contain"
snippets absent, and token F1 (bag of words; CJK, kana and Burmese count per character)
against the full gold texts. Run from the repository root:

    python plugins/etl-html/eval_extraction.py [--favor balanced] [--json]

The test suite imports :func:`load_cases` and :func:`score` to hold the numbers.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from pathlib import Path

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
            }
        )
    for gold in sorted((corpus / "newspaper4k").glob("*.gold.txt")):
        page = gold.with_name(gold.name.replace(".gold.txt", ".html"))
        cases.append(
            {
                "set": "newspaper4k",
                "page": page,
                "with": [],
                "without": [],
                "gold_text": gold.read_text(encoding="utf-8"),
            }
        )
    return cases


def score(
    cases: list[dict], texts: dict[str, str | None], fields: dict[str, dict] | None = None
) -> dict[str, dict]:
    """Scores per gold set and overall; ``texts`` maps a page's path to its extracted text.

    A page with no extracted text (a reject) scores as the empty text. ``fields`` maps a
    page's path to its extracted ``title`` and ``date`` (ISO day), scored where gold has them.
    """
    fields = fields or {}
    sets: dict[str, dict] = {}
    for case in cases:
        text = _squash(texts.get(str(case["page"])) or "")
        row = sets.setdefault(
            case["set"],
            {
                "pages": 0,
                "extracted": 0,
                "with_total": 0,
                "with_found": 0,
                "without_total": 0,
                "without_absent": 0,
                "f1": [],
                "date_total": 0,
                "date_found": 0,
                "title_total": 0,
                "title_found": 0,
            },
        )
        got = fields.get(str(case["page"]), {})
        if case.get("date"):
            row["date_total"] += 1
            row["date_found"] += got.get("date") == case["date"]
        if case.get("title"):
            row["title_total"] += 1
            wanted = _squash(case["title"]).lower()
            row["title_found"] += wanted in _squash(got.get("title") or "").lower()
        row["pages"] += 1
        row["extracted"] += bool(text)
        row["with_total"] += len(case["with"])
        row["with_found"] += sum(_squash(s) in text for s in case["with"])
        row["without_total"] += len(case["without"])
        row["without_absent"] += sum(_squash(s) not in text for s in case["without"])
        if case["gold_text"] is not None:
            row["f1"].append(token_f1(text, case["gold_text"]))
    total = {
        "pages": 0,
        "extracted": 0,
        "with_total": 0,
        "with_found": 0,
        "without_total": 0,
        "without_absent": 0,
        "f1": [],
        "date_total": 0,
        "date_found": 0,
        "title_total": 0,
        "title_found": 0,
    }
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
        row["date_share"] = row["date_found"] / row["date_total"] if row["date_total"] else None
        row["title_share"] = row["title_found"] / row["title_total"] if row["title_total"] else None
    return sets


def extract_all(
    cases: list[dict], fields: dict[str, dict] | None = None, **options
) -> dict[str, str | None]:
    """Each page's extracted text (None for a reject); titles and dates into ``fields``."""
    import etl_html

    from etl.inputs import read_input_bytes
    from etl.plugin import InputRef

    texts: dict[str, str | None] = {}
    for case in cases:
        data = read_input_bytes(InputRef(str(case["page"])), max_bytes=64 << 20)
        try:
            found = etl_html.extract(data, str(case["page"]), **options)
        except etl_html.NoArticle:
            texts[str(case["page"])] = None
            continue
        texts[str(case["page"])] = found["text"]
        if fields is not None:
            date = found["published_at"].date().isoformat() if found["published_at"] else None
            fields[str(case["page"])] = {"title": found["title"], "date": date}
    return texts


def table(scores: dict[str, dict]) -> str:
    def pct(value):
        return "-" if value is None else f"{100 * value:.1f}%"

    lines = [
        "| gold set | pages | with text | must contain found | must not contain absent "
        "| token F1 (pages) | date = gold | title has gold |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in scores.items():
        f1 = "-" if row["token_f1"] is None else f"{row['token_f1']:.3f} ({row['f1_pages']})"
        lines.append(
            f"| {name} | {row['pages']} | {row['extracted']} | "
            f"{pct(row['with_share'])} ({row['with_found']}/{row['with_total']}) | "
            f"{pct(row['without_share'])} ({row['without_absent']}/{row['without_total']}) | {f1} | "
            f"{pct(row['date_share'])} ({row['date_found']}/{row['date_total']}) | "
            f"{pct(row['title_share'])} ({row['title_found']}/{row['title_total']}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--favor", default="balanced", choices=("balanced", "precision", "recall"))
    parser.add_argument("--json", action="store_true", help="print the scores as JSON")
    args = parser.parse_args(argv)
    cases = load_cases(args.corpus)
    started = time.perf_counter()
    fields: dict[str, dict] = {}
    texts = extract_all(cases, fields, favor=args.favor)
    elapsed = time.perf_counter() - started
    scores = score(cases, texts, fields)
    if args.json:
        print(json.dumps({"favor": args.favor, "seconds": round(elapsed, 1), "scores": scores}))
    else:
        print(table(scores))
        print(f"\nfavor={args.favor}: {len(cases)} pages in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
