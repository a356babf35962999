"""The `separ-eval` command group: routing (`separ-eval --opts` is `run`), lazy commands, and user errors.

Known failures (bad model, corpus, target, masks, settings) become one-line click
errors; set SEPAR_EVAL_DEBUG=1 to get the traceback instead.
"""

from __future__ import annotations

import functools
import importlib
import os

import click
from rich.console import Console

from .. import __version__
from ..errors import SeparEvalError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
DEFAULT_COMMAND = "run"
DEFAULT_MODEL = "smollm2-135m"

# Commands whose modules import lm-eval (seconds), imported only when used, so `--help` stays fast and a
# missing or broken module costs only its own command: name -> (module, attribute, short help).
LAZY_COMMANDS = {
    "lm-eval": ("separ_eval.cli.lm_eval", "lm_eval_command", "Run the lm-eval CLI with the `separ` pruned model."),
    "targets": ("separ_eval.cli.lm_eval", "targets_command", "List the prune targets (forget / retain corpora and tasks)."),
    "tasks": ("separ_eval.cli.lm_eval", "tasks_command", "List the lm-eval tasks that separ-eval ships."),
}


def stderr() -> Console:
    return Console(stderr=True)


def stdout() -> Console:
    return Console()


def wide_console() -> Console:
    """The leaderboard table has many columns: off a terminal (pipes, files) do not squeeze it into 80."""
    console = Console()
    return console if console.is_terminal else Console(width=max(console.width, 200))


# ---------------------------------------------------------------------------- errors


def message(error: BaseException) -> str:
    return str(error) or type(error).__name__


def friendly_errors(fn):
    """A SeparEvalError becomes a click error (exit 1, its message, no traceback); anything else is a bug and
    keeps its traceback. SEPAR_EVAL_DEBUG=1 shows the traceback of user errors too."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SeparEvalError as error:
            if os.environ.get("SEPAR_EVAL_DEBUG"):
                raise
            raise click.ClickException(message(error)) from error

    return wrapper


# ---------------------------------------------------------------------------- the group


class DefaultGroup(click.Group):
    """A group that runs `run` when the first argument is an option, and imports some commands lazily."""

    def parse_args(self, ctx, args):
        if args and args[0].startswith("-") and args[0] not in (*CONTEXT["help_option_names"], "--version"):
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)

    def list_commands(self, ctx):
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is not None or name not in LAZY_COMMANDS:
            return command
        module_name, attribute, short = LAZY_COMMANDS[name]
        try:
            command = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as error:
            return _unavailable(name, short, error)
        return command

    def format_commands(self, ctx, formatter):
        """Short help without importing the lazy commands' modules."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(map(len, names))
        rows = []
        for name in names:
            if name in LAZY_COMMANDS and name not in self.commands:
                rows.append((name, LAZY_COMMANDS[name][2]))
            elif not self.commands[name].hidden:
                rows.append((name, self.commands[name].get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _unavailable(name: str, short: str, error: BaseException) -> click.Command:
    @click.command(name, help=short, context_settings={**CONTEXT, "ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(args):
        raise click.ClickException(f"`separ-eval {name}` is unavailable: {error}")

    return command


@click.group(
    "separ-eval",
    cls=DefaultGroup,
    context_settings=CONTEXT,
    epilog=(
        "Without a command, options go to `run`: `separ-eval --prune-target code` prunes the embedded "
        f"{DEFAULT_MODEL} model. See `separ-eval run --help` for the method's options."
    ),
)
@click.version_option(__version__, "--version", prog_name="separ-eval")
def cli():
    """Measure how separable the capabilities of a language model are, by selective pruning.

    Prunes the neurons specific to a forget set (e.g. code) while keeping those a retain set
    (e.g. prose) needs, evaluates both after every step, and reports the separability
    (SA, MDD, F@R5) as leaderboard JSON.
    """
