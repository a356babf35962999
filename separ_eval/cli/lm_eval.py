"""`separ-eval lm-eval`, `targets` and `tasks`: lm-eval's own command line with separ-eval plugged in, and
the listings of targets and tasks.

`separ-eval lm-eval ARGS` is `lm-eval ARGS` with the `separ` model registered and the
package's tasks/ on the include path (in front of the user's own --include_path).
`separ-eval targets` lists the targets; `separ-eval tasks [--check]` lists (and smoke-runs)
the package's tasks.
"""

from __future__ import annotations

import sys

import click

from .group import friendly_errors


def _yaml_include_path(args) -> str | None:
    """include_path from an lm-eval --config YAML (the CLI value would otherwise replace it)."""
    config = getattr(args, "config", None)
    if not config:
        return None
    from lm_eval.config.evaluate_config import EvaluatorConfig

    return EvaluatorConfig.load_yaml_config(config).get("include_path")


def run_lm_eval(argv: list[str]) -> None:
    """Run lm-eval's CLI (`lm-eval run|ls|validate ...`, or the legacy form without a subcommand)."""
    # lm-eval's public entry point (`lm_eval.__main__.cli_evaluate`) takes no arguments and its --include_path
    # holds one path; putting the package's tasks beside the user's needs the parsed args, so its CLI class is used.
    from lm_eval._cli import HarnessCLI
    from lm_eval.utils import setup_logging

    from ..lm_eval_ext import runner  # registers the `separ` model and the token_metrics request

    setup_logging()
    saved = sys.argv
    sys.argv = ["separ-eval lm-eval", *argv]
    try:
        parser = HarnessCLI()
        args = parser.parse_args()
    finally:
        sys.argv = saved
    if getattr(args, "command", None) is not None and hasattr(args, "include_path"):
        args.include_path = runner.task_paths(args.include_path or _yaml_include_path(args) or ())
    try:
        parser.execute(args)
    except ValueError as error:
        message = str(error)
        if message.startswith("Tasks not found:"):
            from lm_eval.tasks import TaskManager

            missing = [t.strip() for t in message.split(":", 1)[1].split(",") if t.strip()]
            manager = TaskManager(include_defaults=False, include_path=args.include_path)
            raise runner.unknown_task_error(missing, manager) from error
        raise


@click.command(
    "lm-eval",
    context_settings=dict(ignore_unknown_options=True, allow_extra_args=True, help_option_names=[]),
    short_help="Run lm-eval with the `separ` model and the separ-eval tasks.",
)
@click.pass_context
@friendly_errors
def lm_eval_command(ctx: click.Context) -> None:
    """lm-eval's command line, e.g.

    separ-eval lm-eval --model separ --model_args pretrained=smollm2-135m,masks=DIR --tasks separ_code --device cpu
    """
    run_lm_eval(list(ctx.args))


# ---------------------------------------------------------------------------- targets


@click.command("targets", short_help="List the prune targets (forget / retain corpora and tasks).")
@click.option("--include-path", "include_path", multiple=True, type=click.Path(exists=True),
              help="Another directory (or file) of target YAML; repeatable.")
@friendly_errors
def targets_command(include_path: tuple[str, ...]) -> None:
    """The targets `--prune-target` and `prune_target=` accept."""
    from rich.console import Console
    from rich.table import Table

    from ..targets import available_targets

    targets = available_targets(include_path)
    table = Table(title="separ-eval targets")
    for column in ("target", "forget (corpus: tasks)", "retain (corpus: tasks)", "description"):
        table.add_column(column)
    for name, target in sorted(targets.items()):
        label = name + (f" ({', '.join(target.aliases)})" if target.aliases else "")
        sides = [f"{s.label}: {', '.join(s.tasks) or '-'}" for s in (target.forget, target.retain)]
        table.add_row(label, *sides, target.description)
    Console().print(table)


# ---------------------------------------------------------------------------- tasks


@click.command("tasks", short_help="List (and with --check, smoke-run) the separ-eval lm-eval tasks.")
@click.option("--include-path", "include_path", multiple=True, type=click.Path(exists=True),
              help="Another directory of task YAML (as lm-eval's --include_path); repeatable.")
@click.option("--check", is_flag=True, help="Build every task and group with lm-eval and run it on a dummy model.")
@click.option("--hub", is_flag=True, help="With --check, also check the hub-backed ones (needs network).")
@click.option("--limit", default=2, show_default=True, help="Documents per task for --check.")
@friendly_errors
def tasks_command(include_path: tuple[str, ...], check: bool, hub: bool, limit: int) -> None:
    """The package's tasks and groups (and those in --include-path), ready for `separ-eval lm-eval --tasks`."""
    from rich.console import Console
    from rich.table import Table

    from ..lm_eval_ext.catalog import check_task, task_index, task_rows

    console = Console()
    rows = task_rows(include_path)
    table = Table(title="separ-eval lm-eval tasks" + (" (checked on a dummy model)" if check else ""))
    for column in ("name", "kind", "runs", "data", *(("check", "seconds") if check else ()), "file"):
        table.add_column(column, overflow="fold")
    failed = 0
    manager = None
    if check:
        manager = task_index(include_path, include_defaults=hub)
    for row in rows:
        cells = [row["name"], row["kind"], row["runs"], "hub" if row["hub"] else "offline"]
        if check:
            if row["hub"] and not hub:
                cells += ["skipped (hub; --hub)", "-"]
            else:
                result = check_task(row["name"], manager, limit)
                failed += not result["ok"]
                status = "[green]OK[/green] " if result["ok"] else "[red]error[/red] "
                cells += [status + result["detail"], f"{result['seconds']:.2f}"]
        table.add_row(*cells, row["path"])
    console.print(table)
    if failed:
        raise click.ClickException(f"{failed} task(s) failed the check; rerun with SEPAR_EVAL_DEBUG=1 for tracebacks.")
