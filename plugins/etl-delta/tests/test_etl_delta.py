"""The `delta` sink through the real CLI, read back by deltalake, Polars and DuckDB."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from etl.testing import run_cli

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples" / "analytics"


etl = run_cli  # the real command, in a process of its own


def run_ok(pipeline: str, table: Path, *sets: str) -> str:
    args = ["run", str(EXAMPLES / pipeline), "--set", "sink.plugin=delta"]
    args += ["--set", f"sink.path={table}"]
    for s in sets:
        args += ["--set", s]
    proc = etl(*args)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc.stdout


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    """Three runs: 1200 articles, then 400 more with two new columns, then run 1 again."""
    path = tmp_path_factory.mktemp("delta") / "news"
    part = 'sink.partition_by=["language"]'
    run_ok("news.toml", path, part, "sources.1.count=1200")
    run_ok("news_enriched.toml", path, part, "sources.1.count=400")
    out = run_ok("news.toml", path, part, "sources.1.count=1200")
    assert ", 0 written," in out  # every id is already in the table
    return path


def manifests(path: Path) -> list[dict]:
    # run ids sort to the second only: two fast runs in one second are ordered by finish time
    found = [json.loads(p.read_text()) for p in (path / "_etl" / "runs").glob("*.json")]
    return sorted(found, key=lambda m: m["finished_at"])


def test_commits_carry_run_id_and_counts(table):
    import etl_delta
    from deltalake import DeltaTable

    dt = DeltaTable(str(table))
    assert dt.version() == 2  # one Delta commit per run
    commits = etl_delta.commits(table)
    runs = manifests(table)
    assert [c["etl.run_id"] for c in commits] == [m["run_id"] for m in runs]
    assert [int(c["etl.written"]) for c in commits] == [m["summary"]["written"] for m in runs]
    assert [c["etl.schema_change"] for c in commits] == ["created", "added", ""]
    assert int(commits[2]["etl.duplicates"]) == runs[0]["summary"]["written"] + int(
        commits[0]["etl.duplicates"]
    )
    assert [m["delta_version"] for m in runs] == [0, 1, 2]
    assert dt.metadata().partition_columns == ["language"]


def test_deltalake_reads_grown_table_with_exact_dedup(table):
    from deltalake import DeltaTable

    t = DeltaTable(str(table)).to_pyarrow_table()
    written = [m["summary"]["written"] for m in manifests(table)]
    assert t.num_rows == sum(written) and written[2] == 0
    ids = t.column("id").to_pylist()
    assert len(set(ids)) == len(ids)
    # the columns came with run 2; run 1's rows read as null
    assert t.num_rows - t.column("sentences").null_count == written[1]
    assert set(t.column("language").to_pylist()) == {"en", "fr", "es"}


def test_polars_scan_delta(table):
    import polars as pl

    df = (
        pl.scan_delta(str(table))
        .group_by("language")
        .agg(pl.len().alias("n"), pl.col("length_bucket").count().alias("bucketed"))
        .collect()
    )
    written = [m["summary"]["written"] for m in manifests(table)]
    assert df["n"].sum() == sum(written)
    assert df["bucketed"].sum() == written[1]


def test_duckdb_reads_the_tables_files(table):
    """DuckDB without the delta extension: the current files that the Delta log lists."""
    import duckdb
    from deltalake import DeltaTable

    files = DeltaTable(str(table)).file_uris()
    rows, langs = duckdb.sql(
        f"SELECT count(*), count(DISTINCT language) FROM read_parquet({files!r}, "
        "union_by_name = true, hive_partitioning = true)"
    ).fetchall()[0]
    assert rows == sum(m["summary"]["written"] for m in manifests(table)) and langs == 3


def test_duckdb_delta_extension(table):
    import duckdb

    con = duckdb.connect()
    # never download: only an extension already installed on this machine may load
    con.sql("SET autoinstall_known_extensions = false")
    con.sql("SET autoload_known_extensions = false")
    installed = con.sql(
        "SELECT installed FROM duckdb_extensions() WHERE extension_name = 'delta'"
    ).fetchall()
    if not installed or not installed[0][0]:
        pytest.skip(
            f"DuckDB {duckdb.__version__}'s delta extension is not installed and cannot be "
            "downloaded here (no network but package registries; no PyPI build of it matches "
            "this DuckDB version)"
        )
    con.sql("LOAD delta")
    rows = con.sql(f"SELECT count(*) FROM delta_scan('{table}')").fetchall()[0][0]
    assert rows == sum(m["summary"]["written"] for m in manifests(table))


def test_rejects_beside_the_table(table):
    runs = manifests(table)
    found = sorted(p.name.split(".")[0] for p in (table / "_etl" / "rejects").glob("*.rejects.pq"))
    assert found == sorted(m["run_id"] for m in runs)
    rejects = [table / "_etl" / "rejects" / f"{m['run_id']}.rejects.pq" for m in runs]
    for path, m in zip(rejects, runs, strict=True):
        t = pq.read_table(path)
        assert t.num_rows == m["summary"]["rejected"] > 0
        assert set(t.column("reason").to_pylist()) == {"empty text"}
    assert not any((table / "_etl" / "staging").glob("*"))


def test_overwrite_replaces_table_and_refused_type_change(table, tmp_path):
    from deltalake import DeltaTable

    bad = tmp_path / "bad.toml"
    bad.write_text(
        f'plugins = ["{EXAMPLES / "news_plugins.py"}"]\n'
        '[[sources]]\nplugin = "synthetic_news"\ncount = 30\nseed = 5\n'
        '[[transforms]]\nplugin = "constant_column"\ncolumn = "length_bucket"\n'
        'type = "int64"\nvalue = 1\n'
        f'[sink]\nplugin = "delta"\npath = "{table}"\npartition_by = ["language"]\n'
    )
    before = DeltaTable(str(table)).version()
    proc = etl("run", str(bad))
    assert proc.returncode == 2
    assert "column 'length_bucket' is string in the dataset" in proc.stderr
    assert 'mode = "overwrite"' in proc.stderr
    assert DeltaTable(str(table)).version() == before

    other = tmp_path / "copy"
    run_ok("news.toml", other, "sources.1.count=100")
    proc = etl(
        "run",
        str(bad),
        "--set",
        f"sink.path={other}",
        "--set",
        "sink.mode=overwrite",
        "--set",
        "sink.partition_by=[]",
    )
    assert proc.returncode == 0, proc.stderr
    t = DeltaTable(str(other)).to_pyarrow_table()
    assert t.num_rows == 30 and set(t.column("length_bucket").to_pylist()) == {1}


def test_mode_error_and_missing_partition_column(table, tmp_path):
    proc = etl(
        "run",
        str(EXAMPLES / "news.toml"),
        "--set",
        "sink.plugin=delta",
        "--set",
        f"sink.path={table}",
        "--set",
        "sink.mode=error",
    )
    assert proc.returncode == 2 and "already exists and mode is 'error'" in proc.stderr
    proc = etl(
        "run",
        str(EXAMPLES / "news.toml"),
        "--set",
        "sink.plugin=delta",
        "--set",
        f"sink.path={tmp_path / 't'}",
        "--set",
        'sink.partition_by=["nope"]',
    )
    assert proc.returncode == 2 and "no column 'nope'" in proc.stderr


def test_processes_executor_writes_the_same_table(tmp_path):
    """Workers stage files, the driver adopts them in unit order: same rows as one process."""
    from deltalake import DeltaTable

    local, parallel = tmp_path / "local", tmp_path / "parallel"
    for path, extra in ((local, ()), (parallel, ("executor.plugin=processes",))):
        # 6 units of 200; duplicates repeat a text 7 articles back, across unit borders too
        run_ok("news.toml", path, "sources.1.count=1200", "sources.1.per_unit=200", *extra)
        run_ok("news.toml", path, "sources.1.count=1300", "sources.1.per_unit=200", *extra)
    a = DeltaTable(str(local)).to_pyarrow_table(columns=["id", "run_id"])
    b = DeltaTable(str(parallel)).to_pyarrow_table(columns=["id", "run_id"])
    assert sorted(a.column("id").to_pylist()) == sorted(b.column("id").to_pylist())
    counts = [[m["summary"][k] for k in ("written", "duplicates")] for m in manifests(local)]
    assert [
        [m["summary"][k] for k in ("written", "duplicates")] for m in manifests(parallel)
    ] == counts
    # run 2 reads all 1300 records again: run 1's 1188 articles (1200 less 12 rejected) are
    # duplicates; of records 1200-1299, 1 is rejected and 3 repeat an earlier text; 96 are new
    assert counts[1] == [96, 1188 + 3]


def test_inspect_and_report_read_the_table(table, tmp_path):
    """etl inspect/report read the table's current version, with the schema history."""
    proc = etl("inspect", str(table), "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    total = sum(m["summary"]["written"] for m in manifests(table))
    assert info["rows"] == total and info["rejects"] > 0
    assert [h["change"] for h in info["schema_history"]] == ["created", "added"]
    assert {"language", "sentences"} <= {f["name"] for f in info["schema"]}
    pytest.importorskip("matplotlib", reason="etl report needs the report extra (matplotlib)")
    out = tmp_path / "delta.html"
    proc = etl("report", str(table), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"{total:,} articles" in out.read_text(encoding="utf-8")


def test_the_dask_preflight_checks_the_folder_workers_stage_in(tmp_path):
    """WorkerFiles.check_worker: a worker that does not see the run's staging folder (the
    driver made it) is told which folder; one that sees it can write there."""
    from datetime import UTC, datetime

    from etl_delta import DeltaSink

    from etl.context import RunInfo
    from etl.errors import RunError

    run = RunInfo(run_id="20260101T000000Z-00000000", started_at=datetime.now(UTC))
    sink = DeltaSink({"path": str(tmp_path / "table")}, section="[sink]")
    staging = tmp_path / "table" / "_etl" / "staging" / run.run_id
    with pytest.raises(RunError, match=f"cannot see the run's staging folder {staging}"):
        sink.check_worker(run)
    staging.mkdir(parents=True)
    sink.check_worker(run)
    assert [p.name for p in staging.iterdir()] == ["workers"]
