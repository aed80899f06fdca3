"""Pipeline mistakes reported together, blamed on the right place; `etl config`; validate --json."""

from __future__ import annotations

import json
import tomllib

from tests.helpers import run_etl, write_pipeline

GOOD = '[[sources]]\nplugin = "text"\npaths = ["in"]\n[sink]\nplugin = "parquet"\npath = "out"\n'


def inputs(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("An article with some words in it.\n")


def test_every_mistake_is_reported_at_once_naming_file_table_and_key(tmp_path):
    inputs(tmp_path)
    pipeline = write_pipeline(
        tmp_path / "bad.toml",
        '[runn]\nbatch_size = 10\n[[sources]]\nplugin = "text"\npaths = ["in"]\n'
        'encodng = "utf-8"\n[sink]\nplugin = "parquet"\npath = "out"\n'
        'partiton_by = ["publisher"]\n',
    )
    for command in ("run", "validate"):
        proc = run_etl(command, str(pipeline))
        assert proc.returncode == 2, proc.stderr
        err = proc.stderr
        assert err.startswith("etl: 3 problems:"), err
        assert "1. bad.toml: unknown top-level key 'runn'" in err and "did you mean 'run'?" in err
        assert "2. plugin 'text' ([[sources]] #1 in bad.toml): unknown option 'encodng'" in err
        assert "3. plugin 'parquet' ([sink] in bad.toml): unknown option 'partiton_by'" in err
        assert "did you mean 'partition_by'?" in err
    assert not (tmp_path / "out").exists()


def test_a_long_list_of_mistakes_is_cut(tmp_path):
    keys = "".join(f"wrong{i} = 1\n" for i in range(30))
    pipeline = write_pipeline(
        tmp_path / "p.toml", GOOD.replace('path = "out"\n', f'path = "out"\n{keys}')
    )
    proc = run_etl("validate", str(pipeline))
    assert proc.returncode == 2
    assert "30 problems" in proc.stderr and "20. " in proc.stderr and "21. " not in proc.stderr
    assert "... and 10 more" in proc.stderr


def test_a_mistake_from_set_is_blamed_on_the_set(tmp_path):
    inputs(tmp_path)
    pipeline = write_pipeline(tmp_path / "p.toml", GOOD)
    proc = run_etl("validate", str(pipeline), "--set", "sink.pth=x", "--set", "run.batchsize=3")
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if "pth" in line or "batchsize" in line]
    assert any("(from --set sink.pth=x)" in x or "from --set sink.pth=x" in x for x in lines)
    assert any(x.strip().startswith("1. --set run.batchsize=3:") for x in lines), lines
    assert all("in p.toml" not in x for x in lines), lines


def test_did_you_mean_for_plugin_names(tmp_path):
    inputs(tmp_path)
    pipeline = write_pipeline(tmp_path / "p.toml", GOOD.replace('"text"', '"txt"'))
    proc = run_etl("validate", str(pipeline))
    assert proc.returncode == 2 and "no source plugin named 'txt'" in proc.stderr
    assert "did you mean 'text'?" in proc.stderr
    wrong_kind = run_etl("validate", str(pipeline), "--set", "sources.1.plugin=parquet")
    assert "'parquet' is a sink plugin" in wrong_kind.stderr
    assert "from --set sources.1.plugin=parquet" in wrong_kind.stderr


def test_environment_defaults_and_required_variables(tmp_path):
    inputs(tmp_path)
    text = GOOD.replace('path = "out"', 'path = "${ETL_T_OUT:-lake/x}"')
    pipeline = write_pipeline(tmp_path / "p.toml", text)
    unset = run_etl("config", str(pipeline), "--json", env={"ETL_T_OUT": None})
    assert unset.returncode == 0, unset.stderr
    assert json.loads(unset.stdout)["sink"]["path"] == str(tmp_path / "lake" / "x")
    empty = run_etl("config", str(pipeline), "--json", env={"ETL_T_OUT": ""})
    assert json.loads(empty.stdout)["sink"]["path"] == str(tmp_path / "lake" / "x")
    given = run_etl("config", str(pipeline), "--json", env={"ETL_T_OUT": str(tmp_path / "y")})
    assert json.loads(given.stdout)["sink"]["path"] == "***"  # from the environment: redacted
    required = write_pipeline(
        tmp_path / "r.toml",
        GOOD.replace('path = "out"', 'path = "${ETL_T_OUT:?the dataset folder}"'),
    )
    proc = run_etl("validate", str(required), env={"ETL_T_OUT": None})
    assert proc.returncode == 2
    assert "sink.path` uses ${ETL_T_OUT}" in proc.stderr and ": the dataset folder" in proc.stderr


def test_config_prints_the_resolved_pipeline_which_runs_as_it_is(tmp_path):
    inputs(tmp_path)
    text = GOOD.replace('paths = ["in"]', 'paths = ["in"]\npublisher = "${ETL_T_PUB}"')
    pipeline = write_pipeline(tmp_path / "p.toml", text)
    env = {"ETL_T_PUB": "Secret Gazette"}
    proc = run_etl("config", str(pipeline), "--set", "run.batch_size=7", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "Secret Gazette" not in proc.stdout and 'publisher = "***"' in proc.stdout
    resolved = tomllib.loads(proc.stdout)
    assert resolved["run"]["batch_size"] == 7
    assert resolved["sources"][0]["encoding"] == "auto"  # defaults are shown
    assert resolved["sink"]["path"] == str(tmp_path / "out")
    (tmp_path / "other").mkdir()  # absolute paths: it runs from any folder
    again = write_pipeline(tmp_path / "other" / "resolved.toml", proc.stdout)
    ok = run_etl("validate", str(again))
    assert ok.returncode == 0, ok.stderr


def test_validate_json(tmp_path):
    inputs(tmp_path)
    good = write_pipeline(tmp_path / "p.toml", GOOD)
    ok = run_etl("validate", str(good), "--json")
    assert ok.returncode == 0, ok.stderr
    result = json.loads(ok.stdout)
    assert result["ok"] is True and result["inputs"] == 1 and result["problems"] == []
    assert [p["name"] for p in result["plugins"]] == ["text", "parquet", "local"]
    assert result["state"]["path"] == str(tmp_path / "out")
    bad = run_etl("validate", str(good), "--json", "--set", "sink.pth=x", "--set", "run.x=1")
    assert bad.returncode == 2
    failed = json.loads(bad.stdout)
    assert failed["ok"] is False and len(failed["problems"]) == 2
    assert {p["key"] for p in failed["problems"]} == {"x", "pth"}
