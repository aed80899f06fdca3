"""``etl validate`` and ``etl config``: a pipeline checked, and shown as it will run."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from etl import log
from etl.commands.options import command_options

_SET = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a pipeline value"
)


def _problems(exc: Any) -> list[dict[str, Any]]:
    """A ConfigError (or several) as plain data, for --json."""
    from etl.errors import ConfigErrors

    errors = exc.errors if isinstance(exc, ConfigErrors) else [exc]
    return [{"message": e.message, "hint": e.hint, "key": e.key} for e in errors]


@click.command()
@click.argument("pipeline", type=click.Path(dir_okay=False))
@_SET
@click.option("--json", "as_json", is_flag=True, help="the result as JSON (problems too)")
@command_options
def validate(
    pipeline: str, overrides: tuple[str, ...], as_json: bool, verbose: int, disable: tuple[str, ...]
) -> None:
    """Check a pipeline file without running it: plugins, options, inputs, where it writes.

    Every mistake found is reported, not only the first. The sink's folder is checked too:
    a folder (or one that can be made), writable, local. Nothing is read or written.
    """
    from etl.config import load_pipeline
    from etl.errors import ConfigError
    from etl.plugin import capabilities
    from etl.run.plan import build_plan, scale_out
    from etl.run.preflight import check_location

    try:
        pipe = load_pipeline(pipeline, list(overrides), defer=True)
        log.add_secrets(pipe.secrets)  # from here on, whatever is printed is redacted
        plan = build_plan(pipe, disable=disable)
        where = check_location(plan)
    except ConfigError as exc:
        if not as_json:
            raise
        click.echo(json.dumps({"ok": False, "pipeline": pipeline, "problems": _problems(exc)}))
        sys.exit(exc.exit_code)
    plugins = [
        {
            "kind": p.kind,
            "name": p.name,
            "section": p.section,
            "supplier": type(p).supplier,
            "version": type(p).supplier_version,
            "capabilities": list(capabilities(p)),
        }
        for p in plan.plugins()
    ]
    if as_json:
        result = {
            "ok": True,
            "pipeline": pipeline,
            "imports": pipe.plugins,
            "plugins": plugins,
            "state": pipe.redact(where),
            "workers": scale_out(plan),
            "inputs": len(plan.units),
            "problems": [],
        }
        click.echo(json.dumps(result, indent=1, default=str))
        return
    click.echo(f"{pipe.name}: ok")
    if pipe.plugins:
        click.echo(f"  imports   {', '.join(pipe.plugins)} (from plugins = [...])")
    for p in plugins:
        supplier = f"{p['supplier']} {p['version']}".strip()
        extra = f"  ({', '.join(p['capabilities'])})" if p["capabilities"] else ""
        click.echo(f"  {p['kind']:<10}{p['name']:<12}{p['section']}  [{supplier}]{extra}")
    if where["path"] is None:
        click.echo("  state     (temporary: this run only)")
    else:
        made = "exists" if where["exists"] else "will be made"
        click.echo(f"  state     {pipe.redact(where['path'])} ({made}, writable)")
    click.echo(f"  workers   {scale_out(plan)}")
    click.echo(f"  inputs    {len(plan.units)}")


@click.command()
@click.argument("pipeline", type=click.Path(dir_okay=False))
@_SET
@click.option("--json", "as_json", is_flag=True, help="the resolved pipeline as JSON")
@command_options
def config(
    pipeline: str, overrides: tuple[str, ...], as_json: bool, verbose: int, disable: tuple[str, ...]
) -> None:
    """Print PIPELINE as it will run: ${VAR}s filled in, --set applied, every option with
    its value or default, paths made absolute; values from the environment shown as ***."""
    from etl.config import load_pipeline
    from etl.run.plan import build_plan

    pipe = load_pipeline(pipeline, list(overrides), defer=True)
    log.add_secrets(pipe.secrets)
    plan = build_plan(pipe, disable=disable, list_units=False)

    def table(plugin: Any) -> dict[str, Any]:
        return {"plugin": plugin.name, **pipe.redact(dict(vars(plugin.opts)))}

    resolved = {
        "plugins": pipe.plugins,
        "run": {
            "on_error": pipe.on_error,
            "batch_size": pipe.batch_size,
            "max_reject_ratio": pipe.max_reject_ratio,
            "checkpoint": pipe.checkpoint.text if pipe.checkpoint else None,
        },
        "sources": [table(s) for s in plan.sources],
        "transforms": [table(t) for t in plan.transforms],
        "sink": table(plan.sink),
        "executor": table(plan.executor),
    }
    if as_json:
        click.echo(json.dumps(resolved, indent=1, default=str))
        return
    click.echo(to_toml(resolved, f"{pipe.name}, resolved by `etl config`"))


def _value(value: Any) -> str:
    """One TOML value (strings in JSON's escaping, which TOML's basic strings share)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None)
        return "{" + items + "}"
    return json.dumps(str(value), ensure_ascii=False)


def _key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else json.dumps(key)


def _lines(options: dict[str, Any]) -> list[str]:
    """``key = value`` lines; an option without a value (None) as a comment: TOML has no
    null, and leaving the key out means the same."""
    return [
        f"# {_key(k)} is not set" if v is None else f"{_key(k)} = {_value(v)}"
        for k, v in options.items()
    ]


def to_toml(resolved: dict[str, Any], title: str) -> str:
    """A resolved pipeline as a pipeline file (it runs as it is)."""
    out = [f"# {title}"]
    if resolved["plugins"]:
        out.append(f"plugins = {_value(resolved['plugins'])}")
    out += ["", "[run]", *_lines(resolved["run"])]
    for name in ("sources", "transforms"):
        for entry in resolved[name]:
            out += ["", f"[[{name}]]", *_lines(entry)]
    for name in ("sink", "executor"):
        out += ["", f"[{name}]", *_lines(resolved[name])]
    return "\n".join(out)
