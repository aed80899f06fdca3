"""A deterministic generated corpus of news-like articles with known near duplicates.

Articles are 2-8 KB of sentences drawn from news templates and a Zipf-distributed vocabulary
of 6,000 words (real news shares its common words, so unrelated articles share some
shingles). ``near_duplicates`` adds copies of earlier articles with a share of their words
replaced, deleted or inserted, so their similarity spreads from about 0.4 to 1.
"""

from __future__ import annotations

import itertools
import random

SUBJECTS = [
    "The government",
    "The finance minister",
    "Officials",
    "The city council",
    "Police",
    "The central bank",
    "Researchers",
    "The company",
    "Residents",
    "The opposition leader",
    "Health authorities",
    "The court",
    "Union leaders",
    "The ministry",
    "Analysts",
]
VERBS = [
    "said on Tuesday that",
    "announced that",
    "warned that",
    "confirmed that",
    "denied reports that",
    "told reporters that",
    "argued that",
    "expects that",
]
CONNECT = [
    "However,",
    "Meanwhile,",
    "In a statement,",
    "Earlier this week,",
    "According to",
    "Separately,",
    "On Monday,",
    "Critics say",
]


def _vocabulary(rng: random.Random, size: int = 6000) -> list[str]:
    letters = "etaoinshrdlcumwfgypbvkjxqz"
    weights = [12, 9, 8, 8, 7, 7, 6, 6, 6, 4, 4, 3, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1]
    words = set()
    while len(words) < size:
        n = rng.choice([3, 4, 5, 5, 6, 6, 7, 8, 9, 10])
        words.add("".join(rng.choices(letters, weights, k=n)))
    return sorted(words)


class Generator:
    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.vocab = _vocabulary(self.rng)
        ranks = range(1, len(self.vocab) + 1)
        self.weights = [1 / r for r in ranks]
        # choices() would sum the 6,000 weights on every call (most of the corpus's time);
        # the same cumulative weights given once draw exactly the same words
        self.cum_weights = list(itertools.accumulate(self.weights))

    def sentence(self) -> str:
        rng = self.rng
        words = rng.choices(self.vocab, cum_weights=self.cum_weights, k=rng.randint(8, 22))
        lead = rng.choice([rng.choice(SUBJECTS) + " " + rng.choice(VERBS), rng.choice(CONNECT)])
        return f"{lead} {' '.join(words)}."

    def article(self) -> str:
        rng = self.rng
        target = rng.randint(2048, 8192)
        paragraphs: list[str] = []
        size = 0
        while size < target:
            para = " ".join(self.sentence() for _ in range(rng.randint(2, 5)))
            paragraphs.append(para)
            size += len(para) + 2
        headline = " ".join(
            rng.choices(self.vocab, cum_weights=self.cum_weights, k=rng.randint(5, 10))
        ).title()
        return headline + "\n\n" + "\n\n".join(paragraphs)

    def edit(self, text: str, rate: float) -> str:
        """``text`` with about ``rate`` of its words replaced, deleted or given a neighbour."""
        rng = self.rng
        out = []
        for word in text.split(" "):
            if rng.random() >= rate:
                out.append(word)
                continue
            action = rng.random()
            if action < 0.5:
                out.append(rng.choice(self.vocab))
            elif action < 0.75:
                continue
            else:
                out.extend([word, rng.choice(self.vocab)])
        return " ".join(out)


def corpus(
    n: int, *, near_share: float = 0.1, exact_share: float = 0.02, seed: int = 1
) -> tuple[list[str], list[int | None]]:
    """``n`` texts and, for each, the index of the article it was copied from (or None)."""
    gen = Generator(seed)
    texts: list[str] = []
    origin: list[int | None] = []
    for _ in range(n):
        roll = gen.rng.random()
        if texts and roll < exact_share:
            source = gen.rng.randrange(len(texts))
            texts.append(texts[source])
            origin.append(source)
        elif texts and roll < exact_share + near_share:
            source = gen.rng.randrange(len(texts))
            texts.append(gen.edit(texts[source], gen.rng.uniform(0.005, 0.2)))
            origin.append(source)
        else:
            texts.append(gen.article())
            origin.append(None)
    return texts, origin
