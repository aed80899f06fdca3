"""The `etl` command end to end: runs, readers, re-runs, errors and exit codes."""

import json
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow.dataset as pads
import pytest

from tests.helpers import ROOT, read_dataset, read_rejects, run_etl, write_pipeline

SEED_PIPELINE = ROOT / "examples" / "seed.toml"


def seed_run(tmp_path: Path, *extra: str):
    return run_etl("run", str(SEED_PIPELINE), "--set", f"sink.path={tmp_path / 'seed'}", *extra)


def test_seed_pipeline_summary_and_rows(tmp_path):
    proc = seed_run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "1 read, 1 written, 0 duplicates, 0 read again" in proc.stdout
    assert "0 rejected" in proc.stdout
    assert str(tmp_path / "seed") in proc.stdout
    table = read_dataset(tmp_path / "seed")
    assert table.num_rows == 1
    assert table.column("publisher").to_pylist() == ["Global Times"]


def test_rerun_adds_nothing_and_full_rerun_skips_as_duplicates(tmp_path):
    assert seed_run(tmp_path).returncode == 0
    again = seed_run(tmp_path)
    assert again.returncode == 0
    assert "0 read, 1 skipped as unchanged" in again.stdout
    full = seed_run(tmp_path, "--full")
    assert full.returncode == 0
    # read again from an input ingested before: not a duplicate of the corpus
    assert "1 read, 0 written, 0 duplicates, 1 read again (already in the dataset)" in full.stdout
    assert read_dataset(tmp_path / "seed").num_rows == 1
    runs = sorted((tmp_path / "seed" / "_etl" / "runs").glob("*.json"))
    assert len(runs) == 3


def test_readers_see_exactly_the_committed_articles(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(5):
        (folder / f"{i}.txt").write_text(f"Article number {i} says something new.\n(Xinhua)\n")
    (folder / "empty.txt").write_text("")
    pipeline = write_pipeline(
        tmp_path / "p.toml",
        '[[sources]]\nplugin = "text"\npaths = ["in"]\n'
        '[sink]\nplugin = "parquet"\npath = "out"\npartition_by = ["publisher"]\n',
    )
    assert run_etl("run", str(pipeline)).returncode == 0
    # leave a staged file of a crashed run behind: readers must not see it either
    staged = tmp_path / "out" / "_etl" / "staging" / "dead-run" / "data"
    staged.mkdir(parents=True)
    (staged / "00001.staged").write_bytes(b"PAR1garbage")
    out = tmp_path / "out"
    glob = f"{out}/**/*.parquet"
    ids = {r["id"] for r in read_dataset(out).to_pylist()}
    assert len(ids) == 5
    assert {
        r[0]
        for r in duckdb.sql(
            f"select id from read_parquet('{glob}', hive_partitioning=true)"
        ).fetchall()
    } == ids
    duck_pub = duckdb.sql(
        f"select distinct publisher from read_parquet('{glob}', hive_partitioning=true)"
    ).fetchall()
    assert duck_pub == [("Xinhua",)]
    assert set(pl.scan_parquet(glob, hive_partitioning=True).collect()["id"]) == ids
    assert set(pd.read_parquet(out)["id"]) == ids
    assert set(pads.dataset(out, partitioning="hive").to_table()["id"].to_pylist()) == ids
    # the rejects table is readable on its own
    rejects = duckdb.sql(
        f"select reason, input from read_parquet('{out}/_etl/rejects/*.rejects.pq')"
    ).fetchall()
    assert rejects == [("empty file", str(folder / "empty.txt"))]


def test_hostile_partition_values_stay_inside_the_dataset(tmp_path):
    names = ["../../escape", "/etc/passwd", "a/b", "..", "x" * 600, "nul\x00byte", "ok"]
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(len(names)):
        (folder / f"{i}.txt").write_text(f"Text number {i}.\n")
    lines = "".join(
        f'[[sources]]\nplugin = "text"\npaths = ["in/{i}.txt"]\npublisher = {json.dumps(n)}\n'
        for i, n in enumerate(names)
    )
    pipeline = write_pipeline(
        tmp_path / "p.toml",
        lines + '[sink]\nplugin = "parquet"\npath = "out/ds"\npartition_by = ["publisher"]\n',
    )
    proc = run_etl("run", str(pipeline))
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out" / "ds"
    for path in tmp_path.rglob("*.parquet"):
        assert out in path.parents, path
    assert sorted(tmp_path.iterdir()) == sorted(
        [tmp_path / "in", tmp_path / "out", tmp_path / "p.toml"]
    )
    got = pads.dataset(out, partitioning="hive").to_table().column("publisher").to_pylist()
    # values come back as written, but for the overlong one, cut and suffixed with its hash
    long_value = next(v for v in got if v.startswith("xxx"))
    assert sorted(v for v in got if v != long_value) == sorted(n for n in names if n != "x" * 600)
    assert len(long_value) <= 200 and "~" in long_value


def test_on_error_fail_stops_with_exit_1_and_commits_nothing(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("Good text here.\n")
    (tmp_path / "in" / "b.txt").write_text("")
    pipeline = write_pipeline(
        tmp_path / "p.toml",
        '[run]\non_error = "fail"\n[[sources]]\nplugin = "text"\npaths = ["in"]\n'
        '[sink]\nplugin = "parquet"\npath = "out"\n',
    )
    proc = run_etl("run", str(pipeline))
    assert proc.returncode == 1
    assert "rejected" in proc.stderr and "b.txt" in proc.stderr and "empty file" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert read_dataset(tmp_path / "out").num_rows == 0
    assert not list((tmp_path / "out").rglob("*.parquet"))


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[[sources]]\nplugin = "txt"\npaths = ["x"]\n[sink]\nplugin = "parquet"\npath = "o"\n',
            "no source plugin named 'txt' ([[sources]] #1 in p.toml). Installed:",
        ),
        (
            '[[sources]]\nplugin = "text"\npaths = ["x"]\n[sink]\nplugin = "parquet"\npath = "o"\ncompresion = "zstd"\n',
            "plugin 'parquet' ([sink] in p.toml): unknown option 'compresion'",
        ),
        (
            '[[sources]]\nplugin = "text"\npaths = ["nothing-here/*.txt"]\n[sink]\nplugin = "parquet"\npath = "o"\n',
            "plugin 'text' ([[sources]] #1 in p.toml): paths: nothing matches",
        ),
        (
            '[[sources]]\nplugin = "text"\npaths = 3\n[sink]\nplugin = "parquet"\npath = "o"\n',
            "option 'paths' must be paths",
        ),
        (
            '[[sources]]\nplugin = "text"\n[sink]\nplugin = "parquet"\npath = "o"\n',
            "missing required option 'paths'",
        ),
        ("[[sources]\n", "not valid TOML"),
    ],
)
@pytest.mark.parametrize("command", ["run", "validate"])
def test_config_errors_exit_2_with_one_clear_message(tmp_path, toml, message, command):
    pipeline = write_pipeline(tmp_path / "p.toml", toml)
    proc = run_etl(command, str(pipeline))
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert proc.stderr.startswith("etl: ")
    assert "Traceback" not in proc.stderr
    verbose = run_etl(command, str(pipeline), "-v")
    assert verbose.returncode == 2
    assert "Traceback" in verbose.stderr


def test_missing_pipeline_file_and_env_var(tmp_path):
    proc = run_etl("run", str(tmp_path / "nope.toml"))
    assert proc.returncode == 2 and "no pipeline file" in proc.stderr
    pipeline = write_pipeline(
        tmp_path / "p.toml",
        '[[sources]]\nplugin = "text"\npaths = ["${ETL_TEST_UNSET_VAR}"]\n[sink]\nplugin = "parquet"\npath = "o"\n',
    )
    proc = run_etl("validate", str(pipeline))
    assert proc.returncode == 2 and "ETL_TEST_UNSET_VAR" in proc.stderr


def test_validate_dry_run_plugins_and_inspect(tmp_path):
    ok = run_etl("validate", str(SEED_PIPELINE))
    assert ok.returncode == 0 and "ok" in ok.stdout and "inputs    1" in ok.stdout
    dry = run_etl("run", str(SEED_PIPELINE), "--dry-run", "--set", f"sink.path={tmp_path / 'x'}")
    assert dry.returncode == 0 and "000_c9a46c306fd8d2c1.txt" in dry.stdout
    assert not (tmp_path / "x").exists()
    listed = json.loads(run_etl("plugins", "--json").stdout)
    text = next(p for p in listed if p["name"] == "text")
    assert text["kind"] == "source" and text["supplier"] == "etl (builtin)" and text["version"]
    assert {"paths", "encoding", "publisher", "published_at"} <= {
        o["name"] for o in text["options"]
    }
    assert seed_run(tmp_path).returncode == 0
    info = json.loads(run_etl("inspect", str(tmp_path / "seed"), "--json").stdout)
    assert info["rows"] == 1 and info["files"] == 1 and len(info["runs"]) == 1
    assert {"name": "word_count", "type": "int64"} in info["schema"]
    assert info["sample"][0]["publisher"] == "Global Times"
    human = run_etl("inspect", str(tmp_path / "seed"))
    assert "rows 1" in human.stdout


def test_manifest_records_run(tmp_path, monkeypatch):
    assert seed_run(tmp_path).returncode == 0
    (manifest_path,) = (tmp_path / "seed" / "_etl" / "runs").glob("*.json")
    manifest = json.loads(manifest_path.read_text())
    assert manifest["summary"]["written"] == 1
    assert manifest["pipeline_text"] == SEED_PIPELINE.read_text()
    assert {p["name"] for p in manifest["plugins"]} >= {"text", "parquet", "local"}
    assert manifest["files"] and all(f.endswith(".parquet") for f in manifest["files"])
    # the per-input account is a table beside the manifest, which names it
    inputs_file = manifest_path.parent / manifest["summary"]["inputs_file"]
    assert "per_input" not in manifest["summary"]
    (entry,) = duckdb.sql(
        f"select input, written, read from read_parquet('{inputs_file}')"
    ).fetchall()
    assert entry[0].endswith(".txt") and entry[1:] == (1, 1)


def test_secrets_from_env_are_redacted_in_manifest(tmp_path):
    (tmp_path / "a.txt").write_text("Secret publisher text.\n")
    pipeline = write_pipeline(
        tmp_path / "p.toml",
        '[[sources]]\nplugin = "text"\npaths = ["a.txt"]\npublisher = "${ETL_TEST_TOKEN}"\n'
        '[sink]\nplugin = "parquet"\npath = "out"\n',
    )
    proc = run_etl("run", str(pipeline), "-v", env={"ETL_TEST_TOKEN": "tok-s3cr3t"})
    assert proc.returncode == 0, proc.stderr
    manifest = next((tmp_path / "out" / "_etl" / "runs").glob("*.json")).read_text()
    assert "tok-s3cr3t" not in manifest and "***" in manifest
    assert "tok-s3cr3t" not in proc.stderr


def test_local_plugin_file_in_a_pipeline(tmp_path):
    (tmp_path / "tagger.py").write_text(
        "import pyarrow as pa\n"
        "from etl import Option, Transform, hookimpl\n"
        "class Tag(Transform):\n"
        "    '''Sets language to a constant.'''\n"
        "    name = 'tag'\n"
        "    options = (Option('value', 'str', 'xx', help='the language'),)\n"
        "    def process(self, batch, ctx):\n"
        "        i = batch.schema.get_field_index('language')\n"
        "        return batch.set_column(i, 'language', pa.array([self.opts.value] * batch.num_rows))\n"
        "@hookimpl\n"
        "def etl_register_plugins(register):\n"
        "    register(Tag)\n"
    )
    (tmp_path / "a.txt").write_text("Some article text.\n")
    pipeline = write_pipeline(
        tmp_path / "p.toml",
        'plugins = ["tagger.py"]\n[[sources]]\nplugin = "text"\npaths = ["a.txt"]\n'
        '[[transforms]]\nplugin = "tag"\nvalue = "en"\n[sink]\nplugin = "parquet"\npath = "out"\n',
    )
    proc = run_etl("run", str(pipeline))
    assert proc.returncode == 0, proc.stderr
    assert read_dataset(tmp_path / "out").column("language").to_pylist() == ["en"]
    validate = run_etl("validate", str(pipeline))
    assert "tagger.py" in validate.stdout


def test_sink_modes(tmp_path):
    (tmp_path / "a.txt").write_text("First article.\n")
    base = '[[sources]]\nplugin = "text"\npaths = ["a.txt"]\n[sink]\nplugin = "parquet"\npath = "out"\n'
    pipeline = write_pipeline(tmp_path / "p.toml", base)
    assert run_etl("run", str(pipeline)).returncode == 0
    err = run_etl("run", str(pipeline), "--set", "sink.mode=error", "--full")
    assert err.returncode == 2 and "already exists" in err.stderr
    (tmp_path / "a.txt").write_text("Replaced article.\n")
    over = run_etl("run", str(pipeline), "--set", "sink.mode=overwrite")
    assert over.returncode == 0, over.stderr
    assert read_dataset(tmp_path / "out").column("text").to_pylist() == ["Replaced article.\n"]
    assert len(list((tmp_path / "out").glob("*.parquet"))) == 1
    assert read_rejects(tmp_path / "out").num_rows == 0
