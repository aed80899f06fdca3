"""`etl init` writes a pipeline from what a folder holds; shell completion as documented."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.helpers import ROOT, read_dataset, run_etl

ARTICLE = "Article {} tells of the harbour, its boats and the storm that passed.\n"


def make_folder(tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    for i in range(2):
        (data / "sub" / f"{i}.txt").write_text(ARTICLE.format(i))
    rows = [
        {
            "link": f"https://n.example/{i}",
            "headline": f"Headline {i}",
            "story": ARTICLE.format(10 + i),
            "meta": {"date": f"2024-03-0{i + 1}T10:00:00Z"},
        }
        for i in range(3)
    ]
    (data / "news.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (data / "sub" / "more.csv").write_text(
        'Title,Body Text,URL\n"One","' + ARTICLE.format(20) + '",https://c.example/1\n'
    )
    (data / "notes.md").write_text("not an input kind")
    return data


def test_init_writes_a_commented_pipeline_that_runs_as_it_is(tmp_path):
    make_folder(tmp_path)
    proc = run_etl("init", "data", "-o", "p.toml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "wrote p.toml (4 inputs)" in proc.stdout
    text = (tmp_path / "p.toml").read_text()
    assert text.startswith("# A pipeline for data")
    assert 'plugin = "text"' in text and 'plugin = "jsonl"' in text and 'plugin = "csv"' in text
    # the keys of the records, mapped to the article's columns
    assert 'text = "story"' in text and 'title = "headline"' in text
    assert 'uri = "link"' in text and 'published_at = "meta.date"' in text
    assert 'text = "Body Text"' in text  # no known name: the longest values
    assert "# keys seen: link, headline, story, meta.date" in text
    run = run_etl("run", "p.toml", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    table = read_dataset(tmp_path / "out" / "data")
    assert table.num_rows == 6
    assert sorted(t for t in table.column("title").to_pylist() if t) == [
        "Headline 0",
        "Headline 1",
        "Headline 2",
        "One",
    ]
    assert sum(d is not None for d in table.column("published_at").to_pylist()) == 3
    again = run_etl("init", "data", "-o", "p.toml", cwd=tmp_path)
    assert again.returncode == 2 and "p.toml exists" in again.stderr


def test_init_in_the_folder_keeps_the_dataset_out_of_its_inputs(tmp_path):
    data = make_folder(tmp_path)
    (data / "extra.json").write_text(json.dumps([{"story": ARTICLE.format(30)}]))
    proc = run_etl("init", ".", cwd=data)
    assert proc.returncode == 0, proc.stderr
    for _ in range(2):  # the second run must not read the first run's manifests as inputs
        run = run_etl("run", "pipeline.toml", cwd=data)
        assert run.returncode == 0, run.stderr
        assert "0 rejected" in run.stdout, run.stdout
    assert (tmp_path / "data-dataset" / "_etl").is_dir()


def test_init_comments_out_a_source_that_is_not_installed(tmp_path):
    data = make_folder(tmp_path)
    (data / "page.html").write_text("<html><body><p>" + ARTICLE.format(40) + "</p></body></html>")
    proc = run_etl("init", "data", "--disable-plugin", "html", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "pipeline.toml").read_text()
    assert "# the html source is not installed: pip install ./plugins/etl-html" in text
    assert '# plugin = "html"' in text
    nothing = tmp_path / "empty"
    nothing.mkdir()
    (nothing / "a.md").write_text("x")
    none = run_etl("init", "empty", "-o", "q.toml", cwd=tmp_path)
    assert none.returncode == 2 and "no files etl reads" in none.stderr


def test_shell_completion_works_as_the_readme_says():
    readme = (ROOT / "README.md").read_text()
    assert 'eval "$(_ETL_COMPLETE=bash_source etl)"' in readme
    env = {
        **os.environ,
        "_ETL_COMPLETE": "bash_complete",
        "COMP_WORDS": "etl re",
        "COMP_CWORD": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "etl.cli"], env=env, capture_output=True, text=True, timeout=60
    )
    words = {line.split(",", 1)[1] for line in proc.stdout.splitlines() if "," in line}
    assert {"recover", "rejects", "report"} <= words, proc.stdout + proc.stderr
