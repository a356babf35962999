"""The `separ-eval` command line: wires the loop, results and export together; no method logic here.

`separ-eval --model M --prune-target T` is `separ-eval run --model M --prune-target T`:
when the first argument is an option, the group hands everything to `run`.
Known failures (bad model, corpus, target, masks, settings) become one-line click
errors; set SEPAR_EVAL_DEBUG=1 to get the traceback instead.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import time
from dataclasses import fields
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from . import __version__
from .loop import RunConfig
from .method import ATTN_UNITS, Method

DEFAULT_METHOD = Method()
DEFAULT_RUN = RunConfig()
DEFAULT_OUTPUT = "results"
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
DEFAULT_COMMAND = "run"

# Commands that live in other modules, imported only when used (so `--help` stays fast and a
# missing or broken module costs only its own command): name -> (module, attribute, short help).
LAZY_COMMANDS = {
    "lm-eval": ("separ_eval.launcher", "lm_eval_command", "Run the lm-eval CLI with the `separ` pruned model."),
    "targets": ("separ_eval.launcher", "targets_command", "List the prune targets (forget / retain corpora and tasks)."),
    "tasks": ("separ_eval.launcher", "tasks_command", "List the lm-eval tasks that separ-eval ships."),
}


def _stderr() -> Console:
    return Console(stderr=True)


def _stdout() -> Console:
    return Console()


def _table_console() -> Console:
    """The leaderboard table has many columns: off a terminal (pipes, files) do not squeeze it into 80."""
    console = Console()
    return console if console.is_terminal else Console(width=max(console.width, 200))


# ---------------------------------------------------------------------------- errors


def _known_errors() -> tuple[type[BaseException], ...]:
    """Failures with a message meant for the user: shown without a traceback."""
    from . import arch, data, models, prune, results
    from .loop import RunError

    # ValueError covers the rest: TargetError, HarnessError, and Method's own checks.
    return (arch.ArchitectureError, data.CorpusError, models.ModelLoadError, prune.MaskError, RunError,
            results.ResultsError, FileExistsError, ValueError)


def _message(error: BaseException) -> str:
    return str(error) or type(error).__name__


def friendly_errors(fn):
    """Turn the package's known failures into click errors (exit 1, no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except click.ClickException:
            raise
        except _known_errors() as error:
            if os.environ.get("SEPAR_EVAL_DEBUG"):
                raise
            raise click.ClickException(_message(error)) from error

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
        f"{DEFAULT_RUN.model} model. See `separ-eval run --help` for the method's options."
    ),
)
@click.version_option(__version__, "--version", prog_name="separ-eval")
def cli():
    """Measure how separable the capabilities of a language model are, by selective pruning.

    Prunes the neurons specific to a forget set (e.g. code) while keeping those a retain set
    (e.g. prose) needs, evaluates both after every step, and reports the separability
    (SA, MDD, F@R5) as leaderboard JSON.
    """


# ---------------------------------------------------------------------------- method options


def _choices(values) -> click.Choice:
    return click.Choice(list(values), case_sensitive=False)


def _scorings() -> list[str]:
    from .scoring import SCORINGS

    return list(SCORINGS)


def method_options(fn):
    """Options for every Method setting (defaults read from Method()) and the run's plumbing."""
    from .models import DTYPES
    from .prune import OFFSETS

    m, r = DEFAULT_METHOD, DEFAULT_RUN
    fraction = click.FloatRange(0.0, 1.0)
    options = [
        click.option("--prune-target", "target", required=True, metavar="TARGET",
                     help="What to forget: a target name (`separ-eval targets` lists them, e.g. code, prose)."),
        click.option("--reverse", is_flag=True, help="Swap forget and retain (e.g. forget prose, keep code)."),
        click.option("--ff-frac", type=fraction, default=m.ff_frac, show_default=True,
                     help="Fraction of feed-forward neurons pruned per step."),
        click.option("--attn-frac", type=fraction, default=m.attn_frac, show_default=True,
                     help="Fraction of attention neurons (or heads) pruned per step."),
        click.option("--attn-unit", type=_choices(ATTN_UNITS), default=m.attn_unit, show_default=True,
                     help="Prune attention value neurons or whole heads."),
        click.option("--steps", type=click.IntRange(min=1), default=m.steps, show_default=True,
                     help="Number of prune-then-evaluate steps."),
        click.option("--scoring", type=_choices(_scorings()), default=None,
                     help="Score for both unit types (overridden by --ff-scoring / --attn-scoring)."),
        click.option("--ff-scoring", type=_choices(_scorings()), default=None,
                     help=f"Score of feed-forward neurons.  [default: {m.ff_scoring}]"),
        click.option("--attn-scoring", type=_choices(_scorings()), default=None,
                     help=f"Score of attention neurons / heads.  [default: {m.attn_scoring}]"),
        click.option("--offset", type=_choices(OFFSETS), default=m.offset, show_default=True,
                     help="zero: remove units; mean: keep their retain mean in the bias."),
        click.option("--recollect/--no-recollect", default=m.recollect, show_default=True,
                     help="Recollect statistics on the pruned model every step, or once (cumulative fractions)."),
        click.option("--collect-tokens", type=click.IntRange(min=1), default=m.collect_tokens, show_default=True,
                     help="Tokens per corpus for the statistics."),
        click.option("--eval-tokens", type=click.IntRange(min=1), default=m.eval_tokens, show_default=True,
                     help="Tokens per corpus for the metrics (held-out split)."),
        click.option("--block-len", type=click.IntRange(min=2), default=m.block_len, show_default=True,
                     help="Tokens per packed sequence."),
        click.option("--seed", type=int, default=m.seed, show_default=True, help="Seed of the random scoring."),
        click.option("--tasks", default=r.tasks, show_default=True, metavar="none|target|forget=a+b,retain=c",
                     help="lm-eval tasks to score: none, the target's own, or explicit lists."),
        click.option("--task-steps", default=r.task_steps, show_default=True, metavar="ends|all|0,2,5",
                     help="Steps at which the tasks run."),
        click.option("--task-limit", type=click.IntRange(min=1), default=r.task_limit,
                     help="At most this many documents per task (quick checks; not for published numbers)."),
        click.option("--include-path", "include_paths", multiple=True, type=click.Path(exists=True),
                     help="Extra folder of target / task YAML (repeatable)."),
        click.option("--device", default="auto", show_default=True, help="auto (cuda if available, else cpu), cpu, cuda, cuda:1, ..."),
        click.option("--dtype", type=_choices(DTYPES), default=r.dtype, show_default=True),
        click.option("--batch-size", type=click.IntRange(min=1), default=r.batch_size,
                     help="Sequences per forward pass.  [default: 2 on CPU, 16 on a GPU]"),
        click.option("--output", default=DEFAULT_OUTPUT, show_default=True, type=click.Path(file_okay=False),
                     help="Folder for the results JSON, plot, and resumable run state (runs/)."),
        click.option("--device-map", default=None, metavar="auto|balanced|sequential",
                     help="Shard the model over the GPUs and CPU with accelerate (for models larger than one device)."),
        click.option("--max-memory", default=None, callback=_parse_max_memory, metavar="0=20GiB,cpu=60GiB",
                     help="With --device-map: memory per device."),
        click.option("--eval-backend", type=_choices(("separ", "hf", "vllm")), default=r.eval_backend,
                     show_default=True,
                     help="Who scores --tasks: the in-process pruned model (separ), or lm-eval's hf / vllm backend "
                          "on a checkpoint exported at each task step (backend-agnostic tasks only)."),
        click.option("--backend-args", default=r.backend_args, metavar="k=v,...",
                     help="Extra model_args of the hf / vllm backend, e.g. tensor_parallel_size=2,data_parallel_size=2."),
        click.option("--revision", default=r.revision, help="Hub revision (branch, tag or commit) of the model."),
        click.option("--trust-remote-code", is_flag=True, help="Allow a hub model's own Python code to run."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _parse_max_memory(ctx, param, value):
    """'0=20GiB,1=20GiB,cpu=60GiB' -> {0: '20GiB', 1: '20GiB', 'cpu': '60GiB'} (accelerate's max_memory)."""
    if not value:
        return None
    out = {}
    for item in value.split(","):
        device, sep, amount = item.partition("=")
        if not sep or not device.strip() or not amount.strip():
            raise click.BadParameter(f"expected DEVICE=AMOUNT pairs like 0=20GiB,cpu=60GiB, got {item!r}.")
        device = device.strip()
        out[int(device) if device.isdigit() else device] = amount.strip()
    return out


def _device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _method(options: dict) -> Method:
    """The Method from the parsed options (consumes them); a bad combination is a usage error."""
    scoring = options.pop("scoring")
    ff_scoring = options.pop("ff_scoring") or scoring or DEFAULT_METHOD.ff_scoring
    attn_scoring = options.pop("attn_scoring") or scoring or DEFAULT_METHOD.attn_scoring
    names = {f.name for f in fields(Method)} - {"ff_scoring", "attn_scoring"}
    try:
        method = Method(ff_scoring=ff_scoring, attn_scoring=attn_scoring, **{k: options.pop(k) for k in names})
    except ValueError as error:
        raise click.UsageError(str(error)) from error
    if method.ff_frac == 0 and method.attn_frac == 0:
        raise click.UsageError("Nothing to prune: set --ff-frac or --attn-frac above 0.")
    return method


def _model(model: str) -> str:
    model = os.path.expanduser(model)
    if model.startswith((os.sep, ".")) and not Path(model).exists():
        raise click.BadParameter(f"no such folder: {model}. Give a checkpoint folder, a hub id, or "
                                 f"{DEFAULT_RUN.model}.", param_hint="'--model'")
    return model


def build_config(model: str, options: dict) -> RunConfig:
    """RunConfig from the parsed options; bad values are usage errors."""
    o = dict(options)
    method = _method(o)
    if o.get("max_memory") and not o.get("device_map"):
        raise click.UsageError("--max-memory needs --device-map (e.g. --device-map auto).")
    return RunConfig(model=_model(model), method=method, device=_device(o.pop("device")),
                     include_paths=tuple(o.pop("include_paths")), **o)


# ---------------------------------------------------------------------------- run


class RunDisplay:
    """Progress fed by the loop's (phase, step, tokens) callback: live bars on a terminal, else a line per phase."""

    def __init__(self, run, console: Console):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.steps = run.config.method.steps
        self.totals = {
            "collect": run.forget.collect.n_tokens + run.retain.collect.n_tokens,
            "evaluate": run.forget.evaluate.n_tokens + run.retain.evaluate.n_tokens,
        }
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.fields[count]}"),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
            console=console, disable=not console.is_terminal,
        )
        self.overall = self.progress.add_task("run", total=self.steps + 1, count="", rate="")
        self.phase_task = self.progress.add_task("", total=None, count="", rate="")
        self.current: tuple[str, int] | None = None
        self.started, self.tokens, self.reported = 0.0, 0, False

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self._finish_phase()
        self.progress.update(self.overall, completed=self.steps + 1 if exc[0] is None else None)
        self.progress.stop()

    def _finish_phase(self) -> None:
        """Off a terminal (logs, pipes) there are no live bars: one line per finished phase."""
        if self.current is None or self.reported or self.console.is_terminal:
            return
        self.reported = True
        phase, step = self.current
        seconds = time.perf_counter() - self.started
        rate = f", {self.tokens / seconds:,.0f} tok/s" if self.tokens and seconds > 0 else ""
        self.console.print(f"step {step}/{self.steps} {phase}: {self.tokens:,} tokens in {seconds:.1f} s{rate}",
                           highlight=False)

    def __call__(self, phase: str, step: int, n_tokens: int) -> None:
        if (phase, step) != self.current:
            self._finish_phase()
            self.current, self.started, self.tokens, self.reported = (phase, step), time.perf_counter(), 0, False
            self.progress.update(self.overall, completed=step, description=f"step {step}/{self.steps}",
                                 count=f"{step}/{self.steps + 1} evaluated")
            self.progress.reset(self.phase_task, total=self.totals.get(phase), description=phase, count="", rate="")
        self.tokens += n_tokens
        if n_tokens:
            self.progress.advance(self.phase_task, n_tokens)
        if self.totals.get(phase) and self.tokens >= self.totals[phase]:
            self._finish_phase()
        task = self.progress.tasks[self.phase_task]
        total = f"/{task.total:,.0f}" if task.total else ""
        rate = f"{task.speed:,.0f} tok/s" if task.speed else ""
        self.progress.update(self.phase_task, count=f"{task.completed:,.0f}{total} tok", rate=rate)


def _fmt(value, percent: bool = False) -> str:
    if value is None:
        return ""
    return f"{100 * value:.1f}%" if percent else f"{value:.3f}"


TRAJECTORY_METRICS = (("top1", "top1"), ("top10", "top10"), ("skip50_top1", "s50t1"), ("loss", "loss"))


def trajectory_table(obj: dict) -> Table:
    from rich import box

    target = obj["target"]
    table = Table(
        title=Text(f"Trajectory: forget {target['forget']} (F), retain {target['retain']} (R)"),
        box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, collapse_padding=True,
    )
    for header in ("\nstep", "ff\n%", "attn\n%"):
        table.add_column(header, justify="right", no_wrap=True)
    for side in ("F", "R"):
        for _, short in TRAJECTORY_METRICS:
            table.add_column(f"{side}\n{short}", justify="right", no_wrap=True, min_width=5)
    for record in obj["trajectory"]:
        row = [str(record["step"]), f"{100 * record['pruned']['ff']:.1f}", f"{100 * record['pruned']['attn']:.1f}"]
        row += [_fmt(record[side].get(name)) for side in ("forget", "retain") for name, _ in TRAJECTORY_METRICS]
        table.add_row(*row)
    return table


def summary_table(obj: dict) -> Table:
    table = Table(title="Separability (SA: 1 perfect, ~0 random)")
    table.add_column("metric")
    for header in ("SA", "MDD", "F@R5"):
        table.add_column(header, justify="right")
    for metric, values in obj["summary"].items():
        table.add_row(Text(metric), *(_fmt(values.get(k)) for k in ("sa", "mdd", "f_at_r5")))
    return table


def print_report(obj: dict, path: Path | None, console: Console) -> None:
    console.print(trajectory_table(obj))
    console.print(summary_table(obj))
    if path is not None:
        console.print(f"Results: {path}", highlight=False, soft_wrap=True)  # a path must stay one line
        png = path.with_suffix(".png")
        if png.exists():
            console.print(f"Plot:    {png}", highlight=False, soft_wrap=True)


def execute(config: RunConfig, err: Console):
    """Prepare and run one configuration with the progress display; returns (results, path)."""
    from transformers.utils import logging as hf_logging

    from .loop import Run

    hf_logging.disable_progress_bar()  # the status line below says what is loading
    with err.status(f"Loading {config.model} and the {config.target} corpora..."):
        run = Run(config, log=lambda message: err.print(message, highlight=False))
    with RunDisplay(run, err) as display:
        run.progress = display
        return run.execute()


@cli.command(context_settings=CONTEXT)
@click.option("--model", default=DEFAULT_RUN.model, show_default=True, metavar="MODEL",
              help="Hub id, local checkpoint folder, or the embedded alias smollm2-135m.")
@method_options
@friendly_errors
def run(model, **options):
    """Prune step by step and report how separable forget and retain are.

    Re-running the same command after an interruption resumes from the last finished step.
    """
    config = build_config(model, options)
    obj, path = execute(config, _stderr())
    print_report(obj, path, _stdout())


# ---------------------------------------------------------------------------- sweep


def _planned_path(config: RunConfig) -> Path:
    from .loop import planned_name

    return Path(config.output) / f"{planned_name(config)}.json"


def _finished(path: Path, config: RunConfig) -> bool:
    """A results file of exactly this run already exists and validates."""
    from .results import ResultsError, load_results

    if not path.exists():
        return False
    try:
        obj = load_results(path)
    except ResultsError:
        return False
    return obj["method"] == config.method.as_dict() and obj["target"]["reversed"] == config.reverse


@cli.command(context_settings=CONTEXT)
@click.option("--models", required=True, metavar="A,B,C", help="Comma-separated models, run one after another.")
@method_options
@friendly_errors
def sweep(models, **options):
    """Run several models with the same method, then print their leaderboard.

    A model whose results file already exists (and validates) is skipped; a model that
    fails is reported and the sweep goes on. Exit code 1 if any model failed.
    """
    from .results import leaderboard_rows, load_results, render

    names = [m.strip() for m in models.split(",") if m.strip()]
    if not names:
        raise click.UsageError("--models needs at least one model.")
    build_config(DEFAULT_RUN.model, options)  # settings errors stop the sweep before any model runs
    console, err = _stdout(), _stderr()
    produced, failed = [], []
    for index, name in enumerate(names, 1):
        err.rule(Text(f"{index}/{len(names)}: {name}"))
        try:
            config = build_config(name, options)
            path = _planned_path(config)
            if _finished(path, config):
                err.print(f"{name}: already done ({path}), skipped.", highlight=False)
                produced.append(path)
                continue
            obj, path = execute(config, err)
            console.print(summary_table(obj))
            produced.append(path)
        except KeyboardInterrupt:
            raise
        except Exception as error:  # one model's failure must not end the sweep
            if os.environ.get("SEPAR_EVAL_DEBUG"):
                raise
            message = error.format_message() if isinstance(error, click.ClickException) else _message(error)
            failed.append((name, message))
            err.print(Text(f"{name} failed: {message}", style="red"))
    rows = leaderboard_rows([load_results(p) for p in produced if p is not None])
    if rows:
        _table_console().print(render(rows, "table"))
    for name, message in failed:
        err.print(Text(f"failed: {name}: {message}", style="red"))
    if failed:
        sys.exit(1)


# ---------------------------------------------------------------------------- leaderboard, validate


@cli.command(context_settings=CONTEXT)
@click.argument("directory", default=DEFAULT_OUTPUT, type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=_choices(("table", "md", "json", "html")), default="table", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, writable=True), help="Write to this file instead of stdout.")
def leaderboard(directory, fmt, out):
    """Validate every results JSON in DIRECTORY and render the leaderboard.

    Invalid or foreign JSON files are named in a warning and skipped.
    """
    from .results import collect, leaderboard_rows, render

    err = _stderr()
    if not Path(directory).is_dir():
        raise click.ClickException(f"No results folder {directory!r}: give the --output folder of your runs.")
    found, bad = collect(directory)
    for path, reason in bad:
        first = reason.splitlines()[1].strip(" -") if len(reason.splitlines()) > 1 else reason
        click.secho(f"warning: skipped {path}: {first}", fg="yellow", err=True)
    if not found:
        raise click.ClickException(f"No valid results files in {directory}.")
    rendered = render(leaderboard_rows(found), fmt)
    if fmt == "table":
        if out:
            with open(out, "w", encoding="utf-8") as handle:
                Console(file=handle, width=200).print(rendered)
        else:
            _table_console().print(rendered)
        return
    if out:
        Path(out).write_text(rendered if rendered.endswith("\n") else rendered + "\n", encoding="utf-8")
    else:
        click.echo(rendered.rstrip("\n"))


@cli.command(context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path())
def validate(files):
    """Check results files against the schema (a folder means its *.json). Exit 1 if any is invalid."""
    from .results import ResultsError, load_results

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


# ---------------------------------------------------------------------------- export


def _masks_dir(path: Path) -> Path:
    """A masks folder, or a run folder (its last saved step)."""
    if (path / "masks.safetensors").exists():
        return path
    steps = sorted((path / "masks").glob("step-*")) if (path / "masks").is_dir() else []
    return steps[-1] if steps else path


@cli.command(context_settings=CONTEXT)
@click.option("--model", required=True, metavar="MODEL", help="The unpruned model the masks were computed on.")
@click.option("--masks", "masks_path", required=True, type=click.Path(exists=True, file_okay=False),
              help="A masks folder (masks.safetensors + masks.json), or a run folder (its last step).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the pruned checkpoint.")
@click.option("--overwrite", is_flag=True, help="Write into --out even if it is not empty.")
@click.option("--dtype", type=_choices(("float32", "bfloat16", "float16")), default=DEFAULT_RUN.dtype, show_default=True)
@click.option("--revision", default=None, help="Hub revision of the model.")
@click.option("--trust-remote-code", is_flag=True, help="Allow a hub model's own Python code to run.")
@friendly_errors
def export(model, masks_path, out, overwrite, dtype, revision, trust_remote_code):
    """Bake masks into MODEL and save an ordinary checkpoint (loads with AutoModelForCausalLM)."""
    from . import arch, models, prune

    out_dir = Path(out)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise click.ClickException(f"{out_dir} is not empty: choose another --out, or pass --overwrite.")
    err = _stderr()
    with err.status(f"Loading {model}..."):
        loaded, tokenizer, _ = models.load(model, dtype=dtype, revision=revision, trust_remote_code=trust_remote_code)
    model_map = arch.map_model(loaded)
    masks = prune.Masks.load(_masks_dir(Path(masks_path)))
    masks.check_compatible(model_map, prune.model_signature(loaded))
    prune.apply(model_map, masks)
    prune.export(loaded, tokenizer, masks, out_dir)
    fractions = ", ".join(f"{u} {100 * masks.fraction(u):.1f}%" for u in masks.pruned)
    _stdout().print(f"Exported {model} pruned ({fractions}) to {out_dir}", highlight=False)


def main(argv=None):
    cli.main(args=argv, prog_name=cli.name)


if __name__ == "__main__":
    main()
