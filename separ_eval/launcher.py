"""lm-eval's own command line with separ-eval plugged in, and listings of targets and tasks.

`separ-eval lm-eval ARGS` is `lm-eval ARGS` with the `separ` model registered and the
package's tasks/ on the include path (in front of the user's own --include_path).
`separ-eval targets` lists the targets; `separ-eval tasks [--check]` lists (and smoke-runs)
the package's tasks.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path

import click


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors whose message is the whole story (no traceback): bad input, named fix."""
    from .data import CorpusError
    from .harness import HarnessError
    from .models import ModelLoadError
    from .prune import MaskError
    from .targets import TargetError

    return (HarnessError, TargetError, MaskError, CorpusError, ModelLoadError)


def _yaml_include_path(args) -> str | None:
    """include_path from an lm-eval --config YAML (the CLI value would otherwise replace it)."""
    config = getattr(args, "config", None)
    if not config:
        return None
    from lm_eval.config.evaluate_config import EvaluatorConfig

    return EvaluatorConfig.load_yaml_config(config).get("include_path")


def run_lm_eval(argv: list[str]) -> None:
    """Run lm-eval's CLI (`lm-eval run|ls|validate ...`, or the legacy form without a subcommand)."""
    from lm_eval._cli import HarnessCLI
    from lm_eval.utils import setup_logging

    from . import harness  # registers the `separ` model and the token_metrics request

    setup_logging()
    saved = sys.argv
    sys.argv = ["separ-eval lm-eval", *argv]
    try:
        parser = HarnessCLI()
        args = parser.parse_args()
    finally:
        sys.argv = saved
    if getattr(args, "command", None) is not None and hasattr(args, "include_path"):
        args.include_path = harness.task_paths(args.include_path or _yaml_include_path(args) or ())
    try:
        parser.execute(args)
    except ValueError as error:
        message = str(error)
        if message.startswith("Tasks not found:"):
            from lm_eval.tasks import TaskManager

            missing = [t.strip() for t in message.split(":", 1)[1].split(",") if t.strip()]
            manager = TaskManager(include_defaults=False, include_path=args.include_path)
            raise harness.unknown_task_error(missing, manager) from error
        raise


@click.command(
    "lm-eval",
    context_settings=dict(ignore_unknown_options=True, allow_extra_args=True, help_option_names=[]),
    short_help="Run lm-eval with the `separ` model and the separ-eval tasks.",
)
@click.pass_context
def lm_eval_command(ctx: click.Context) -> None:
    """lm-eval's command line, e.g.

    separ-eval lm-eval --model separ --model_args pretrained=smollm2-135m,masks=DIR --tasks separ_code --device cpu
    """
    try:
        run_lm_eval(list(ctx.args))
    except _user_errors() as error:
        raise click.ClickException(str(error)) from error


# ---------------------------------------------------------------------------- targets


@click.command("targets", short_help="List the prune targets (forget / retain corpora and tasks).")
@click.option("--include-path", "include_path", multiple=True, type=click.Path(exists=True),
              help="Another directory (or file) of target YAML; repeatable.")
def targets_command(include_path: tuple[str, ...]) -> None:
    """The targets `--prune-target` and `prune_target=` accept."""
    from rich.console import Console
    from rich.table import Table

    from .targets import TargetError, available_targets

    try:
        targets = available_targets(include_path)
    except TargetError as error:
        raise click.ClickException(str(error)) from error
    table = Table(title="separ-eval targets")
    for column in ("target", "forget (corpus: tasks)", "retain (corpus: tasks)", "description"):
        table.add_column(column)
    for name, target in sorted(targets.items()):
        label = name + (f" ({', '.join(target.aliases)})" if target.aliases else "")
        sides = [f"{s.corpus}: {', '.join(s.tasks) or '-'}" for s in (target.forget, target.retain)]
        table.add_row(label, *sides, target.description)
    Console().print(table)


# ---------------------------------------------------------------------------- tasks


def _index(include_path=()):
    """lm-eval's index over the package's tasks and the include paths (lm-eval's own tasks left out)."""
    from lm_eval.tasks import TaskManager

    from .harness import task_paths

    return TaskManager(include_defaults=False, include_path=task_paths(include_path))


def task_rows(include_path=()) -> list[dict]:
    """name, kind, what it runs, hub or offline, and the defining file, for every task and group."""
    from lm_eval.tasks._index import Kind
    from lm_eval.tasks._yaml_loader import load_yaml

    manager = _index(include_path)
    rows = []
    for name, entry in sorted(manager.task_index.items()):
        if entry.kind == Kind.TAG:
            continue
        cfg = load_yaml(entry.yaml_path, resolve_func=False) if entry.yaml_path else (entry.cfg or {})
        metadata = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}
        if entry.kind == Kind.GROUP:
            members = cfg.get("task", [])
            members = members if isinstance(members, list) else [members]
            runs = ", ".join(m if isinstance(m, str) else str(m.get("task") or m.get("group")) for m in members)
            kind = "group"
        else:
            runs = cfg.get("output_type") or Path(str(cfg.get("class", "custom"))).suffix.lstrip(".") or "custom"
            if runs == "TokenMetricsTask":
                runs = "token_metrics"
            kind = "task"
        rows.append({
            "name": name, "kind": kind, "runs": runs, "hub": bool(metadata.get("hub")),
            "path": _short(entry.yaml_path),
        })
    return rows


def _short(path) -> str:
    from .paths import tasks_dir

    if path is None:
        return "-"
    try:
        return str(Path("tasks") / Path(path).resolve().relative_to(tasks_dir().resolve()))
    except ValueError:
        return str(path)


def _check_lm():
    """lm-eval's `dummy` model, plus fake token_metrics answers: checks task plumbing, not a model."""
    import random

    from lm_eval.models.dummy import DummyLM

    from .metrics import TokenCounts

    class CheckLM(DummyLM):
        def token_metrics(self, requests, disable_tqdm: bool = False):
            out = []
            for _ in requests:
                n = random.randint(50, 100)
                out.append(TokenCounts(n=n, top1=n // 4, top10=n // 2, skip_n=n // 2, skip_top1=n // 8,
                                       skip_top10=n // 4, loss_sum=n * random.uniform(2, 4)))
            return out

    return CheckLM()


def check_task(name: str, manager, limit: int = 2) -> dict:
    """Build `name` with lm-eval's TaskManager and evaluate it on the check model: {"ok", "seconds", "detail"}."""
    from lm_eval.evaluator import evaluate

    started = time.perf_counter()
    try:
        loaded = manager.load([name])
        for task in loaded["tasks"].values():
            if task.get_config("num_fewshot") is None:
                task.set_config(key="num_fewshot", value=0)
            task.set_fewshot_seed(seed=1234)
        results = evaluate(lm=_check_lm(), task_dict=loaded, limit=limit, bootstrap_iters=0, log_samples=False)
        metrics = sorted(k for values in results["results"].values() for k in values if "," in k and "_stderr" not in k)
        detail = f"{len(loaded['tasks'])} task(s); {', '.join(dict.fromkeys(m.split(',')[0] for m in metrics))}"
        ok = True
    except Exception as error:  # a check reports every failure, it does not stop at the first
        detail = f"{type(error).__name__}: {error}"
        if os.environ.get("SEPAR_EVAL_DEBUG"):
            traceback.print_exc()
        ok = False
    return {"ok": ok, "seconds": time.perf_counter() - started, "detail": detail}


@click.command("tasks", short_help="List (and with --check, smoke-run) the separ-eval lm-eval tasks.")
@click.option("--include-path", "include_path", multiple=True, type=click.Path(exists=True),
              help="Another directory of task YAML (as lm-eval's --include_path); repeatable.")
@click.option("--check", is_flag=True, help="Build every task and group with lm-eval and run it on a dummy model.")
@click.option("--hub", is_flag=True, help="With --check, also check the hub-backed ones (needs network).")
@click.option("--limit", default=2, show_default=True, help="Documents per task for --check.")
def tasks_command(include_path: tuple[str, ...], check: bool, hub: bool, limit: int) -> None:
    """The package's tasks and groups (and those in --include-path), ready for `separ-eval lm-eval --tasks`."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    rows = task_rows(include_path)
    table = Table(title="separ-eval lm-eval tasks" + (" (checked on a dummy model)" if check else ""))
    for column in ("name", "kind", "runs", "data", *(("check", "seconds") if check else ()), "file"):
        table.add_column(column, overflow="fold")
    failed = 0
    manager = None
    if check:
        from lm_eval.tasks import TaskManager

        from .harness import task_paths

        manager = TaskManager(include_defaults=hub, include_path=task_paths(include_path))
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
