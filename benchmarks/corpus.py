"""A deterministic news-like corpus for the benchmarks, as text files and as JSONL.

    python benchmarks/corpus.py OUT --articles 10000 [--seed 1]

writes ``OUT/text/<nn>/<nn>/article-<i>.txt`` (one article per file: a headline line, a
blank line, the body) and ``OUT/articles.jsonl`` (the same articles, one object per line:
``{"url", "title", "text"}`` where ``text`` is the body). Articles are 2-8 KB of English
news prose with curly quotes and dashes; about 60% carry a dateline or a trailing
attribution such as ``(Xinhua)``; about 5% repeat an earlier article exactly and 5% repeat
one with a small change (a near duplicate). The same seed and size always give the same
bytes; a finished corpus is reused (``OUT/.complete``).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path

PUBLISHERS = ["Xinhua", "Reuters", "AP", "AFP", "Global Times", "BBC News", "Kyodo", "dpa"]
CITIES = [
    "BEIJING",
    "LONDON",
    "WASHINGTON",
    "NAIROBI",
    "BERLIN",
    "TOKYO",
    "SAO PAULO",
    "NEW DELHI",
    "PARIS",
    "CANBERRA",
]
MONTHS = ["Jan.", "Feb.", "March", "April", "May", "June", "July", "Aug.", "Sept.", "Oct."]
SUBJECTS = [
    "The government",
    "The finance minister",
    "Officials",
    "The city council",
    "The central bank",
    "Analysts",
    "Local residents",
    "The opposition party",
    "The company",
    "Investors",
    "Health authorities",
    "The union",
    "Police",
    "The court",
    "Farmers in the region",
    "The World Bank",
]
VERBS = [
    "said on Tuesday that",
    "announced",
    "warned that",
    "expects that",
    "reported that",
    "denied claims that",
    "confirmed",
    "told reporters that",
    "argued that",
    "estimated that",
]
CLAUSES = [
    "inflation would ease to {n} percent by the end of the year",
    "exports rose {n} percent in the third quarter",
    "the new budget sets aside {n} million dollars for schools and hospitals",
    "talks on the trade agreement would resume next month",
    "the strike had disrupted rail services across the province",
    "water levels in the reservoir fell to their lowest in {n} years",
    "the election would be held as planned despite the protests",
    "interest rates would stay unchanged for now",
    "more than {n} people had been evacuated from the coastal towns",
    "the border crossing would reopen to commercial traffic",
    "energy prices had doubled since the winter",
    "the reform of the pension system was overdue",
    "shares of the firm fell {n} percent in early trading",
    "the project would create {n} jobs over five years",
    "the harvest was the largest in a decade",
]
QUOTES = [
    "\u201cWe are doing everything we can,\u201d a spokesman said.",
    "\u201cThis is not the end of the story \u2014 it is the beginning,\u201d she said.",
    "\u201cNobody expected the numbers to be this good,\u201d one economist told {p}.",
    "\u2018It\u2019s a difficult moment for the country,\u2019 the minister added.",
    "The plan \u2013 first proposed in {y} \u2013 was approved by a wide margin.",
    "Critics called the decision \u201crushed and short-sighted.\u201d",
]
CONNECTORS = ["Meanwhile,", "However,", "In addition,", "Earlier this week,", "Separately,", ""]
HEADLINE_WORDS = [
    "talks",
    "budget",
    "floods",
    "election",
    "markets",
    "strike",
    "exports",
    "reform",
    "rates",
    "harvest",
]


def _sentence(rng: random.Random) -> str:
    if rng.random() < 0.15:
        return (
            rng.choice(QUOTES)
            .replace("{p}", rng.choice(PUBLISHERS))
            .replace("{y}", str(rng.randint(1998, 2023)))
        )
    clause = rng.choice(CLAUSES).replace("{n}", str(rng.randint(2, 950)))
    connector = rng.choice(CONNECTORS)
    subject = rng.choice(SUBJECTS)
    if connector:
        subject = subject[0].lower() + subject[1:]
    text = f"{connector} {subject} {rng.choice(VERBS)} {clause}.".strip()
    return text


def make_article(rng: random.Random, i: int) -> tuple[str | None, str]:
    """One article: (headline or None, body); 2-8 KB in all."""
    target = rng.randint(2100, 7700)
    publisher = rng.choice(PUBLISHERS)
    style = rng.random()
    paragraphs: list[str] = []
    size = 0
    while size < target:  # sentence by sentence, so the size overshoots by one sentence at most
        sentences: list[str] = []
        for _ in range(rng.randint(2, 6)):
            sentence = _sentence(rng)
            sentences.append(sentence)
            size += len(sentence.encode()) + 1
            if size >= target:
                break
        paragraph = " ".join(sentences)
        if not paragraphs and style < 0.3:  # a dateline
            city = rng.choice(CITIES)
            date = f"{rng.choice(MONTHS)} {rng.randint(1, 28)}"
            paragraph = f"{city}, {date} ({publisher}) -- {paragraph}"
            size += len(city) + len(date) + len(publisher) + 8
        paragraphs.append(paragraph)
        size += 1
    body = "\n\n".join(paragraphs)
    if 0.3 <= style < 0.6:  # a trailing attribution
        body += f"\n({publisher})"
    headline = None
    if rng.random() < 0.8:
        headline = (
            f"{rng.choice(SUBJECTS).split()[-1].title()} {rng.choice(VERBS).split()[0]} "
            f"{rng.choice(HEADLINE_WORDS)} plan \u2014 report {i}"
        )
    return headline, body + "\n"


def make_corpus(out: Path, n: int, seed: int = 1) -> Path:
    """Write (or reuse) the corpus of ``n`` articles under ``out``; return ``out``."""
    marker = out / ".complete"
    stamp = f"{n} {seed} v2"
    if marker.exists() and marker.read_text() == stamp:
        return out
    shutil.rmtree(out, ignore_errors=True)
    (out / "text").mkdir(parents=True)
    rng = random.Random(seed)
    made: list[tuple[str | None, str]] = []
    with open(out / "articles.jsonl", "w", encoding="utf-8") as jsonl:
        for i in range(n):
            roll = rng.random()
            if made and roll < 0.05:  # exact duplicate
                headline, body = rng.choice(made)
            elif made and roll < 0.10:  # near duplicate: one changed number or a new line
                headline, body = rng.choice(made)
                if rng.random() < 0.5:
                    body = body.replace(" percent", " per cent", 1)
                else:
                    body = body.rstrip("\n") + "\n\nThis story has been updated.\n"
            else:
                headline, body = make_article(rng, i)
                if len(made) < 5000:
                    made.append((headline, body))
                else:
                    made[rng.randrange(5000)] = (headline, body)
            path = (
                out / "text" / f"{i // 1000:03d}" / f"{i // 100 % 10:02d}" / f"article-{i:07d}.txt"
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            content = f"{headline}\n\n{body}" if headline else body
            path.write_text(content, encoding="utf-8", newline="\n")
            record = {"url": f"https://news.example/{i}", "title": headline, "text": body}
            jsonl.write(json.dumps(record, ensure_ascii=False) + "\n")
    marker.write_text(stamp)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--articles", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    make_corpus(args.out, args.articles, args.seed)
    print(args.out)


if __name__ == "__main__":
    main()
