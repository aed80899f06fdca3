"""Near dedup across the whole run: every executor keeps the ids ``local`` keeps (issue 17,
item 8). Workers compute the signatures; the driver decides, in unit order, on one index."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.helpers import run_etl, run_etl_process, write_pipeline
from tests.helpers.executors import PLUGINS, manifests, per_input

#: words of the generated articles (unrelated articles share almost no 5-word shingle)
VOCABULARY = [
    f"{a}{b}"
    for a in ("ka", "lo", "mi", "nu", "pe", "ro", "si", "tu")
    for b in ("ba", "de", "fi", "go", "ha", "je", "ki", "lu", "mo", "ne", "pa", "ri")
]


def near_corpus(folder: Path, bases: int = 60, seed: int = 17) -> dict[str, int]:
    """One article per file: ``bases`` unrelated articles, and near copies (two words
    changed, or ten words added) and exact copies of some of them, each somewhere after its
    original (most in other chunks, and so other workers, than it; some in the same).

    Every fifth base article has 195 words, the others 220: a ``word_count >= 200`` filter
    after ``dedup`` drops the short ones, and their copies with ten words added must still
    be dropped as near duplicates of them (``local`` indexes an article that a later
    filter drops). Returns how many copies of each kind were made.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    texts = [
        [rng.choice(VOCABULARY) for _ in range(195 if i % 5 == 0 else 220)] for i in range(bases)
    ]
    made = {"changed": 0, "added": 0, "exact": 0}
    copies: list[tuple[int, list[str]]] = []
    for i, original in enumerate(texts):
        if i % 5 == 0:  # short: ten words added (kept by the filter, a near duplicate)
            copies.append((i, original + [rng.choice(VOCABULARY) for _ in range(10)]))
            made["added"] += 1
        elif i % 3 == 0:  # two words changed
            copy = list(original)
            for at in rng.sample(range(len(copy)), 2):
                copy[at] = "changed" + copy[at]
            copies.append((i, copy))
            made["changed"] += 1
        elif i % 7 == 1:
            copies.append((i, list(original)))
            made["exact"] += 1
    # a near copy of a near copy is a near duplicate too
    copies.append((copies[1][0], copies[1][1] + ["onemore"]))
    made["changed"] += 1
    order = list(range(bases))
    rng.shuffle(copies)
    for base, words in copies:
        texts.append(words)
        after = order.index(base) + 1
        order.insert(rng.randrange(after, len(order) + 1), len(texts) - 1)
    for n, index in enumerate(order):
        words = texts[index]
        lines = [" ".join(words[k : k + 15]) for k in range(0, len(words), 15)]
        (folder / f"a{n:04d}.txt").write_text(
            f"Article {n}\n\n" + "\n".join(lines) + "\n", encoding="utf-8"
        )
    return made


def _pipeline(tmp_path: Path, transforms: str, executor: str = "") -> Path:
    return write_pipeline(
        tmp_path / "p.toml",
        f'plugins = ["firstword.py"]\n{executor}[[sources]]\nplugin = "text"\npaths = ["in"]\n'
        f'{transforms}[sink]\nplugin = "parquet"\npath = "out"\n',
    )


DEDUP = '[[transforms]]\nplugin = "dedup"\nmethod = "near"\n'
FILTER = '[[transforms]]\nplugin = "filter"\nwhere = "word_count >= 200"\n'


def _ids(dataset: Path) -> list[str]:
    return [
        r[0]
        for r in duckdb.sql(
            f"select id from read_parquet('{dataset}/**/*.parquet') order by id"
        ).fetchall()
    ]


def _run_everywhere(tmp_path: Path, p: Path, dask_address: str) -> dict[str, Path]:
    shutil.copy(PLUGINS / "firstword.py", tmp_path / "firstword.py")
    processes = ["--set", "executor.workers=2", "--set", "executor.chunk_size=3"]
    runs = {
        "local": [],
        # workers hold their chunk and ask which ids are new (the default): the notes go
        # with the question, and the answer leaves out what the driver decided to drop
        "processes": processes,
        # workers write at once; the driver drops what it decides from their files
        "processes-no-hold": [*processes, "--set", "executor.hold_bytes=0"],
        # chunks that outgrow the hold are written as they stream, the others held
        "processes-spill": [*processes, "--set", "executor.hold_bytes=3000"],
        # merge mode: workers ship their batches and the driver writes them
        "processes-ship": [*processes, "--set", "sink.mode=merge"],
        "dask": ["--set", f"executor.address={dask_address}", "--set", "executor.chunk_size=4"],
    }
    out = {}
    for name, extra in runs.items():
        dataset = tmp_path / f"out-{name}"
        plugin = name.split("-")[0]
        run = run_etl if plugin == "local" else run_etl_process
        proc = run(
            "run",
            str(p),
            "--set",
            f"sink.path={dataset}",
            "--set",
            f"executor.plugin={plugin}",
            "--set",
            "run.batch_size=8",
            *extra,
        )
        assert proc.returncode == 0, f"{name}: {proc.stderr}"
        out[name] = dataset
    return out


def _check_same(datasets: dict[str, Path]) -> dict[str, int]:
    local = datasets["local"]
    expected = _ids(local)
    summary = manifests(local)[-1]["summary"]
    counters = summary["counters"]
    accounting = per_input(local)
    kept = {}
    for name, dataset in datasets.items():
        ids = _ids(dataset)
        kept[name] = len(ids)
        assert ids == expected, f"{name} kept {len(ids)} ids, local {len(expected)}"
        theirs = manifests(dataset)[-1]["summary"]
        for key in ("dedup near duplicates", "dedup exact duplicates", "firstword repeats"):
            assert theirs["counters"].get(key) == counters.get(key), (name, key)
        for key in ("read", "written", "duplicates", "dropped", "rejected"):
            assert theirs[key] == summary[key], (name, key)
        # the rows in and out of dedup (the first transform); under workers the
        # transforms after it see the rows the driver drops later
        dedup = next(iter(summary["transforms"]))
        assert theirs["transforms"][dedup] == summary["transforms"][dedup], name
        # every input accounted for as one process does it
        assert per_input(dataset) == accounting, name
    return kept


@pytest.mark.slow
def test_near_dedup_keeps_the_same_ids_under_every_executor(tmp_path, dask_address):
    made = near_corpus(tmp_path / "in")
    datasets = _run_everywhere(tmp_path, _pipeline(tmp_path, DEDUP), dask_address)
    kept = _check_same(datasets)
    counters = manifests(datasets["local"])[-1]["summary"]["counters"]
    # every copy made was found, and nothing else
    assert counters["dedup near duplicates"] == made["changed"] + made["added"]
    assert counters["dedup exact duplicates"] == made["exact"]
    assert kept["local"] == 60


@pytest.mark.slow
def test_near_dedup_then_a_filter_keeps_the_same_ids_under_every_executor(tmp_path, dask_address):
    made = near_corpus(tmp_path / "in")
    datasets = _run_everywhere(tmp_path, _pipeline(tmp_path, DEDUP + FILTER), dask_address)
    kept = _check_same(datasets)
    # the short originals are filtered out, and their longer copies are near duplicates
    assert kept["local"] == 60 - 12
    counters = manifests(datasets["local"])[-1]["summary"]["counters"]
    assert counters["dedup near duplicates"] == made["changed"] + made["added"]


@pytest.mark.slow
def test_a_third_party_transform_decides_on_the_driver_under_every_executor(tmp_path, dask_address):
    near_corpus(tmp_path / "in")
    # its notes fail on the articles that begin with this word: they are rejected alone
    word = (tmp_path / "in" / "a0010.txt").read_text().split("\n")[2].split()[0]
    firstword = f'[[transforms]]\nplugin = "firstword"\nfail_on = "{word}"\n'
    datasets = _run_everywhere(tmp_path, _pipeline(tmp_path, firstword), dask_address)
    kept = _check_same(datasets)
    summary = manifests(datasets["local"])[-1]["summary"]
    rejected = summary["rejected"]
    assert rejected >= 1
    # 96 words begin the 94 articles: many share their first word with an earlier one
    repeats = summary["counters"]["firstword repeats"]
    assert repeats > 20
    assert 30 < kept["local"] < 70
    assert kept["local"] + repeats + rejected + summary["duplicates"] == 94


def test_validate_shows_the_capability(tmp_path):
    shutil.copy(PLUGINS / "firstword.py", tmp_path / "firstword.py")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("One article.\n")
    p = _pipeline(tmp_path, DEDUP + '[[transforms]]\nplugin = "firstword"\n')
    proc = run_etl("validate", str(p))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("(decides-on-driver)") == 2
    exact_mark = '[[transforms]]\nplugin = "dedup"\naction = "mark"\n'
    p = _pipeline(tmp_path, exact_mark)
    assert "decides-on-driver" not in run_etl("validate", str(p)).stdout


def test_near_mark_and_two_deciding_transforms_are_refused_under_workers(tmp_path):
    shutil.copy(PLUGINS / "firstword.py", tmp_path / "firstword.py")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("One article.\n")
    processes = '[executor]\nplugin = "processes"\n'
    mark = DEDUP + 'action = "mark"\n'
    # fine in one process: the mark is set where the article is
    assert run_etl("validate", str(_pipeline(tmp_path, mark))).returncode == 0
    for command in ("validate", "run"):
        proc = run_etl(command, str(_pipeline(tmp_path, mark, processes)))
        assert proc.returncode == 2, proc.stdout
        assert 'action = "mark" fills duplicate_of' in proc.stderr
        assert "executor 'processes'" in proc.stderr
        assert not (tmp_path / "out").exists()
    both = DEDUP + '[[transforms]]\nplugin = "firstword"\n'
    proc = run_etl("validate", str(_pipeline(tmp_path, both, processes)))
    assert proc.returncode == 2
    assert "only one transform of a pipeline can" in proc.stderr
    assert run_etl("validate", str(_pipeline(tmp_path, both))).returncode == 0


def _counted(dataset: Path, key: str) -> int:
    """A counter summed over every manifest of the dataset (a checkpointed run has several)."""
    return sum(m["summary"]["counters"].get(key, 0) for m in manifests(dataset))


@pytest.mark.slow
def test_near_dedup_across_checkpoints_and_split_inputs(tmp_path):
    """The driver's index lasts the whole run, across checkpoints (workers start each
    checkpoint's job afresh); parts of one big input, each in a chunk of its own, are
    decided in input order like whole inputs."""
    made = near_corpus(tmp_path / "in")
    found = made["changed"] + made["added"]
    shutil.copy(PLUGINS / "firstword.py", tmp_path / "firstword.py")
    p = _pipeline(tmp_path, DEDUP)
    processes = ["--set", "executor.workers=2", "--set", "executor.chunk_size=3"]
    runs = {
        "local": ["--set", "executor.plugin=local"],
        "local-checkpoints": ["--set", "executor.plugin=local", "--set", "run.checkpoint=25"],
        "processes-checkpoints": [
            "--set",
            "executor.plugin=processes",
            *processes,
            "--set",
            "run.checkpoint=25",
        ],
    }
    for name, extra in runs.items():
        run = run_etl if name.startswith("local") else run_etl_process
        proc = run("run", str(p), "--set", f"sink.path={tmp_path / name}", *extra)
        assert proc.returncode == 0, f"{name}: {proc.stderr}"
    expected = _ids(tmp_path / "local")
    assert len(manifests(tmp_path / "processes-checkpoints")) == 4
    for name in runs:
        assert _ids(tmp_path / name) == expected, name
        assert _counted(tmp_path / name, "dedup near duplicates") == found, name
    # the same articles as one JSON Lines file, split into parts on two workers
    texts = sorted((tmp_path / "in").glob("*.txt"))
    lines = []
    for path in texts:
        title, _, body = path.read_text(encoding="utf-8").partition("\n\n")
        lines.append(json.dumps({"title": title, "text": body}))
    (tmp_path / "one").mkdir()
    big = tmp_path / "one" / "all.jsonl"
    big.write_text("\n".join(lines) + "\n", encoding="utf-8")
    jsonl = write_pipeline(
        tmp_path / "j.toml",
        f'[[sources]]\nplugin = "jsonl"\npaths = ["{big}"]\n{DEDUP}'
        '[sink]\nplugin = "parquet"\npath = "out"\n',
    )
    split = [
        "--set",
        "executor.plugin=processes",
        "--set",
        "executor.workers=2",
        "--set",
        f"executor.split_bytes={big.stat().st_size // 6}",
    ]
    for name, extra in {"jsonl-local": [], "jsonl-split": split}.items():
        run = run_etl if name == "jsonl-local" else run_etl_process
        proc = run("run", str(jsonl), "--set", f"sink.path={tmp_path / name}", *extra)
        assert proc.returncode == 0, f"{name}: {proc.stderr}"
    summary = manifests(tmp_path / "jsonl-split")[-1]["summary"]
    assert summary["counters"]["processes:parts of split inputs"] >= 5
    assert _ids(tmp_path / "jsonl-split") == _ids(tmp_path / "jsonl-local")
    assert len(_ids(tmp_path / "jsonl-local")) == len(expected)
    assert _counted(tmp_path / "jsonl-split", "dedup near duplicates") == found
    assert per_input(tmp_path / "jsonl-split") == per_input(tmp_path / "jsonl-local")
