"""`separ-eval leaderboard` and `separ-eval validate`: read results files, render or check them."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from .group import CONTEXT, cli, wide_console
from .options import DEFAULT_OUTPUT, choices


@cli.command(context_settings=CONTEXT)
@click.argument("directory", default=DEFAULT_OUTPUT, type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=choices(("table", "md", "json", "html")), default="table", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, writable=True), help="Write to this file instead of stdout.")
@click.option("--target", "targets", multiple=True, metavar="TAG",
              help="Only these targets (e.g. code, code-reversed); repeatable.")
def leaderboard(directory, fmt, out, targets):
    """Validate every results JSON in DIRECTORY and render the leaderboard.

    Invalid or foreign JSON files are named in a warning and skipped.
    """
    from ..report.leaderboard import leaderboard_rows
    from ..report.render import render
    from ..report.store import collect_results

    if not Path(directory).is_dir():
        raise click.ClickException(f"No results folder {directory!r}: give the --output folder of your runs.")
    found, bad = collect_results(directory)
    for path, reason in bad:
        first = reason.splitlines()[1].strip(" -") if len(reason.splitlines()) > 1 else reason
        click.secho(f"warning: skipped {path}: {first}", fg="yellow", err=True)
    if not found:
        raise click.ClickException(f"No valid results files in {directory}.")
    rows = [row for row in leaderboard_rows(found) if not targets or row["target"] in targets]
    if not rows:
        raise click.ClickException(f"No results for target(s) {', '.join(targets)} in {directory}.")
    if fmt == "html":  # the page: every run, seed bands, curves per target, each run's detail
        from ..report.naming import target_tag
        from ..report.page import render_page

        rendered = render_page([(p, r) for p, r in found
                                if not targets or target_tag(r.target.name, r.target.reversed) in targets])
    else:
        rendered = render(rows, fmt)
    if fmt == "table":
        if out:
            with open(out, "w", encoding="utf-8") as handle:
                Console(file=handle, width=200).print(rendered)
        else:
            wide_console().print(rendered)
        return
    if out:
        Path(out).write_text(rendered if rendered.endswith("\n") else rendered + "\n", encoding="utf-8")
    else:
        click.echo(rendered.rstrip("\n"))


@cli.command(context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path())
def validate(files):
    """Check results files against the schema (a folder means its *.json). Exit 1 if any is invalid."""
    from ..report.schema import ResultsError
    from ..report.store import load_results

    paths = []
    for name in files:
        path = Path(name)
        paths.extend(sorted(path.glob("*.json")) if path.is_dir() else [path])
    invalid = 0
    for path in paths:
        try:
            load_results(path)
        except ResultsError as error:
            invalid += 1
            click.echo(str(error), err=True)
        else:
            click.echo(f"ok: {path}")
    if not paths:
        raise click.ClickException("No results files found.")
    if invalid:
        click.echo(f"{invalid} of {len(paths)} file(s) invalid.", err=True)
        sys.exit(1)
