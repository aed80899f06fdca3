"""A dataset that lives in an object store (issue 17, item 1): the parquet sink and the store
on a real S3-compatible server on 127.0.0.1 (moto), and on fsspec's ``memory://``.

Every test compares what is in the bucket with a local run of the same inputs: the feature
broken (the URL refused, or written to a local ``s3:/`` folder) fails each of them.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from etl.store import FAULT_POINTS
from tests.helpers import read_dataset, run_etl, run_etl_process, write_pipeline
from tests.objstore.conftest import KEY_ID, SECRET

ARTICLES = [
    f"Article {n}: the council met on Tuesday about road number {n} and the harbour.\n"
    for n in range(14)
]
ARTICLES.append(ARTICLES[5])  # a duplicate


def _inputs(folder: Path, texts: list[str] = ARTICLES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n, text in enumerate(texts):
        (folder / f"a{n:02d}.txt").write_text(text, encoding="utf-8")
    return folder


def _pipeline(path: Path, inputs: Path, out: str, extra: str = "", run: str = "") -> Path:
    return write_pipeline(
        path,
        f"""
[[sources]]
plugin = "text"
paths = ["{inputs}/*.txt"]
{run}
[sink]
plugin = "parquet"
path = "{out}"
{extra}
""",
    )


def _read_bucket(s3, prefix: str = "out") -> pa.Table:
    """The dataset as a reader of the documented read path sees it: every ``*.parquet``
    below the prefix (hive partitions), read through fsspec."""
    import pyarrow.dataset as pads
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    fs = s3.fs()
    files = sorted(fs.glob(f"{s3.bucket}/{prefix}/**/*.parquet"))
    if not files:
        return pa.table({})
    return pads.dataset(
        files, filesystem=PyFileSystem(FSSpecHandler(fs)), format="parquet", partitioning="hive"
    ).to_table()


def _same_rows(got: pa.Table, want: pa.Table) -> None:
    """Row for row, every column but the run's own (run ids and times differ)."""
    skip = {"ingested_at", "run_id"}
    columns = sorted(c for c in want.column_names if c not in skip)
    assert sorted(c for c in got.column_names if c not in skip) == columns
    got, want = got.select(columns).sort_by("id"), want.select(columns).sort_by("id")
    assert got.num_rows == want.num_rows
    for name in columns:
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name


def _no_id_twice(table: pa.Table) -> None:
    if table.num_rows:
        assert pc.count_distinct(table.column("id")).as_py() == table.num_rows


def _everything_in_the_bucket(s3) -> str:
    fs = s3.fs()
    return "\n".join(fs.cat_file(p).decode("latin-1") for p in fs.find(s3.bucket))


def test_a_dataset_in_a_bucket_equals_a_local_run_and_a_rerun_adds_nothing(tmp_path, s3):
    inputs = _inputs(tmp_path / "in")
    remote = _pipeline(
        tmp_path / "s3.toml", inputs, s3.url("out"), f"storage_options = {s3.toml()}"
    )
    local = _pipeline(tmp_path / "local.toml", inputs, str(tmp_path / "local"))

    done = run_etl("-vv", "--log-format", "json", "run", str(remote))
    assert done.returncode == 0, done.stderr
    assert run_etl("run", str(local)).returncode == 0
    assert not list(tmp_path.glob("**/s3:")), "a local folder named after the URL"

    got = _read_bucket(s3)
    assert got.num_rows == len(ARTICLES) - 1
    _same_rows(got, read_dataset(tmp_path / "local"))
    fs = s3.fs()
    assert len(fs.glob(f"{s3.bucket}/out/_etl/runs/*.json")) == 1
    assert fs.glob(f"{s3.bucket}/out/_etl/rejects/*.rejects.pq")
    assert not fs.exists(f"{s3.bucket}/out/_etl/lock"), "the lock is released"
    assert not fs.glob(f"{s3.bucket}/out/_etl/staging/**"), "staging is cleaned up"

    # a re-run: every input unchanged, nothing added (the inputs memory is in the bucket)
    again = run_etl("run", str(remote))
    assert again.returncode == 0, again.stderr
    assert "1 read" not in again.stdout and "0 written" in again.stdout
    files = fs.glob(f"{s3.bucket}/out/**/*.parquet")
    # --full reads them again: each article is then already in the dataset (the id index)
    full = run_etl("run", "--full", str(remote))
    assert full.returncode == 0, full.stderr
    assert "0 written" in full.stdout
    assert fs.glob(f"{s3.bucket}/out/**/*.parquet") == files
    _same_rows(_read_bucket(s3), read_dataset(tmp_path / "local"))

    # new inputs: only they are added
    more = [f"A later article {n} about the new bridge and its {n} lanes.\n" for n in range(3)]
    _inputs(tmp_path / "in", ARTICLES + more)
    assert run_etl("run", str(remote)).returncode == 0
    assert run_etl("run", str(local)).returncode == 0
    got = _read_bucket(s3)
    assert got.num_rows == len(ARTICLES) - 1 + len(more)
    _same_rows(got, read_dataset(tmp_path / "local"))

    # the secret (from ${ENV}) and the key id (written in the file) are in no object, no log
    written = _everything_in_the_bucket(s3) + done.stdout + done.stderr
    assert SECRET not in written and KEY_ID not in written


def test_duckdb_and_polars_read_the_dataset_from_the_bucket(tmp_path, s3):
    duckdb = pytest.importorskip("duckdb")
    pl = pytest.importorskip("polars")
    inputs = _inputs(tmp_path / "in")
    remote = _pipeline(
        tmp_path / "s3.toml",
        inputs,
        s3.url("out"),
        f'partition_by = ["source"]\nstorage_options = {s3.toml()}',
    )
    assert run_etl("run", str(remote)).returncode == 0
    want = sorted(t.strip() for t in set(ARTICLES))

    # Polars, straight from the bucket (its own object-store client)
    frame = pl.scan_parquet(
        f"s3://{s3.bucket}/out/**/*.parquet",
        hive_partitioning=True,
        storage_options={
            "aws_endpoint_url": s3.endpoint,
            "aws_access_key_id": KEY_ID,
            "aws_secret_access_key": SECRET,
            "aws_region": "us-east-1",
            "aws_allow_http": "true",
        },
    ).collect()
    assert sorted(t.strip() for t in frame["text"].to_list()) == want

    # DuckDB: through httpfs when it can be loaded (offline it often cannot), else over
    # the Arrow dataset read through fsspec from the bucket
    con = duckdb.connect()
    con.execute("SET autoinstall_known_extensions = false")  # never fetch one from the net
    try:
        con.execute("LOAD httpfs")
        host = s3.endpoint.removeprefix("http://")
        con.execute(
            f"CREATE SECRET (TYPE s3, KEY_ID '{KEY_ID}', SECRET '{SECRET}', ENDPOINT '{host}', "
            "URL_STYLE 'path', USE_SSL false, REGION 'us-east-1')"
        )
        rows = con.execute(
            f"SELECT text, source FROM read_parquet('s3://{s3.bucket}/out/**/*.parquet', "
            "hive_partitioning = true)"
        ).fetchall()
    except duckdb.Error:
        articles = _read_bucket(s3)  # noqa: F841 (read by DuckDB's replacement scan)
        rows = con.execute("SELECT text, source FROM articles").fetchall()
    assert sorted(r[0].strip() for r in rows) == want
    assert len({r[0] for r in rows}) == len(rows)


def test_a_memory_url_holds_a_dataset(tmp_path):
    import fsspec
    import pyarrow.dataset as pads
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    inputs = _inputs(tmp_path / "in")
    fs = fsspec.filesystem("memory")
    url = f"memory://etl-test-{tmp_path.name}/out"
    remote = _pipeline(tmp_path / "mem.toml", inputs, url)
    local = _pipeline(tmp_path / "local.toml", inputs, str(tmp_path / "local"))
    try:
        done = run_etl("run", str(remote))
        assert done.returncode == 0, done.stderr
        assert run_etl("run", str(local)).returncode == 0
        root = url.removeprefix("memory:/")
        files = sorted(fs.glob(f"{root}/**/*.parquet"))
        got = pads.dataset(files, filesystem=PyFileSystem(FSSpecHandler(fs))).to_table()
        _same_rows(got, read_dataset(tmp_path / "local"))
        assert fs.glob(f"{root}/_etl/runs/*.json") and fs.exists(f"{root}/_etl/inputs.pq")
        again = run_etl("run", str(remote))
        assert again.returncode == 0 and "0 written" in again.stdout
        assert sorted(fs.glob(f"{root}/**/*.parquet")) == files
    finally:
        fs.rm(url.removeprefix("memory:/").split("/")[1], recursive=True)


#: where a crash leaves the object store in each state the protocol has
CRASH_POINTS = [p for p in FAULT_POINTS if p != "before-unlock"]


@pytest.mark.slow
@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_crash_then_a_rerun_equals_one_clean_run(tmp_path, s3, point):
    """Killed at each point of the commit on the object store, then run again: the same
    dataset as one clean run, and no reader ever saw an id twice (nor a staged file)."""
    inputs = _inputs(tmp_path / "in")
    # two files per run (max_rows_per_file), so mid-apply has one in place and one not
    extra = f"max_rows_per_file = 8\nstorage_options = {s3.toml()}"
    remote = _pipeline(tmp_path / "s3.toml", inputs, s3.url("out"), extra)
    local = _pipeline(tmp_path / "local.toml", inputs, str(tmp_path / "local"))
    assert run_etl("run", str(local)).returncode == 0

    crashed = run_etl_process("run", str(remote), env={"ETL_CRASH_AT": point})
    assert crashed.returncode == 77, crashed.stderr
    seen = _read_bucket(s3)
    _no_id_twice(seen)
    if point in ("write", "before-commit-point", "commit-point-tmp"):
        assert seen.num_rows == 0, "nothing is visible before the commit point"

    # the lock of the dead run (a process of this host that is gone) is broken at once
    again = run_etl_process("run", str(remote))
    assert again.returncode == 0, again.stderr
    got = _read_bucket(s3)
    _no_id_twice(got)
    _same_rows(got, read_dataset(tmp_path / "local"))
    fs = s3.fs()
    assert not fs.glob(f"{s3.bucket}/out/_etl/staging/**")
    assert not fs.exists(f"{s3.bucket}/out/_etl/lock")
    # and the inputs memory says it all: one more run reads nothing
    last = run_etl("run", str(remote))
    assert last.returncode == 0 and "0 written" in last.stdout
    assert _read_bucket(s3).num_rows == got.num_rows


@pytest.mark.slow
@pytest.mark.parametrize("point", [None, "before-commit-point", "mid-apply"])
def test_processes_workers_write_straight_into_the_bucket(tmp_path, s3, point):
    """Under ``processes`` each worker stages its files in the bucket itself; the driver
    adopts them (a copy inside the bucket at commit) and the dataset equals a local run,
    also when the driver was killed in its commit and run again."""
    inputs = _inputs(tmp_path / "in")
    executor = '[executor]\nplugin = "processes"\nworkers = 2\nchunk_size = 3\n'
    remote = _pipeline(
        tmp_path / "s3.toml",
        inputs,
        s3.url("out"),
        f"storage_options = {s3.toml()}",
        run=executor,
    )
    local = _pipeline(tmp_path / "local.toml", inputs, str(tmp_path / "local"))
    if point is not None:
        crashed = run_etl_process("run", str(remote), env={"ETL_CRASH_AT": point})
        assert crashed.returncode == 77, crashed.stderr
        _no_id_twice(_read_bucket(s3))
    done = run_etl_process("-v", "run", str(remote))
    assert done.returncode == 0, done.stderr
    assert run_etl("run", str(local)).returncode == 0
    got = _read_bucket(s3)
    _no_id_twice(got)
    _same_rows(got, read_dataset(tmp_path / "local"))
    fs = s3.fs()
    # one file per worker task (5 chunks of 3 inputs): the workers wrote them, not the
    # driver (which would have written one)
    assert len(fs.glob(f"{s3.bucket}/out/**/*.parquet")) == 5
    if point is None:
        assert "0 written" in run_etl_process("run", str(remote)).stdout
    assert not fs.glob(f"{s3.bucket}/out/_etl/staging/**")
    assert SECRET not in _everything_in_the_bucket(s3) + done.stdout + done.stderr


def test_validate_checks_the_bucket(tmp_path, s3):
    inputs = _inputs(tmp_path / "in")
    good = _pipeline(tmp_path / "s3.toml", inputs, s3.url("out"), f"storage_options = {s3.toml()}")
    proc = run_etl("validate", str(good))
    assert proc.returncode == 0, proc.stderr
    assert s3.fs().find(s3.bucket) == [], "validate writes nothing (its probe is removed)"
    missing = _pipeline(
        tmp_path / "nobucket.toml",
        inputs,
        f"s3://no-such-bucket-{s3.bucket}/out",
        f"storage_options = {s3.toml()}",
    )
    for args in (["validate", str(missing)], ["run", "--dry-run", str(missing)]):
        proc = run_etl(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "cannot write the dataset s3://no-such-bucket" in proc.stderr
        assert SECRET not in proc.stderr + proc.stdout


@pytest.mark.slow
def test_dask_workers_write_straight_into_the_bucket(tmp_path, s3):
    """A LocalCluster on 127.0.0.1 (its workers are other processes): the same dataset as
    a local run, written by the workers into the bucket."""
    from tests.helpers.executors import local_dask_cluster

    inputs = _inputs(tmp_path / "in")
    local = _pipeline(tmp_path / "local.toml", inputs, str(tmp_path / "local"))
    assert run_etl("run", str(local)).returncode == 0
    with local_dask_cluster(2) as address:
        executor = f'[executor]\nplugin = "dask"\naddress = "{address}"\nchunk_size = 3\n'
        remote = _pipeline(
            tmp_path / "s3.toml",
            inputs,
            s3.url("out"),
            f"storage_options = {s3.toml()}",
            run=executor,
        )
        done = run_etl_process("run", str(remote))
    assert done.returncode == 0, done.stderr
    got = _read_bucket(s3)
    _no_id_twice(got)
    _same_rows(got, read_dataset(tmp_path / "local"))
    assert len(s3.fs().glob(f"{s3.bucket}/out/**/*.parquet")) == 5  # one per worker task
    assert not s3.fs().glob(f"{s3.bucket}/out/_etl/staging/**")


def _edit(inputs: Path, numbers: range) -> None:
    for n in numbers:
        path = inputs / f"a{n:02d}.txt"
        path.write_text(path.read_text().rstrip() + " It was corrected.\n", encoding="utf-8")


def _one_row_per_uri(table: pa.Table) -> dict[str, str]:
    uris = table.column("uri").to_pylist()
    assert len(set(uris)) == len(uris), "a uri twice"
    return dict(zip(uris, table.column("text").to_pylist(), strict=True))


@pytest.mark.parametrize("point", [None, "mid-apply", "after-commit-point"])
def test_merge_replaces_rows_in_the_bucket(tmp_path, s3, point):
    """``mode = "merge"``: a corrected article's new version replaces its row (the file
    that held it is copied over in place); killed in its commit, a reader still sees one
    row per uri, and a re-run ends like the local run."""
    inputs = _inputs(tmp_path / "in", ARTICLES[:10])
    extra = f'mode = "merge"\nmax_rows_per_file = 4\nstorage_options = {s3.toml()}'
    remote = _pipeline(tmp_path / "s3.toml", inputs, s3.url("out"), extra)
    local = _pipeline(tmp_path / "local.toml", inputs, str(tmp_path / "local"), 'mode = "merge"')
    assert run_etl("run", str(remote)).returncode == 0
    assert run_etl("run", str(local)).returncode == 0
    before = _one_row_per_uri(_read_bucket(s3))
    _edit(inputs, range(1, 8, 2))
    if point is not None:
        crashed = run_etl_process("run", str(remote), env={"ETL_CRASH_AT": point})
        assert crashed.returncode == 77, crashed.stderr
        assert set(_one_row_per_uri(_read_bucket(s3))) == set(before)
    done = run_etl("run", str(remote))
    assert done.returncode == 0, done.stderr
    assert run_etl("run", str(local)).returncode == 0
    got = _read_bucket(s3)
    rows = _one_row_per_uri(got)
    assert sum(text.endswith("corrected.\n") for text in rows.values()) == 4
    _same_rows(got, read_dataset(tmp_path / "local"))


@pytest.mark.slow
def test_a_memory_url_under_processes_is_written_by_the_driver(tmp_path):
    """``memory://`` lives in one process: workers ship their batches to the driver, which
    writes them (worker-written files would land in the workers' memory and be lost)."""
    import fsspec
    import pyarrow.dataset as pads
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    from etl.cli import cli  # noqa: F401 (the run is in this process: memory:// is here)

    inputs = _inputs(tmp_path / "in")
    url = f"memory://etl-proc-{tmp_path.name}/out"
    executor = '[executor]\nplugin = "processes"\nworkers = 2\nchunk_size = 3\n'
    remote = _pipeline(tmp_path / "mem.toml", inputs, url, run=executor)
    local = _pipeline(tmp_path / "local.toml", inputs, str(tmp_path / "local"))
    fs = fsspec.filesystem("memory")
    root = url.removeprefix("memory:/")
    try:
        done = run_etl("run", str(remote))
        assert done.returncode == 0, done.stderr
        assert run_etl("run", str(local)).returncode == 0
        files = sorted(fs.glob(f"{root}/**/*.parquet"))
        got = pads.dataset(files, filesystem=PyFileSystem(FSSpecHandler(fs))).to_table()
        _same_rows(got, read_dataset(tmp_path / "local"))
    finally:
        fs.rm(root.split("/")[1], recursive=True)


@pytest.mark.slow
def test_a_checkpointed_run_killed_in_its_second_checkpoint_carries_on(tmp_path, s3):
    """``[run] checkpoint``: each checkpoint is a commit of its own in the bucket; killed in
    the second one's commit, the re-run finishes it and reads only what is left."""
    inputs = _inputs(tmp_path / "in")
    remote = _pipeline(
        tmp_path / "s3.toml",
        inputs,
        s3.url("out"),
        f"storage_options = {s3.toml()}",
        run="[run]\ncheckpoint = 4\n",
    )
    local = _pipeline(tmp_path / "local.toml", inputs, str(tmp_path / "local"))
    assert run_etl("run", str(local)).returncode == 0
    crashed = run_etl_process("run", str(remote), env={"ETL_CRASH_AT": "mid-apply@2"})
    assert crashed.returncode == 77, crashed.stderr
    _no_id_twice(_read_bucket(s3))
    assert len(s3.fs().glob(f"{s3.bucket}/out/_etl/runs/*.json")) == 1
    done = run_etl_process("run", str(remote))
    assert done.returncode == 0, done.stderr
    assert "8 skipped as unchanged" in done.stdout
    got = _read_bucket(s3)
    _no_id_twice(got)
    _same_rows(got, read_dataset(tmp_path / "local"))
