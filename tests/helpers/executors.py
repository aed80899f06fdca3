"""Helpers of the executor tests: a generated corpus, pipelines, reading datasets back."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import duckdb

from etl.dataset import Dataset
from tests.helpers import DATA, ROOT, write_pipeline

#: the probe plugin the executor tests ship to workers
PLUGINS = ROOT / "tests" / "executors" / "plugins"

#: the columns that differ between two runs of the same inputs
RUN_COLUMNS = ("run_id", "ingested_at")


def make_corpus(folder: Path, n: int = 40) -> Path:
    """``n`` short articles plus the real newspaper samples, with duplicates far apart.

    Every 7th article repeats an earlier one (same text, so the same id) under another file
    name, so duplicates land in other chunks than their first occurrence; one file is empty
    (a reject). Publishers vary, for partitioned sinks.
    """
    folder.mkdir(parents=True, exist_ok=True)
    publishers = ["Xinhua", "Reuters", "Global Times", "AP"]
    texts = []
    for i in range(n):
        if i % 7 == 6:
            text = texts[i // 3]
        else:
            text = (
                f"Headline number {i}\n\nThe council met on day {i} and agreed on item "
                f"{i * 31 % 97}. Officials said more would follow.\n({publishers[i % 4]})\n"
            )
        texts.append(text)
        (folder / f"a{i:03d}.txt").write_text(text, encoding="utf-8")
    (folder / "empty.txt").write_text("")
    for path in sorted((DATA / "text" / "newspaper").glob("*.txt")):
        (folder / f"news-{path.name}").write_bytes(path.read_bytes())
    return folder


def pipeline(tmp_path: Path, name: str = "p.toml", *, extra: str = "", sink: str = "") -> Path:
    return write_pipeline(
        tmp_path / name,
        f'{extra}[[sources]]\nplugin = "text"\npaths = ["in"]\n'
        f'[sink]\nplugin = "parquet"\npath = "out"\n{sink}',
    )


def rows(dataset: Path) -> list[tuple]:
    """The committed articles as readers see them (hive partitions too), by id."""
    table = duckdb.sql(
        f"select * exclude ({', '.join(RUN_COLUMNS)}) from read_parquet("
        f"'{dataset}/**/*.parquet', hive_partitioning = true, union_by_name = true) order by id"
    )
    return [tuple(map(str, row)) for row in table.fetchall()]


def manifests(dataset: Path) -> list[dict]:
    found = [json.loads(p.read_text()) for p in (dataset / "_etl" / "runs").glob("*.json")]
    for manifest in found:  # the per-input account, from the table beside the manifest
        manifest["summary"]["per_input"] = Dataset(dataset).run_inputs(manifest)
    # run ids sort by start second only: two quick runs in one second tie
    return sorted(found, key=lambda m: (m["finished_at"], m["run_id"]))


def per_input(dataset: Path) -> dict[str, tuple]:
    """The last run's accounting per input: (read, written, duplicates, dropped, rejected)."""
    summary = manifests(dataset)[-1]["summary"]
    return {
        Path(e["input"]).name: (
            e["read"],
            e["written"],
            e["duplicates"],
            e["dropped"],
            e["rejected"],
        )
        for e in summary["per_input"]
    }


@contextlib.contextmanager
def local_dask_cluster(workers: int = 2) -> Iterator[str]:
    """A LocalCluster of ``workers`` worker processes on 127.0.0.1: its scheduler address,
    once every worker is up; closed after. Skips the test where distributed is missing.

    Its workers are forked from a server that imported dask and its dependencies once (per
    test process): a cluster after the first starts in well under a second, not in two or
    three, and closes at once (a forked worker skips interpreter shutdown). The cluster
    stands in for one a user runs; the runs under test are etl's, whose own LocalCluster
    (no address) keeps Dask's default start method.
    """
    import logging

    import pytest

    dask = pytest.importorskip("dask")
    distributed = pytest.importorskip("distributed")
    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
        cluster = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    try:
        with distributed.Client(cluster) as client:
            client.wait_for_workers(workers, timeout=60)
        yield cluster.scheduler_address
    finally:
        cluster.close()
