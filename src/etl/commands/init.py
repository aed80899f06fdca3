"""``etl init``: a first pipeline file, from what is in a folder."""

from __future__ import annotations

import click

from etl.commands.options import command_options


@click.command()
@click.argument("source", default=".", required=False)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default="pipeline.toml",
    show_default=True,
    help="the pipeline file to write",
)
@click.option("--force", is_flag=True, help="overwrite the file if it exists")
@command_options
def init(source: str, output: str, force: bool, verbose: int, disable: tuple[str, ...]) -> None:
    """Write a commented pipeline file for SOURCE (a folder, a file or a URL; default: here).

    It looks at what is there (file types; the keys of JSON Lines and CSV records) and
    writes a pipeline that runs as it is: `etl run pipeline.toml`.
    """
    from etl.init_pipeline import init_pipeline

    path, inputs = init_pipeline(source, output, force=force, disable=disable)
    click.echo(f"wrote {path} ({inputs} inputs)")
    click.echo(f"  next: etl validate {path}   # then: etl run {path}")
