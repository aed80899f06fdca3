"""Regenerate the reference sections of docs/plugins.md from the code's docstrings.

    python scripts/gen_plugin_docs.py          # rewrite the generated sections in place
    python scripts/gen_plugin_docs.py --check  # exit 1 if docs/plugins.md is stale

Two sections are generated, each between its BEGIN/END marker comments:

* ``hooks``: every hook in ``etl.plugins.hookspecs``, with its signature and Google-style ``Args:``;
* ``api``: the plugin base classes and capabilities, the executors' ``Job``, ``Option``,
  ``Context``, ``WorkUnit``, ``InputRef``, ``WriteResult`` and ``RunInfo``: their docstrings
  and public methods.

Everything outside the markers is written by hand and left alone.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
import textwrap
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def _marker(name: str, end: bool = False) -> str:
    if end:
        return f"<!-- END GENERATED {name} -->"
    return f"<!-- BEGIN GENERATED {name}: scripts/gen_plugin_docs.py writes this; edit the docstrings -->"


def render_docstring(doc: str | None) -> str:
    """A Google-style docstring as Markdown: prose, then ``Args:``/``Returns:`` as lists."""
    doc = inspect.cleandoc(doc or "")
    out: list[str] = []
    section = None
    for line in doc.splitlines():
        heading = re.match(r"^(Args|Arguments|Returns|Raises|Yields):\s*$", line)
        if heading:
            section = heading.group(1)
            out.append("")
            out.append(f"*{section}:*")
            out.append("")
            continue
        if section and line.strip():
            item = re.match(r"^ {4}(\*{0,2}\w+)(?: \(([^)]*)\))?:\s*(.*)$", line)
            if item and section in ("Args", "Arguments"):
                name, type_, text = item.groups()
                typed = f" ({type_})" if type_ else ""
                out.append(f"- `{name}`{typed}: {text}")
                continue
            if line.startswith("        ") and out and out[-1].startswith("- "):
                out[-1] += " " + line.strip()
                continue
            if section in ("Returns", "Raises", "Yields"):
                text = line.strip()
                if out and out[-1] and not out[-1].startswith("*"):
                    out[-1] += " " + text
                else:
                    out.append(text)
                continue
        if not line.strip():
            section = None if section and out and out[-1].startswith("- ") else section
        out.append(line)
    text = "\n".join(out).strip()
    # rst ``literals`` read better as Markdown `literals`
    text = re.sub(r"``([^`]+)``", r"`\1`", text)
    text = re.sub(r":(?:class|meth|func|mod|attr):`~?([^`]+)`", r"`\1`", text)
    return re.sub(r"\n{3,}", "\n\n", text)


def _signature(func) -> str:
    sig = inspect.signature(func)
    params = ", ".join(p.name for p in sig.parameters.values() if p.name not in ("self", "cls"))
    return f"{func.__name__}({params})"


def hooks_section() -> str:
    from etl.plugins import hookspecs

    source = inspect.getsource(hookspecs)
    groups = re.findall(r"^# (\w[\w ]*)\n", source, re.M)
    lines = [
        "Hooks are module-level functions marked `@hookimpl` (from `etl`); pluggy calls them",
        "with keyword arguments, and an implementation may accept fewer arguments than the",
        "spec names. The registration hook runs once per process; observer hooks run once per",
        "run or once per batch written, never once per article.",
        "",
    ]
    funcs = [
        obj
        for name, obj in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("etl_")
    ]
    funcs.sort(key=lambda f: f.__code__.co_firstlineno)
    group_starts = {g: source.index(f"# {g}\n") for g in groups}
    current = None
    for func in funcs:
        position = source.index(f"def {func.__name__}(")
        group = max(
            (g for g, start in group_starts.items() if start < position),
            key=lambda g: group_starts[g],
            default=None,
        )
        if group != current and group is not None:
            lines += [f"### {group.capitalize()}", ""]
            current = group
        lines += [f"#### `{_signature(func)}`", "", render_docstring(func.__doc__), ""]
    return "\n".join(lines).strip()


def _class_doc(cls, methods: list[str], heading: str = "###") -> list[str]:
    lines = [f"{heading} `{cls.__module__}.{cls.__name__}`", ""]
    # the names plugin authors import from etl itself
    if cls.__module__.startswith(("etl.plugins.", "etl.context", "etl.sources.files")):
        lines[0] = f"{heading} `etl.{cls.__name__}`"
    lines += [render_docstring(cls.__doc__), ""]
    for name in methods:
        member = cls.__dict__.get(name)
        if member is None:
            continue
        if isinstance(member, property):
            doc = render_docstring(member.fget.__doc__)
            lines.append(f"- `{name}` (property)" + (f": {doc}" if doc else ""))
            continue
        if isinstance(member, classmethod | staticmethod):
            member = member.__func__
        doc = render_docstring(member.__doc__)
        first, _, rest = doc.partition("\n")
        lines.append(f"- `{_signature(member)}`" + (f": {first}" if first else ""))
        if rest.strip():
            lines.append(textwrap.indent(rest.strip(), "  "))
    lines.append("")
    return lines


def api_section() -> str:
    from etl.context import Context, RunInfo
    from etl.executors.api import Job
    from etl.plugin import (
        DecidesOnDriver,
        Executor,
        InputRef,
        Option,
        Part,
        Plugin,
        ReadsMany,
        ReplacesRows,
        Sink,
        Source,
        SplitsInputs,
        StagedFile,
        Transform,
        WorkerFiles,
        WorkerWriter,
        WorkUnit,
        WriteResult,
    )
    from etl.sources import FileSource

    lines: list[str] = []
    lines += _class_doc(Plugin, ["summary", "fingerprint", "error"])
    lines += _class_doc(Source, ["units", "read", "probe"])
    lines += _class_doc(ReadsMany, ["read_many"])
    lines += _class_doc(SplitsInputs, ["split"])
    lines += _class_doc(Transform, ["output_schema", "open", "process", "close"])
    lines += _class_doc(
        DecidesOnDriver, ["notes", "decide", "decide_here", "decides_on_driver", "driver_problem"]
    )
    lines += _class_doc(
        Sink, ["location", "mode", "key", "open", "write", "prepare", "commit", "abort"]
    )
    lines += _class_doc(WorkerFiles, ["worker_writer", "adopt", "check_worker"])
    lines += _class_doc(ReplacesRows, ["stage_replace"])
    lines += _class_doc(WorkerWriter, ["write", "close", "abort"])
    lines += _class_doc(StagedFile, [])
    lines += _class_doc(Executor, ["execute", "split_bytes", "close"])
    lines += _class_doc(
        Job,
        [
            "stream_here",
            "worker_spec",
            "probe_unit",
            "take",
            "ask",
            "known_ids",
            "stats",
            "written",
            "progress",
            "summary_counter",
        ],
    )
    lines += _class_doc(
        FileSource, ["units", "read_bytes", "open_input", "probe", "common_options"]
    )
    lines += _class_doc(Option, [])
    lines += _class_doc(Context, ["articles", "reject", "count", "run_id", "batch_size"])
    lines += _class_doc(WorkUnit, ["key"])
    lines += _class_doc(Part, [])
    lines += _class_doc(InputRef, [])
    lines += _class_doc(WriteResult, [])
    lines += _class_doc(RunInfo, [])
    return "\n".join(lines).strip()


SECTIONS = {"hooks": hooks_section, "api": api_section}


def generate(text: str) -> str:
    """``text`` with every generated section replaced by its fresh rendering."""
    for name, render in SECTIONS.items():
        key = name.upper()
        pattern = re.compile(
            re.escape(_marker(key)) + r".*?" + re.escape(_marker(key, end=True)), re.S
        )
        if not pattern.search(text):
            raise SystemExit(f"{DOC}: no {_marker(key)} ... {_marker(key, end=True)} markers")
        body = f"{_marker(key)}\n\n{render()}\n\n{_marker(key, end=True)}"
        text = pattern.sub(lambda _m, body=body: body, text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    parser.add_argument("--path", type=Path, default=DOC, help="the Markdown file")
    args = parser.parse_args(argv)
    current = args.path.read_text(encoding="utf-8")
    fresh = generate(current)
    if args.check:
        if fresh != current:
            print(
                f"{args.path} is stale: run `python scripts/gen_plugin_docs.py` and commit it",
                file=sys.stderr,
            )
            return 1
        return 0
    if fresh != current:
        args.path.write_text(fresh, encoding="utf-8")
        print(f"updated {args.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
