from pathlib import Path

import pytest

from etl.config import REDACTED, load_pipeline, pipeline_from_dict
from etl.errors import ConfigError

BASE = {
    "sources": [{"plugin": "text", "paths": ["a"]}],
    "sink": {"plugin": "parquet", "path": "out"},
}


def test_env_interpolation_and_redaction(monkeypatch):
    monkeypatch.setenv("ETL_TEST_SECRET", "hunter2")
    data = {**BASE, "sink": {"plugin": "parquet", "path": "s3://bucket/${ETL_TEST_SECRET}/x"}}
    pipe = pipeline_from_dict(data)
    assert pipe.sink.options["path"] == "s3://bucket/hunter2/x"
    assert "hunter2" not in str(pipe.describe())
    assert REDACTED in pipe.describe()["sink"]["path"]


def test_missing_env_variable_names_it(monkeypatch):
    monkeypatch.delenv("ETL_NOPE", raising=False)
    with pytest.raises(ConfigError, match=r"sink.path.*ETL_NOPE"):
        pipeline_from_dict({**BASE, "sink": {"plugin": "parquet", "path": "${ETL_NOPE}"}})


def test_overrides_set_values_with_toml_types():
    pipe = pipeline_from_dict(
        BASE, overrides=["sink.path=elsewhere", "run.batch_size=10", "sources.1.paths=['x', 'y']"]
    )
    assert pipe.sink.options["path"] == "elsewhere"
    assert pipe.batch_size == 10
    assert pipe.sources[0].options["paths"] == ["x", "y"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"sink": BASE["sink"]}, r"no \[\[sources\]\]"),
        ({"sources": BASE["sources"]}, r"no \[sink\]"),
        ({**BASE, "sorces": []}, "unknown top-level key 'sorces'"),
        ({**BASE, "run": {"on_error": "ignore"}}, "on_error"),
        ({**BASE, "run": {"batchsize": 3}}, r"\[run\].*unknown key 'batchsize'"),
        ({**BASE, "run": {"batch_size": 0}}, "batch_size"),
        ({**BASE, "sources": {"plugin": "text"}}, r"use \[\[sources\]\]"),
        ({**BASE, "sources": [{"paths": []}]}, r"\[\[sources\]\] #1.*missing `plugin"),
    ],
)
def test_shape_errors_name_the_section(data, message):
    with pytest.raises(ConfigError, match=message):
        pipeline_from_dict(data, name="p.toml")


def test_bad_override_index():
    with pytest.raises(ConfigError, match="number from 1 to 1"):
        pipeline_from_dict(BASE, overrides=["sources.2.paths=x"])


def test_load_pipeline_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match="no pipeline file"):
        load_pipeline(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[sink\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_pipeline(bad)
