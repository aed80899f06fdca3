"""``etl unlock DATASET``: remove a writer lock whose holder is gone, with a check.

A lock is removed at once when its holder is a dead process of this host or a process
elsewhere whose lease ran out (what the next run would do by itself). A lock whose lease is
still running, or one taken without a lease (by an older etl), is removed only with
``--force``; a live process of this host never is (stop it first).
"""

from __future__ import annotations

import click

from etl.commands.options import DatasetPath, command_options


@click.command()
@click.argument("dataset", type=DatasetPath(file_okay=False, exists=True))
@click.option(
    "--force",
    is_flag=True,
    help="remove the lock even if its lease has not run out (its holder must be gone)",
)
@command_options
def unlock(dataset: str, force: bool, verbose: int, disable: tuple[str, ...]) -> None:
    """Remove DATASET's writer lock if the run that holds it is gone."""
    import socket

    from etl.errors import ConfigError, RunError
    from etl.store import Store

    store = Store(dataset)
    lock = store.lock
    holder = lock.read()
    if holder is None:
        if not store.root.is_dir():  # a typo in the path is not an unlocked dataset
            raise ConfigError(
                f"no dataset at {dataset}", hint="give the folder or URL a [sink] path points to"
            )
        click.echo(f"{dataset}: not locked")
        return
    who = (
        f"run {holder.get('run_id')} (host {holder.get('host')}, pid {holder.get('pid')}, "
        f"started {holder.get('started_at')})"
    )
    removed = lock.break_stale()
    if removed is not None:
        click.echo(f"{dataset}: removed the lock of {who}, which is gone")
        return
    if lock.read() is None:  # its holder let go meanwhile
        click.echo(f"{dataset}: not locked")
        return
    here = holder.get("host") == socket.gethostname()
    if here:
        raise RunError(
            f"dataset {dataset} is locked by {who}, a live process of this host",
            hint=f"stop it (kill {holder.get('pid')}); its lock goes with it",
        )
    age = lock.age() or 0.0
    lease = holder.get("lease")
    state = (
        f"its lease of {lease:g} s was renewed {age:.0f} s ago"
        if isinstance(lease, int | float)
        else "it was taken without a lease (by an older etl), so it never runs out"
    )
    if not force:
        raise RunError(
            f"dataset {dataset} is locked by {who}; {state}: it may still be writing",
            hint="make sure that run is gone (its host down, its process killed), then "
            f"`etl unlock --force {dataset}`"
            + (f", or wait {max(lease - age, 0):.0f} s" if isinstance(lease, int | float) else ""),
        )
    if not lock.force(holder):
        raise RunError(
            f"dataset {dataset}: the lock changed while it was being removed; look again"
        )
    click.echo(f"{dataset}: removed the lock of {who} (forced; {state})")
