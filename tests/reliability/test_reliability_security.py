"""Paths, compression bombs, archives, XML entities, secrets and plugin imports."""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import os
import tarfile
import threading
import zipfile
import zlib
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etl.config import pipeline_from_dict
from etl.plugins import get_plugin_manager
from etl.run import build_plan, run_plan
from etl.sinks.parquet import MAX_SEGMENT_BYTES, partition_segment
from tests.helpers.reliability import (
    FILE_SOURCES,
    etl,
    etl_process,
    file_name,
    make_corpus,
    read_dataset,
    visible_files,
    write_pipeline,
)

PM = get_plugin_manager()
PLUGINS = Path(__file__).parent / "plugins"


def all_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def run_sources(tmp: Path, paths: list[Path], sources=FILE_SOURCES, **sink) -> dict:
    spec = {
        # hostile inputs are often all rejected: commit anyway, to check what was kept
        "run": {"max_reject_ratio": 1},
        "sources": [{"plugin": s, "paths": [str(p) for p in paths]} for s in sources],
        "sink": {"plugin": "parquet", "path": str(tmp / "ds"), **sink},
    }
    return run_plan(build_plan(pipeline_from_dict(spec, base_dir=tmp), pm=PM))


# paths


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(value=st.one_of(st.none(), st.text(), st.integers(), st.floats(), st.binary().map(repr)))
def test_partition_segment_is_always_one_safe_folder_name(value):
    segment = partition_segment("publisher", value)
    assert segment.startswith("publisher=")
    assert "/" not in segment and "\\" not in segment and "\0" not in segment
    assert segment not in (".", "..")
    assert len(segment.encode()) <= len("publisher=") + MAX_SEGMENT_BYTES <= 255
    segment.encode("ascii")  # a valid name on every filesystem
    # readers (pyarrow, DuckDB, Spark) percent-decode folder names and need UTF-8 back
    unquote_to_bytes(segment).decode("utf-8")


HOSTILE_VALUES = [
    "../../../../tmp/evil",
    "/etc/passwd",
    "..",
    ".",
    "a/../../b",
    "C:\\Windows\\evil",
    "nul\x00byte",
    "x" * 5000,
    "é" * 300,
    "%2e%2e%2f",
    "",
    "\n\r\t",
]


@pytest.mark.parametrize("column", ["publisher", "title"])
def test_hostile_partition_values_stay_inside_the_dataset(tmp_path, column):
    corpus = tmp_path / "in"
    corpus.mkdir()
    lines = []
    for i, value in enumerate(HOSTILE_VALUES):
        lines.append(json.dumps({"text": f"article {i} body text", column: value}))
    (corpus / "a.jsonl").write_text("\n".join(lines) + "\n")
    before = all_files(tmp_path) | {tmp_path / "ds"}
    summary = run_sources(tmp_path, [corpus / "a.jsonl"], ["jsonl"], partition_by=[column])
    assert summary["written"] == len(HOSTILE_VALUES)
    dataset = (tmp_path / "ds").resolve()
    for path in all_files(tmp_path) - before:
        assert path.resolve().is_relative_to(dataset), path
    for path in visible_files(dataset):
        assert len(path.name.encode()) <= 255
        assert all(len(part.encode()) <= 255 for part in path.relative_to(dataset).parts)
    # and each value reads back as itself from the folder names (hive partitioning)
    import pyarrow.dataset as pads

    table = pads.dataset(dataset, format="parquet", partitioning="hive", ignore_prefixes=["_etl"])
    assert table.count_rows() == len(HOSTILE_VALUES)


def test_hostile_input_names_are_accounted_for_and_written_nowhere_else(tmp_path):
    corpus = tmp_path / "in"
    corpus.mkdir()
    names = [
        "newline\nname.txt",
        "-dash.txt",
        "sp ace.txt",
        "dots..txt",
        "y" * 250 + ".txt",
        "ünï©ødé.txt",
    ]
    for i, name in enumerate(names):
        (corpus / name).write_text(f"Headline {i}\n\nA body for the article number {i}.\n")
    raw = os.fsencode(corpus) + b"/bad-\xff\xfe-bytes.txt"  # not valid UTF-8
    with open(raw, "wb") as f:
        f.write(b"Undecodable name\n\nIts text is fine.\n")
    before = all_files(tmp_path) | {tmp_path / "ds"}
    summary = run_sources(tmp_path, [corpus], ["text"])
    assert summary["inputs"] == len(names) + 1
    # the undecodable name: ingested, or (text source today) one reject; never lost
    assert summary["written"] >= len(names)
    assert all(e["records"] == 1 for e in summary["per_input"])
    for path in all_files(tmp_path) - before:
        assert path.resolve().is_relative_to((tmp_path / "ds").resolve()), path
    manifest = next((tmp_path / "ds" / "_etl" / "runs").glob("*.json"))
    json.loads(manifest.read_text(encoding="ascii"))  # still valid JSON
    # and remembered: a re-run skips all of them (but an input that failed is read again)
    again = run_sources(tmp_path, [corpus], ["text"])
    failed = summary["rejects_by_reason"].get("source error", 0)
    assert again["inputs_skipped"] == len(names) + 1 - failed


# compression bombs and archives


def _bomb() -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    chunk = b"\0" * (1 << 20)
    return b"".join(packer.compress(chunk) for _ in range(256)) + packer.flush()  # 256 MiB


BOMB_SOURCES = FILE_SOURCES


@pytest.mark.slow
@pytest.mark.parametrize("source", BOMB_SOURCES)
def test_decompression_bomb_is_rejected(tmp_path, source):
    target = tmp_path / f"{source}-{file_name(source)}"
    if not target.name.endswith(".gz"):
        target = target.with_name(target.name + ".gz")
    data = _bomb()
    assert len(data) < 400_000
    target.write_bytes(data)
    summary = run_sources(tmp_path, [target], [source])
    (entry,) = summary["per_input"]
    assert entry["written"] == 0 and entry["rejected"] == 1
    assert set(summary["rejects_by_reason"]) <= {
        "too large",
        "decompression bomb",
        "not a WARC or ARC file",  # warc: refused before anything is inflated
    }


@pytest.mark.slow
def test_archives_with_escaping_members_are_not_extracted(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    payload = b"Evil\n\nI would like to live outside the dataset.\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in ("../../escaped.txt", "/tmp/etl-absolute-escape.txt", "ok.txt"):
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    (folder / "evil.tar.gz").write_bytes(buf.getvalue())
    with zipfile.ZipFile(folder / "evil.zip", "w") as z:
        z.writestr("../../escaped-zip.txt", payload)
    for name in ("evil.tar.gz", "evil.zip"):
        for source in FILE_SOURCES:
            (tmp_path / source).mkdir(exist_ok=True)
            summary = run_sources(tmp_path / source, [folder / name], [source])
            (entry,) = summary["per_input"]
            assert entry["records"] >= 1
    assert not (tmp_path.parent / "escaped.txt").exists()
    assert not Path("/tmp/etl-absolute-escape.txt").exists()
    assert not list(tmp_path.parent.glob("escaped*"))


# XML entities


class _Counter(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802
        _Counter.hits.append(self.path)
        body = b'<!ENTITY ext "FETCHED-FROM-NETWORK">'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.mark.slow
def test_no_external_entity_or_dtd_is_fetched_or_expanded(tmp_path):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Counter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-FILE-CONTENT")
    laughs = "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 9))
    docs = {
        "xxe-file": f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{secret}">]>',
        "xxe-http": f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "http://127.0.0.1:{port}/entity">]>',
        "dtd-http": f'<!DOCTYPE rss SYSTEM "http://127.0.0.1:{port}/evil.dtd">',
        "param": f'<!DOCTYPE rss [<!ENTITY % p SYSTEM "http://127.0.0.1:{port}/p.dtd"> %p;]>',
        "laughs": f'<!DOCTYPE rss [<!ENTITY lol0 "lol">{laughs}]>',
    }
    entity = {"laughs": "&lol8;", "xxe-file": "&xxe;", "xxe-http": "&xxe;"}
    folder = tmp_path / "in"
    folder.mkdir()
    for name, doctype in docs.items():
        ref = entity.get(name, "plain")
        xml = (
            f'<?xml version="1.0"?>{doctype}<rss version="2.0"><channel><title>t</title>'
            f"<item><title>Item {name}</title><link>http://example.invalid/{name}</link>"
            f"<description>Body {ref} of the article {name}, long enough to be kept as text "
            "by extractors that want a few words.</description></item></channel></rss>"
        )
        for ext in (".xml", ".rss", ".html"):
            (folder / f"{name}{ext}").write_text(xml)
    try:
        for source in FILE_SOURCES:
            (tmp_path / source).mkdir()
            run_sources(tmp_path / source, sorted(folder.iterdir()), [source])
            table = read_dataset(tmp_path / source / "ds")
            blob = json.dumps(table.to_pylist(), default=str)
            assert "TOP-SECRET-FILE-CONTENT" not in blob, source
            assert "FETCHED-FROM-NETWORK" not in blob, source
            assert "lollollollol" not in blob, source  # no entity expansion
    finally:
        server.shutdown()
    assert _Counter.hits == [], f"fetched: {_Counter.hits}"


# secrets


def test_env_values_never_reach_logs_manifests_or_errors(tmp_path):
    secret = "s3cr3t-T0KEN-4242"
    corpus = tmp_path / f"in-{secret}"
    make_corpus(corpus, 4)
    (corpus / "empty.txt").write_text("")  # a reject whose input name holds the secret
    dataset = tmp_path / "ds"
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(
        f'plugins = ["{PLUGINS / "accounting_transforms.py"}"]\n'
        f'[[sources]]\nplugin = "text"\npaths = ["{tmp_path}/in-${{TOKEN}}"]\n'
        'publisher = "${TOKEN}"\n'
        '[[transforms]]\nplugin = "sometimes_fails"\nprefix = "zz-${TOKEN}"\n'
        f'[sink]\nplugin = "parquet"\npath = "{dataset}"\n'
    )
    env = {"TOKEN": secret}
    proc = etl("run", "-vv", "--log-format", "json", str(pipeline), env=env, check=True)
    assert secret not in proc.stdout + proc.stderr
    assert "***" in proc.stderr  # the logs did mention the inputs, redacted
    meta = dataset / "_etl"
    for path in meta.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
            if path.suffix == ".pq":
                assert secret not in json.dumps(pq.read_table(path).to_pylist(), default=str)
    manifest = json.loads(next((meta / "runs").glob("*.json")).read_text())
    assert manifest["pipeline"]["transforms"][0]["prefix"] == "zz-***"
    assert manifest["pipeline"]["sources"][0]["publisher"] == "***"
    # re-run: the memory still works for inputs whose names hold a secret
    again = etl("run", str(pipeline), env=env, check=True)
    assert "0 read, 5 skipped" in again.stdout
    # what the CLI prints: --dry-run's input list, validate, the summary of a run whose
    # dataset path holds the secret
    for args in (
        ["run", "--dry-run"],
        ["validate"],
        ["run", "--set", f"sink.path={dataset}-${{TOKEN}}"],
    ):
        proc = etl(*args, str(pipeline), env=env, check=True)
        assert secret not in proc.stdout + proc.stderr, args
    assert "***" in proc.stdout  # the summary's output line, redacted

    # error messages: a path that matches nothing, a failing run
    bad = tmp_path / "bad.toml"
    bad.write_text(pipeline.read_text().replace("in-${TOKEN}", "missing-${TOKEN}"))
    for command in ("run", "validate"):
        proc = etl(command, str(bad), env=env)
        assert proc.returncode == 2 and "missing-***" in proc.stderr
        assert secret not in proc.stdout + proc.stderr


# plugins


@pytest.mark.slow
def test_only_declared_plugins_are_imported(tmp_path, monkeypatch):
    import sys

    from etl.errors import EtlError

    marker = tmp_path / "imported.marker"
    mod = tmp_path / "mods" / "etl_evil_module_xyz.py"
    mod.parent.mkdir()
    mod.write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    monkeypatch.syspath_prepend(str(mod.parent))
    corpus = tmp_path / "in"
    make_corpus(corpus, 2)
    base = {
        "sources": [{"plugin": "text", "paths": [str(corpus)]}],
        "sink": {"plugin": "parquet", "path": str(tmp_path / "ds")},
    }
    names = ("etl_evil_module_xyz", "etl_evil_module_xyz:thing", "mods/etl_evil_module_xyz.py")
    for name in names:
        for where in ("sources", "transforms", "sink", "executor"):
            spec = json.loads(json.dumps(base))
            if where in ("sources", "transforms"):
                spec[where] = [{"plugin": name, "paths": [str(corpus)]}]
            else:
                spec[where] = {"plugin": name}
            with pytest.raises(EtlError, match="no .* plugin named"):
                build_plan(pipeline_from_dict(spec, base_dir=tmp_path))
            assert not marker.exists(), f"{name} as {where} was imported"
    # an option value or a --set naming a module imports nothing either
    spec = json.loads(json.dumps(base))
    spec["sources"][0]["encoding"] = "etl_evil_module_xyz"
    with contextlib.suppress(EtlError):
        build_plan(pipeline_from_dict(spec, base_dir=tmp_path, overrides=["run.x=os"]))
    assert not marker.exists() and "etl_evil_module_xyz" not in sys.modules

    # declared in plugins = [...]: imported, and `etl validate` says so before anything runs
    text = write_pipeline(tmp_path / "p.toml", str(corpus), tmp_path / "ds").read_text()
    (tmp_path / "p.toml").write_text('plugins = ["etl_evil_module_xyz"]\n' + text)
    proc = etl_process(
        "validate", str(tmp_path / "p.toml"), env={"PYTHONPATH": str(mod.parent)}, check=True
    )
    assert "imports   etl_evil_module_xyz (from plugins = [...])" in proc.stdout
    assert marker.exists()


def test_a_reject_detail_with_a_lone_surrogate_is_written_not_fatal(tmp_path):
    corpus = tmp_path / "in"
    make_corpus(corpus, 3)
    dataset = tmp_path / "ds"
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(
        f'plugins = ["{PLUGINS / "accounting_transforms.py"}"]\n'
        f'[[sources]]\nplugin = "text"\npaths = ["{corpus}"]\n'
        '[[transforms]]\nplugin = "odd_detail"\n'
        f'[sink]\nplugin = "parquet"\npath = "{dataset}"\n'
    )
    etl("run", str(pipeline), check=True)
    (reject,) = pq.read_table(next((dataset / "_etl" / "rejects").glob("*.pq"))).to_pylist()
    assert reject["reason"] == "odd value" and reject["detail"] == "a lone \ufffd surrogate"
