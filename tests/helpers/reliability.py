"""Helpers of the reliability tests: generated corpora, real CLI runs, reading datasets back."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from etl.dataset import Dataset
from etl.plugins import get_plugin_manager
from tests.helpers import run_etl, run_etl_process

WORDS = [
    "council",
    "budget",
    "river",
    "harbour",
    "election",
    "minister",
    "storm",
    "school",
    "hospital",
    "market",
    "rail",
    "court",
    "festival",
    "museum",
    "farmers",
    "bridge",
    "energy",
    "water",
    "housing",
    "police",
    "report",
    "vote",
]

#: the installed sources that read local paths (an option named ``paths``)
PM = get_plugin_manager()
FILE_SOURCES = sorted(
    name
    for name, reg in PM.registry["source"].items()
    if any(o.name == "paths" for o in reg.cls.options)
)

#: columns that differ between runs of the same inputs
RUN_COLUMNS = {"run_id", "ingested_at"}


def make_corpus(folder: Path, n: int, *, seed: int = 7, duplicates: int = 0) -> list[Path]:
    """``n`` small text articles (one per file); the last ``duplicates`` repeat earlier texts."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    texts = []
    for i in range(n - duplicates):
        body = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60)))
        texts.append(f"Headline number {i} about {rng.choice(WORDS)}\n\n{body} (item {i}).\n")
    texts += [texts[rng.randrange(len(texts))] for _ in range(duplicates)]
    paths = []
    for i, text in enumerate(texts):
        path = folder / f"{i // 500:02d}" / f"a{i:05d}.txt"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def write_pipeline(
    path: Path, inputs: str | list[str], dataset: Path, *, sink: str = "", run: str = ""
) -> Path:
    paths = [inputs] if isinstance(inputs, str) else inputs
    path.write_text(
        "[run]\n"
        f"{run}\n"
        "[[sources]]\n"
        'plugin = "text"\n'
        f"paths = {json.dumps([str(p) for p in paths])}\n"
        "[sink]\n"
        'plugin = "parquet"\n'
        f"path = {json.dumps(str(dataset))}\n"
        f"{sink}\n",
        encoding="utf-8",
    )
    return path


def etl(*args: str, env: dict[str, str] | None = None, check: bool = False, **kw):
    """Run the real CLI in this process (see ``tests.helpers.run_etl``)."""
    return _checked(run_etl(*args, env=env, **kw), args, check)


def etl_process(*args: str, env: dict[str, str] | None = None, check: bool = False, **kw):
    """Run the real CLI in a process of its own (see ``tests.helpers.run_etl_process``): for
    a run that must die (``ETL_CRASH_AT``), executors that start worker processes, and a
    different ``PYTHONPATH``."""
    return _checked(run_etl_process(*args, env=env, **kw), args, check)


def _checked(proc, args, check: bool):
    if check and proc.returncode != 0:
        raise AssertionError(f"etl {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def visible_files(dataset: Path) -> list[Path]:
    """Every Parquet file a reader globbing ``**/*.parquet`` outside ``_etl`` would see."""
    return sorted(
        p for p in dataset.rglob("*.parquet") if "_etl" not in p.relative_to(dataset).parts
    )


def read_dataset(dataset: Path) -> pa.Table:
    """All rows readers see, each visible file read whole (a torn file raises here)."""
    tables = [pq.read_table(p) for p in visible_files(dataset)]
    if not tables:
        return pa.table({"id": pa.array([], pa.string())})
    return pa.concat_tables(tables, promote_options="default")


def rows_by_id(dataset: Path) -> dict[str, tuple]:
    """``{id: row without run columns}``; fails if an id appears twice."""
    table = read_dataset(dataset)
    columns = [c for c in table.column_names if c not in RUN_COLUMNS]
    rows = table.select(columns).to_pylist()
    out: dict[str, tuple] = {}
    for row in rows:
        assert row["id"] not in out, f"article {row['id']} appears twice"
        out[row["id"]] = tuple(
            (k, json.dumps(v, sort_keys=True, default=str)) for k, v in sorted(row.items())
        )
    return out


def manifests(dataset: Path) -> list[dict]:
    runs = dataset / "_etl" / "runs"
    found = [json.loads(p.read_text()) for p in runs.glob("*.json")] if runs.is_dir() else []
    for manifest in found:  # the per-input account, from the table beside the manifest
        manifest["summary"]["per_input"] = Dataset(dataset).run_inputs(manifest)
    return sorted(found, key=lambda m: m["finished_at"])  # commit order


def file_name(source: str) -> str:
    """A name the source takes as its own (the first of its include patterns)."""
    include = next(
        (o.default for o in PM.registry["source"][source].cls.options if o.name == "include"), None
    )
    for pattern in include or []:
        name = pattern.replace("*", "input")
        if name != "input" and not any(c in name for c in "?["):
            return name
    return "input.txt"


# merge mode (tests/reliability/test_reliability_rerun.py, tests/executors)


def merge_pipeline(path: Path, corpus: Path, dataset: Path) -> Path:
    return write_pipeline(
        path,
        str(corpus),
        dataset,
        sink='mode = "merge"\nkey = "uri"\npartition_by = ["source"]\nmax_rows_per_file = 4',
    )


def edit(paths: list[Path], n: int) -> dict[str, str]:
    """Correct the text of the first ``n`` articles (a version is its text: the id is its
    hash); return their new texts by path."""
    texts = {}
    for path in paths[:n]:
        text = path.read_text().replace(").\n", "), corrected.\n", 1)
        path.write_text(text)
        texts[str(path)] = text
    return texts


def one_row_per_uri(dataset: Path) -> dict[str, str]:
    table = read_dataset(dataset)
    uris = table["uri"].to_pylist()
    assert len(uris) == len(set(uris)), "a uri has two rows"
    return dict(zip(uris, table["text"].to_pylist(), strict=True))


def merged_dataset(tmp_path: Path, edits: int) -> tuple[Path, Path, dict[str, str], dict]:
    """Twelve articles merged by uri into ``tmp_path/ds`` (in this process), then ``edits``
    of their files corrected: (pipeline, dataset, the rows before, the edited texts)."""
    corpus = tmp_path / "corpus"
    paths = make_corpus(corpus, 12)
    dataset = tmp_path / "ds"
    pipeline = merge_pipeline(tmp_path / "p.toml", corpus, dataset)
    etl("run", str(pipeline), check=True)
    return pipeline, dataset, one_row_per_uri(dataset), edit(paths, edits)


def check_merge_replaces_an_edited_article(tmp_path: Path, *sets: str) -> None:
    """Three of twelve articles corrected, then one correction withdrawn (``sets``: extra
    ``--set`` arguments choosing the executor; a real process when there are some)."""
    run = etl_process if sets else etl
    corpus = tmp_path / "corpus"
    paths = make_corpus(corpus, 12)
    dataset = tmp_path / "ds"
    pipeline = merge_pipeline(tmp_path / "p.toml", corpus, dataset)
    run("run", str(pipeline), *sets, check=True)
    old_ids = Dataset(dataset).ids()
    new_texts = edit(paths, 3)
    proc = run("run", str(pipeline), *sets, check=True)
    assert "3 read, 9 skipped" in proc.stdout and "replaced  3 rows" in proc.stdout
    rows = one_row_per_uri(dataset)
    assert len(rows) == 12
    for path in new_texts:
        assert rows[path].rstrip().endswith("corrected.")
    ids = Dataset(dataset).ids()
    assert len(ids) == 12 and len(ids - old_ids) == 3  # the index forgot the old versions

    # the correction withdrawn: the first text comes back as a new row, not a duplicate
    for path in paths[:1]:
        path.write_text(path.read_text().replace(", corrected.", ".", 1))
    run("run", str(pipeline), *sets, check=True)
    rows = one_row_per_uri(dataset)
    assert not rows[str(paths[0])].rstrip().endswith("corrected.")
