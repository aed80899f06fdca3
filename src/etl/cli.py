"""The ``etl`` command: thin click commands that parse, call the core and print."""

from __future__ import annotations

import gc
import json
from typing import Any

import click

from etl.commands.options import (
    DatasetPath,
    command_options,
    end_on_closed_pipe,
    group_options,
    progress_option,
    stdout_closed,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="etl", prog_name="etl")
@group_options
def cli() -> None:
    """Ingest news articles into Parquet datasets, through source -> transform -> sink plugins."""


@cli.command()
@click.argument("pipeline", type=click.Path(dir_okay=False))
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="override a pipeline value, e.g. sink.path=out/x",
)
@click.option("--dry-run", is_flag=True, help="plan and list inputs; read and write nothing")
@click.option(
    "--full", is_flag=True, help="read every input, even those an earlier run ingested unchanged"
)
@click.option(
    "--reprocess",
    is_flag=True,
    help="read every input again and replace the rows they gave before (after the pipeline "
    "changed)",
)
@click.option(
    "--wait",
    "wait",
    type=float,
    default=None,
    is_flag=False,
    flag_value=600.0,
    metavar="[SECONDS]",
    help="wait for another run writing the same dataset (default 600 s)",
)
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
@progress_option
@command_options
def run(
    pipeline: str,
    overrides: tuple[str, ...],
    dry_run: bool,
    full: bool,
    reprocess: bool,
    wait: float | None,
    as_json: bool,
    verbose: int,
    disable: tuple[str, ...],
) -> None:
    """Run a pipeline file."""
    from etl import log
    from etl.config import load_pipeline
    from etl.executors.early import start_early

    pipe = load_pipeline(pipeline, list(overrides), defer=True)
    log.add_secrets(pipe.secrets)  # from here on, whatever is printed is redacted
    if full and reprocess:
        raise click.UsageError("--full and --reprocess do not go together: choose one")
    if not dry_run:
        start_early(pipe)  # a fork server imports beside the driver's plugin discovery
    from etl.run import build_plan, run_plan  # pyarrow, and every module of the run
    from etl.run.interrupt import stop_on_signals

    # SIGTERM (kill, systemd, Kubernetes, CI) stops the run as Ctrl-C does: a message, the
    # lock released, the staging removed, what checkpoints committed kept (exit 143)
    with stop_on_signals():
        plan = build_plan(
            pipe, full=full, reprocess=reprocess, disable=disable, start_executor=not dry_run
        )
        if wait:
            plan.run.extra["wait"] = wait
        if dry_run:
            from etl.run.preflight import check_location

            check_location(plan)  # where it would write: a folder, writable, local
            _print_dry_run(plan)
            return
        # this process runs one pipeline: the plan's objects (a work unit per input) live to
        # the end, so keep the garbage collector from walking them again (0.07 s at 100k)
        gc.freeze()
        summary = run_plan(plan)
    if as_json:
        click.echo(
            json.dumps(
                {k: v for k, v in summary.items() if k != "per_input"}, indent=1, default=str
            )
        )
    elif verbose >= 0:
        from etl.commands.summary import print_summary

        print_summary(summary, plan, verbose)


def _print_dry_run(plan: Any) -> None:
    pipe = plan.pipeline
    click.echo(f"dry run: {len(plan.units)} inputs from {len(plan.sources)} sources")
    for unit in plan.units[:20]:
        click.echo(f"  {pipe.redact(unit.key)}")
    if len(plan.units) > 20:
        click.echo(f"  ... and {len(plan.units) - 20} more")
    click.echo(f"output: {plan.target()} (nothing written)")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@command_options
def plugins(as_json: bool, verbose: int, disable: tuple[str, ...]) -> None:
    """List installed plugins with their options."""
    from etl.commands import plugin_cache

    items, cache = plugin_cache.load(disable)
    if items is None:
        from etl.plugins import get_plugin_manager

        pm = get_plugin_manager(disable=disable)
        items = [
            {
                "kind": reg.cls.kind,
                "name": reg.cls.name,
                "supplier": reg.supplier,
                "version": reg.version,
                "module": reg.module,
                "summary": reg.cls.summary(),
                "options": [o.describe() for o in reg.cls.options],
            }
            for reg in pm.all()
        ]
        # through JSON, so a listing from the cache prints exactly the same
        items = json.loads(json.dumps(items, default=str))
        plugin_cache.store(cache, items)
    if as_json:
        click.echo(json.dumps(items, indent=1, default=str))
        return
    for item in items:
        click.echo(
            f"{item['kind']} {item['name']}  ({item['supplier']} {item['version']})".rstrip()
        )
        if item["summary"]:
            click.echo(f"    {item['summary']}")
        for opt in item["options"]:
            default = " (required)" if opt["required"] else f" = {opt['default']!r}"
            bounds = f" ({opt['bounds']})" if opt.get("bounds") else ""
            click.echo(f"    {opt['name']}: {opt['type']}{default}{bounds}  {opt['help']}")


@cli.command()
@click.argument("dataset", type=DatasetPath(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.option("--sample", default=3, show_default=True, help="sample rows to show")
@command_options
def inspect(
    dataset: str, as_json: bool, sample: int, verbose: int, disable: tuple[str, ...]
) -> None:
    """Show a dataset's schema, counts, runs and a few rows."""
    from etl.describe import inspect_dataset

    info = inspect_dataset(dataset, sample=sample)
    if as_json:
        click.echo(json.dumps(info, indent=1, default=str))
        return
    click.echo(f"dataset {info['path']}")
    click.echo(
        f"  rows {info['rows']}, files {info['files']}, runs {len(info['runs'])}, rejects {info['rejects']}"
    )
    for entry in info.get("rejects_by_reason", [])[:10]:
        first = ", ".join(entry["inputs"])
        click.echo(f"    {entry['count']} {entry['reason']}  (first: {first})")
    if info.get("rejects"):
        click.echo(f"    (`etl rejects {dataset}` lists them)")
    click.echo("  schema:")
    for field in info["schema"]:
        added = f"  (added by run {field['added_in']})" if field.get("added_in") else ""
        click.echo(f"    {field['name']}: {field['type']}{added}")
    if info.get("schema_history"):
        from etl.describe import describe_change

        click.echo("  schema history:")
        for entry in info["schema_history"][-10:]:
            click.echo(f"    {describe_change(entry)}")
    unchanged = sum(not r["changed"] for r in info["runs"])
    click.echo("  runs:" + (f" ({unchanged} changed nothing, not listed)" if unchanged else ""))
    for r in [r for r in info["runs"] if r["changed"]][-10:]:
        click.echo(
            f"    {r['run_id']}  written {r['written']}, duplicates {r['duplicates']}, "
            f"re-read {r['reread']}, rejected {r['rejected']}, at {r['finished_at']}"
        )
    if info["sample"]:
        click.echo("  sample:")
        for row in info["sample"]:
            title = row.get("title") or (row.get("text") or "")[:60]
            click.echo(f"    {row['id']}  {row.get('publisher')!s:<16} {title!s:.70}")


@cli.command()
@click.argument("dataset", type=click.Path(file_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default="report.html",
    show_default=True,
    help="the HTML file to write",
)
@click.option("--titles", default=20, show_default=True, help="sample titles to show")
@command_options
def report(dataset: str, output: str, titles: int, verbose: int, disable: tuple[str, ...]) -> None:
    """Write one self-contained HTML page about DATASET: counts, plots, rejects, titles."""
    from etl.report import write_report

    path = write_report(dataset, output, titles=titles)
    click.echo(f"wrote {path}")


@cli.command()
@click.argument("dataset", type=DatasetPath(file_okay=False, exists=True))
@command_options
def recover(dataset: str, verbose: int, disable: tuple[str, ...]) -> None:
    """Finish or roll back a run that died while committing into DATASET."""
    from etl.run.recover import recover_store

    done = recover_store(dataset, disable)
    if not done:
        click.echo(f"{dataset}: nothing to recover")
    for run_id, what in done:
        click.echo(f"{run_id}: {what}")


@cli.group()
def new() -> None:
    """Start something new from a template (a plugin package)."""


@new.command("plugin")
@click.argument("name")
@click.option(
    "--kind",
    type=click.Choice(["source", "transform", "sink"]),
    default="transform",
    show_default=True,
    help="which kind of plugin",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    default=None,
    help="the package folder to create (default: ./etl-NAME)",
)
@command_options
def new_plugin(
    name: str, kind: str, directory: str | None, verbose: int, disable: tuple[str, ...]
) -> None:
    """Write a plugin package: pyproject.toml, one module, tests/, README.md."""
    from etl.scaffold import new_plugin as scaffold

    path = scaffold(name, kind, directory)
    files = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
    click.echo(f"created {path} ({kind} plugin)")
    for rel in files:
        click.echo(f"  {rel}")
    click.echo("next:")
    click.echo(f"  pip install -e {path}        # then `etl plugins` lists it")
    click.echo(f"  python -m pytest {path}      # its tests pass as generated")


def _add_commands() -> None:
    """The commands that live in etl.commands (each module imports only click at the top)."""
    from etl.commands.check import config, validate
    from etl.commands.init import init
    from etl.commands.runs import rejects, runs
    from etl.commands.unlock import unlock

    for command in (init, validate, config, runs, rejects, unlock):
        cli.add_command(command)


_add_commands()


def main() -> None:
    try:
        cli(prog_name="etl")
    except BrokenPipeError:  # --help or a usage message into a closed pipe
        if not stdout_closed():
            raise
        end_on_closed_pipe()


if __name__ == "__main__":
    main()
