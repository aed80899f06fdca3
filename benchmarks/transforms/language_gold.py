"""Build tests/data/transforms/language_gold.jsonl from the multilingual gold pages, and score
the ``language`` transform on it.

    python benchmarks/transforms/language_gold.py [--corpora tests/data/corpora] [--build]

Gold texts: scrapinghub ``articleBody``; trafilatura's annotated title, description and
"with" snippets; newspaper4k's ``.gold.txt``. The language of each page is known from its
``<html lang>`` attribute or, where a page has none, from the site (LABELS below, checked by
reading the text). ``--build`` rewrites the JSONL (one object per page: file, language, how
known, text); without it the script scores the committed JSONL.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "data" / "transforms" / "language_gold.jsonl"

# pages without a usable <html lang>: language from the site, confirmed by reading the text
LABELS = {
    "trafilatura/banyuetan.org.1000200033136171577956287380194268_1": "zh",
    "trafilatura/dailymail.co.uk.food": "en",
    "trafilatura/die-tagespost.de.Demut": "de",
    "trafilatura/edition.cnn.com-royal": "en",
    "trafilatura/villagevoice.com-Party": "en",
    "trafilatura/xinhuanet.com.c_1125597921": "zh",
    "trafilatura/„Sieci”_ IPN, czyli element infrastruktury krytycznej Tygodnik Sieci": "pl",
    "newspaper4k/article_with_divs": "en",
    "newspaper4k/chinese_article_001": "zh",
    "scrapinghub/0ec95c72": "ko",
    "scrapinghub/11ea381a": "pt",
    "scrapinghub/20b2b649": "it",
    "scrapinghub/85439e26": "ja",
    "scrapinghub/c4a3637c": "ru",
    "scrapinghub/34a73285": "en",
    "scrapinghub/42aad16b": "en",
    "scrapinghub/bdb56ac8": "en",
    "scrapinghub/d90bda7e": "en",
    "scrapinghub/f105de6e": "ja",
}


def html_lang(raw: bytes) -> str | None:
    m = re.search(rb"<html[^>]*\blang=[\"']?([a-zA-Z]{2,3})", raw[:20000], re.I)
    return m.group(1).decode().lower() if m else None


def label_for(key: str, raw: bytes) -> tuple[str | None, str]:
    for prefix, lang in LABELS.items():
        if key.startswith(prefix):
            return lang, "site (read)"
    lang = html_lang(raw)
    return lang, "html lang" if lang else "unknown"


def build(corpora: Path) -> list[dict]:
    rows = []
    html = corpora / "html"
    for gold in sorted((html / "scrapinghub").glob("*.gold.json")):
        stem = gold.name[: -len(".gold.json")]
        raw = gzip.decompress((gold.parent / f"{stem}.html.gz").read_bytes())
        lang, how = label_for(f"scrapinghub/{stem}", raw)
        text = json.loads(gold.read_text(encoding="utf-8"))["articleBody"]
        rows.append(
            {
                "file": f"html/scrapinghub/{gold.name}",
                "language": lang,
                "known_by": how,
                "text": text,
            }
        )
    for gold in sorted((html / "trafilatura").glob("*.gold.json")):
        stem = gold.name[: -len(".gold.json")]
        page = gold.parent / f"{stem}.html"
        raw = page.read_bytes() if page.exists() else b""
        lang, how = label_for(f"trafilatura/{stem}", raw)
        entry = json.loads(gold.read_text(encoding="utf-8"))["entries"][0]
        parts = [entry.get("title") or "", entry.get("description") or "", *entry.get("with", [])]
        rows.append(
            {
                "file": f"html/trafilatura/{gold.name}",
                "language": lang,
                "known_by": how,
                "text": "\n".join(p for p in parts if p),
            }
        )
    for gold in sorted((html / "newspaper4k").glob("*.gold.txt")):
        stem = gold.name[: -len(".gold.txt")]
        raw = (gold.parent / f"{stem}.html").read_bytes()
        lang, how = label_for(f"newspaper4k/{stem}", raw)
        rows.append(
            {
                "file": f"html/newspaper4k/{gold.name}",
                "language": lang,
                "known_by": how,
                "text": gold.read_text(encoding="utf-8"),
            }
        )
    return rows


def score(rows: list[dict]) -> tuple[int, int, list[tuple[str, str, str | None]]]:
    import pyarrow as pa
    from etl_nlp import LanguageTransform

    known = [r for r in rows if r["language"]]
    transform = LanguageTransform({})
    found, _ = transform.detect(pa.array([r["text"] for r in known]))
    wrong = [
        (r["file"], r["language"], got)
        for r, got in zip(known, found.to_pylist(), strict=True)
        if got != r["language"]
    ]
    return len(known) - len(wrong), len(known), wrong


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=ROOT / "tests" / "data" / "corpora")
    parser.add_argument("--build", action="store_true", help="rebuild the JSONL from the corpora")
    args = parser.parse_args()
    if args.build:
        rows = build(args.corpora)
        OUT.parent.mkdir(parents=True, exist_ok=True)
        with OUT.open("w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
    rows = [json.loads(line) for line in OUT.read_text(encoding="utf-8").splitlines()]
    right, total, wrong = score(rows)
    langs = sorted({r["language"] for r in rows if r["language"]})
    print(f"pages: {len(rows)}, language known: {total}, languages: {' '.join(langs)}")
    print(f"right: {right}/{total} = {right / total:.1%}")
    for file, want, got in wrong:
        print(f"  wrong: {file}: gold {want}, got {got}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
