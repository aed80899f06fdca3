"""A ``python`` transform's file ships to workers with the pipeline (issue 17, item D): a
worker rebuilds the transform from the spec alone, without a view of the pipeline's folder."""

from __future__ import annotations

import pickle
import shutil

import pytest

from etl.config import load_pipeline
from etl.errors import RunError
from etl.run.plan import build_plan
from etl.run.worker import make_spec

TAG = """
import etl

@etl.per_article
def tag(article):
    return {"topic": "roads" if "road" in article["text"] else "other"}
"""


def _spec(tmp_path, function: str = "tag.py:tag"):
    """A pipeline in its own folder with its function file, and the spec a driver ships."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.txt").write_text("The council met about road works on Tuesday.\n")
    folder = tmp_path / "pipeline"
    folder.mkdir()
    (folder / "tag.py").write_text(TAG)
    pipe = folder / "p.toml"
    pipe.write_text(
        f"""
[[sources]]
plugin = "text"
paths = ["{inputs}"]

[[transforms]]
plugin = "python"
function = "{function}"
columns = {{ topic = "string" }}

[sink]
plugin = "parquet"
path = "{tmp_path / "out"}"
"""
    )
    plan = build_plan(load_pipeline(pipe))
    # what crosses to a worker is pickled bytes: nothing but what the spec holds
    return pickle.loads(pickle.dumps(make_spec(plan))), folder


def test_a_worker_without_the_pipelines_folder_runs_the_shipped_function(tmp_path):
    spec, folder = _spec(tmp_path)
    assert spec.functions == {"tag.py": ("tag.py", TAG.encode())}
    shutil.rmtree(folder)  # the worker has no view of the driver's files
    session = spec.open("worker 1", "w1")
    transform = session.plan.transforms[0]
    assert transform.fn({"text": "a road"}) == {"topic": "roads"}
    assert transform.mode == "article"
    session.close()


def test_the_worker_runs_the_code_the_driver_read(tmp_path):
    spec, folder = _spec(tmp_path)
    (folder / "tag.py").write_text(TAG.replace('"roads"', '"changed"'))
    transform = spec.open("worker 1", "w1").plan.transforms[0]
    assert transform.fn({"text": "a road"}) == {"topic": "roads"}


def test_a_module_function_is_not_shipped(tmp_path):
    spec, _ = _spec(tmp_path, function="json:dumps")
    assert spec.functions == {}


def test_without_the_file_on_the_driver_the_message_is_the_drivers(tmp_path):
    spec, folder = _spec(tmp_path)
    spec.functions = {}  # as before shipping: the worker looks for the file itself
    shutil.rmtree(folder)
    with pytest.raises(RunError, match="no file"):
        spec.open("worker 1", "w1")
