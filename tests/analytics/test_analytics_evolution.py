"""Schema evolution: columns grow across runs, unsafe type changes are refused up front."""

from __future__ import annotations

import json
import shutil

import pyarrow as pa
import pytest

from etl.evolution import plan_schema, schema_history, unified_schema, wider_type
from tests.helpers import run_etl
from tests.helpers.analytics import EXAMPLES, etl_ok, written


def snapshot(root):
    """Every file under the dataset (metadata included) with its bytes."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "lock"
    }


def test_grown_dataset_records_schema_and_history(datasets):
    root = datasets["news"]
    meta = json.loads((root / "_etl" / "schema.json").read_text())
    names = [c["name"] for c in meta["schema"]]
    assert names[-2:] == ["sentences", "length_bucket"]
    changes = [h["change"] for h in meta["history"]]
    assert changes == ["created", "added"]
    assert meta["history"][1]["added"] == ["sentences", "length_bucket"]
    runs = sorted(p.stem for p in (root / "_etl" / "runs").glob("*.json"))
    assert [h["run_id"] for h in meta["history"]] == runs
    schema = unified_schema(root)
    assert schema.field("sentences").type == pa.int64() and schema.field("sentences").nullable


def test_inspect_shows_grown_schema_and_history(datasets):
    out = etl_ok("inspect", str(datasets["news"]))
    assert "sentences: int64  (added by run " in out
    assert "schema history:" in out and "added  +sentences, +length_bucket" in out
    info = json.loads(etl_ok("inspect", str(datasets["parted"]), "--json"))
    names = [f["name"] for f in info["schema"]]
    assert "language" in names and "length_bucket" in names
    assert info["rows"] == sum(written(datasets["parted"]))
    assert [h["change"] for h in info["schema_history"]] == ["created", "added"]


def test_unsafe_type_change_is_refused_before_anything_is_written(datasets, tmp_path):
    root = tmp_path / "news"
    shutil.copytree(datasets["news"], root)
    before = snapshot(root)
    pipeline = tmp_path / "bad.toml"
    pipeline.write_text(
        f'plugins = ["{EXAMPLES / "news_plugins.py"}"]\n'
        '[[sources]]\nplugin = "synthetic_news"\ncount = 50\nseed = 99\n'
        '[[transforms]]\nplugin = "constant_column"\ncolumn = "length_bucket"\n'
        'type = "int64"\nvalue = 3\n'
        f'[sink]\nplugin = "parquet"\npath = "{root}"\n'
    )
    proc = run_etl("run", str(pipeline))
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr
    assert "column 'length_bucket' is string in the dataset" in err
    assert "but int64 in this run" in err
    assert 'mode = "overwrite"' in err and "new dataset" in err
    assert snapshot(root) == before
    assert not any((root / "_etl" / "staging").glob("*"))

    # the way out works: overwrite replaces data and schema, and history says so
    proc = run_etl("run", str(pipeline), "--set", "sink.mode=overwrite")
    assert proc.returncode == 0, proc.stderr
    assert unified_schema(root).field("length_bucket").type == pa.int64()
    assert [h["change"] for h in schema_history(root)] == ["created", "added", "overwrite"]
    assert "sentences" not in unified_schema(root).names


def test_safe_widening_and_columns_a_run_does_not_write(tmp_path):
    old = pa.schema(
        [pa.field("id", pa.string(), nullable=False), ("n", pa.int32()), ("t", pa.string())]
    )
    root = tmp_path / "ds"
    (root / "_etl").mkdir(parents=True)
    from etl.evolution import schema_document

    doc = schema_document(plan_schema(root, old, mode="append"), "r1")
    (root / "_etl" / "schema.json").write_text(json.dumps(doc))
    new = pa.schema(
        [pa.field("id", pa.string(), nullable=False), ("n", pa.int64()), ("x", pa.bool_())]
    )
    plan = plan_schema(root, new, mode="append")
    assert plan.change == "added+widened"
    assert plan.schema.names == ["id", "n", "t", "x"]
    assert plan.schema.field("n").type == pa.int64()
    assert plan.widened == [{"name": "n", "from": "int32", "to": "int64"}]


@pytest.mark.parametrize(
    "old,new,expected",
    [
        (pa.int32(), pa.int64(), pa.int64()),
        (pa.int64(), pa.int32(), pa.int64()),
        (pa.float32(), pa.float64(), pa.float64()),
        (pa.int32(), pa.float64(), None),
        (pa.string(), pa.large_string(), pa.large_string()),
        (pa.null(), pa.string(), pa.string()),
        (pa.string(), pa.int64(), None),
        (pa.int64(), pa.string(), None),
        (pa.int64(), pa.float64(), None),  # int64 -> float64 loses precision
        (pa.timestamp("us", "UTC"), pa.timestamp("ns", "UTC"), None),
        (pa.list_(pa.string()), pa.list_(pa.int64()), None),
    ],
)
def test_wider_type(old, new, expected):
    got = wider_type(old, new)
    assert got == expected if expected is not None else got is None


def test_dataset_without_schema_file_still_grows(datasets, tmp_path):
    """A dataset written before schema.json existed: its files' schemas are unified."""
    root = tmp_path / "seed"
    shutil.copytree(datasets["seed"], root)
    (root / "_etl" / "schema.json").unlink()
    assert "word_count" in unified_schema(root).names
    etl_ok(
        "run",
        str(EXAMPLES / "news_enriched.toml"),
        "--set",
        f"sink.path={root}",
        "--set",
        "sources.1.count=30",
    )
    assert [h["change"] for h in schema_history(root)] == ["added"]
    assert "length_bucket" in unified_schema(root).names


def test_schema_file_is_part_of_the_commit_plan(datasets, tmp_path):
    """schema.json is renamed into place by the same COMMIT.json as the data (roll forward)."""
    from etl.dataset import Dataset
    from etl.evolution import stage_schema

    root = tmp_path / "news"
    shutil.copytree(datasets["news"], root)
    staging = Dataset(root).staging("r-test")
    staging.mkdir(parents=True)
    plan = plan_schema(
        root, unified_schema(root).append(pa.field("extra", pa.string())), mode="append"
    )
    renames = stage_schema(root, staging, plan, "r-test")
    assert renames == [["_etl/staging/r-test/schema.json.staged", "_etl/schema.json"]]
    # a commit point written, then a crash: recovery applies the schema with the data
    manifest = {"run_id": "r-test", "summary": {"written": 0}}
    (staging / "COMMIT.json").write_text(
        json.dumps({"renames": renames, "deletes": [], "rejects": None, "manifest": manifest})
    )
    Dataset(root).recover()
    assert "extra" in unified_schema(root).names
    assert schema_history(root)[-1]["added"] == ["extra"]


def test_widened_column_reads_in_every_reader(tmp_path):
    """int32 in run 1, int64 in run 2: the schema widens and every reader gets all values."""
    from tests.helpers.analytics import READERS

    root = tmp_path / "wide"
    for seed, kind in ((1, "int32"), (2, "int64")):
        pipeline = tmp_path / f"{kind}.toml"
        pipeline.write_text(
            f'plugins = ["{EXAMPLES / "news_plugins.py"}"]\n'
            f'[[sources]]\nplugin = "synthetic_news"\ncount = 60\nseed = {seed}\n'
            f'[[transforms]]\nplugin = "constant_column"\ncolumn = "n"\ntype = "{kind}"\n'
            f'value = {seed}\n[sink]\nplugin = "parquet"\npath = "{root}"\n'
        )
        etl_ok("run", str(pipeline))
    history = schema_history(root)
    assert history[-1]["widened"] == [{"name": "n", "from": "int32", "to": "int64"}]
    assert unified_schema(root).field("n").type == pa.int64()
    total = sum(written(root))
    for name, reader in READERS.items():
        rows, ids, nonnull = reader(root, "n")
        assert (rows, len(ids), nonnull) == (total, total, total), name
