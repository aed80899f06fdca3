"""``etl runs`` and ``etl rejects``: a dataset's history and its rejects, without SQL."""

from __future__ import annotations

import json
from typing import Any

import click

from etl.commands.options import DatasetPath, command_options


def _when(iso: str | None) -> str:
    """``2026-11-26 20:27:33`` (UTC) from an ISO time; ``?`` when there is none."""
    return (iso or "?")[:19].replace("T", " ")


def _seconds(value: float | None) -> str:
    if value is None:
        return "?"
    if value < 60:
        return f"{value:.2f} s"
    minutes, seconds = divmod(int(value), 60)
    return (
        f"{minutes} min {seconds:02d} s"
        if minutes < 60
        else f"{minutes // 60} h {minutes % 60:02d} min"
    )


@click.command()
@click.argument("dataset", type=DatasetPath(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@command_options
def runs(dataset: str, as_json: bool, verbose: int, disable: tuple[str, ...]) -> None:
    """List the runs committed into DATASET: when, how long, what they did, who ran them."""
    from etl.history import list_runs

    lines = list_runs(dataset)
    if as_json:
        click.echo(json.dumps(lines, indent=1, default=str))
        return
    for r in lines:
        who = "@".join(x for x in (r.get("user"), r.get("host")) if x) or "?"
        click.echo(
            f"{r['run_id']}  {_when(r['started_at'])}  {_seconds(r['duration_s'])}"
            + ("  (no change)" if not r["changed"] else "")
        )
        click.echo(
            f"    {r['inputs']} inputs, {r['read']} read, {r['written']} written, "
            f"{r['duplicates']} duplicates, {r['reread']} re-read, {r['dropped']} dropped, "
            f"{r['rejected']} rejected" + (f", {r['replaced']} replaced" if r["replaced"] else "")
        )
        click.echo(f"    {r['pipeline_file'] or '(no pipeline file)'}  by {who}")
    unchanged = sum(not r["changed"] for r in lines)
    click.echo(
        f"{len(lines)} runs" + (f", {unchanged} of them changed nothing" if unchanged else "")
    )


@click.command()
@click.argument("dataset", type=DatasetPath(file_okay=False))
@click.option("--run", "run_id", metavar="ID", help="one run: its id, a prefix of it, or 'last'")
@click.option("--reason", metavar="R", help="one reason (as the summary names it)")
@click.option("--limit", default=50, show_default=True, help="rejects to list (0: all)")
@click.option("--json", "as_json", is_flag=True, help="every matching reject as JSON")
@command_options
def rejects(
    dataset: str,
    run_id: str | None,
    reason: str | None,
    limit: int,
    as_json: bool,
    verbose: int,
    disable: tuple[str, ...],
) -> None:
    """List the rejects of DATASET: which input, where in it, why, and by which plugin."""
    from etl.history import read_rejects, rejects_by_reason

    table = read_rejects(dataset, run=run_id, reason=reason)
    if as_json:
        click.echo(json.dumps(table.to_pylist(), indent=1, default=str))
        return
    if not table.num_rows:
        click.echo("no rejects" + (f" with reason {reason!r}" if reason else ""))
        return
    summary = ", ".join(f"{e['count']} {e['reason']}" for e in rejects_by_reason(table))
    click.echo(f"{table.num_rows} rejects: {summary}")
    shown = table if limit <= 0 else table.slice(0, limit)
    for row in shown.to_pylist():
        click.echo(_reject_line(row))
    if shown.num_rows < table.num_rows:
        click.echo(f"... and {table.num_rows - shown.num_rows} more (--limit 0 lists all)")


def _reject_line(row: dict[str, Any]) -> str:
    where = row["input"] + (f" ({row['location']})" if row.get("location") else "")
    detail = (row.get("detail") or "").replace("\n", " ")
    detail = f": {detail[:100]}" + ("…" if len(detail) > 100 else "") if detail else ""
    return f"  {row['reason']}  {where}  [{row['plugin']}]{detail}"
