"""``etl new plugin``: write a ready-to-install plugin package from the templates.

The package has the layout of every first-party plugin under ``plugins/``::

    etl-NAME/
      pyproject.toml        [project.entry-points.etl] NAME = "etl_NAME"
      etl_NAME.py           one module: the plugin class and its registration hook
      tests/test_etl_NAME.py  passes as generated (uses etl.testing)
      README.md
      .gitignore            build and test leftovers

The templates live in ``etl/templates/plugin/`` (shipped in the wheel as package data);
``{{key}}`` tokens are replaced, nothing else is interpreted.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from etl.errors import ConfigError

KINDS = ("source", "transform", "sink")
_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
_TOKEN = re.compile(r"\{\{(\w+)\}\}")


def _template(*parts: str) -> str:
    return resources.files("etl").joinpath("templates", "plugin", *parts).read_text("utf-8")


def render(text: str, values: dict[str, str]) -> str:
    """``text`` with every ``{{key}}`` replaced; an unknown key is a bug in the template."""

    def substitute(match: re.Match[str]) -> str:
        return values[match.group(1)]

    return _TOKEN.sub(substitute, text)


def plugin_names(name: str) -> dict[str, str]:
    """The names derived from NAME: plugin, distribution, module and class names."""
    raw = name.strip()
    plugin = re.sub(r"^etl[-_]", "", raw.lower())
    if not _NAME.match(plugin):
        raise ConfigError(
            f"etl new plugin: {raw!r} is not a usable plugin name",
            hint="use lower-case letters, digits, '-' or '_', starting with a letter, "
            "e.g. `etl new plugin keyword-tagger`",
        )
    snake = plugin.replace("-", "_")
    return {
        "name": plugin,
        "dist": f"etl-{plugin.replace('_', '-')}",
        "module": f"etl_{snake}",
        "snake": snake,
        "camel": "".join(part.capitalize() for part in snake.split("_")),
    }


#: what a FileSource adds to its own options (see etl.sources.FileSource), for the README
_FILE_SOURCE_OPTIONS = (
    "- `paths` (paths, required): files, directories (recursive), globs or URLs",
    "- `include` (list, default `{include}`): file name patterns to take from directories",
    "- `max_bytes` (int, default `67108864`, at least 1): larger inputs are rejected, not read",
    "- `retries` (int, default `3`, at least 0): retries of a failed remote fetch",
    "- `timeout` (float, default `30.0`, more than 0): seconds to wait for a remote input",
)
_BOUND = re.compile(r",?\s*(min|max)=([^,\s]+)")


def _options_doc(module_text: str) -> str:
    """The README's options list, from the Option(...) lines of the rendered module (and the
    options a FileSource subclass gets from its base class)."""
    lines = []
    if "(FileSource):" in module_text:
        include = re.search(r"default_include = (\[.*?\])", module_text)
        common = "\n".join(_FILE_SOURCE_OPTIONS)
        lines.extend(common.format(include=include.group(1) if include else '["*"]').split("\n"))
    for match in re.finditer(
        r'Option\(\s*"(\w+)",\s*"(\w+)",\s*(.*?),\s*help="([^"]*)"\s*\)', module_text, re.S
    ):
        opt, type_, default, help_ = match.groups()
        bounds = {k: v for k, v in _BOUND.findall(default)}
        default = " ".join(_BOUND.sub("", default).split())
        shown = "required" if default == "required=True" else f"default `{default}`"
        if "min" in bounds:
            shown += f", at least {bounds['min']}"
        if "max" in bounds:
            shown += f", at most {bounds['max']}"
        lines.append(f"- `{opt}` ({type_}, {shown}): {help_}")
    return "\n".join(lines)


def new_plugin(name: str, kind: str = "transform", directory: str | Path | None = None) -> Path:
    """Write a plugin package for ``name`` of ``kind`` into ``directory`` (default ./etl-NAME).

    Returns the package folder. Refuses to write into a folder that has files in it.
    """
    if kind not in KINDS:
        raise ConfigError(f"etl new plugin: --kind must be one of {', '.join(KINDS)}")
    names = plugin_names(name)
    target = Path(directory) if directory is not None else Path.cwd() / names["dist"]
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError(
            f"etl new plugin: {target} already exists and is not empty",
            hint="choose another folder with --dir, or remove it",
        )
    kind_suffix = kind.capitalize()
    values = {
        **names,
        "kind": kind,
        "class": f"{names['camel']}{kind_suffix}",
        "column": f"{names['snake']}_match",
    }
    module_text = render(_template(kind, "module.py.tmpl"), values)
    summary = re.search(r'class \w+\(\w+\):\n    """(.+?)"""', module_text)
    values["summary"] = summary.group(1) if summary else f"an etl {kind} plugin"
    values["summary_lower"] = values["summary"][0].lower() + values["summary"][1:]
    values["usage"] = render(_template(kind, "usage.toml.tmpl"), values).strip()
    values["contract"] = " ".join(render(_template(kind, "contract.tmpl"), values).split())
    values["options"] = _options_doc(module_text)
    files = {
        "pyproject.toml": render(_template("pyproject.toml.tmpl"), values),
        "README.md": render(_template("README.md.tmpl"), values),
        ".gitignore": _template("gitignore.tmpl"),
        f"{names['module']}.py": module_text,
        f"tests/test_{names['module']}.py": render(_template(kind, "test.py.tmpl"), values),
    }
    for rel, text in files.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return target
