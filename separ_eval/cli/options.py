"""The options of `run` and `sweep`: one per `Method` field (names, defaults, help and bounds read from the
model's fields), then the run's plumbing (model loading, tasks, devices, output)."""

from __future__ import annotations

import os
import typing
from pathlib import Path

import annotated_types
import click

from ..engine.method import Method, MethodError
from ..run.config import RunConfig

DEFAULT_RUN = RunConfig()
DEFAULT_OUTPUT = "results"
PER_UNIT_SCORINGS = ("ff_scoring", "attn_scoring")  # default None on the CLI, so --scoring can fill both


def choices(values) -> click.Choice:
    return click.Choice(list(values), case_sensitive=False)


def _scorings() -> list[str]:
    from ..engine.scoring import SCORINGS

    return list(SCORINGS)


def _bounds(field) -> tuple:
    low = next((m.ge for m in field.metadata if isinstance(m, annotated_types.Ge)), None)
    high = next((m.le for m in field.metadata if isinstance(m, annotated_types.Le)), None)
    return low, high


def _method_option(name: str, field) -> typing.Callable:
    flag = "--" + name.replace("_", "-")
    kind = field.annotation
    common = {"help": field.description, "default": field.default, "show_default": True}
    if kind is bool:
        return click.option(f"{flag}/--no-{flag[2:]}", **common)
    if typing.get_origin(kind) is typing.Literal:
        return click.option(flag, type=choices(typing.get_args(kind)), **common)
    if name in PER_UNIT_SCORINGS:
        return click.option(flag, type=choices(_scorings()), default=None,
                            help=f"{field.description}  [default: {field.default}]")
    low, high = _bounds(field)
    if kind is float:
        return click.option(flag, type=click.FloatRange(low, high), **common)
    if kind is int:
        return click.option(flag, type=click.IntRange(low, high) if low is not None or high is not None else int, **common)
    raise TypeError(f"Method field {name} has a type the CLI cannot offer: {kind}")  # pragma: no cover


def _method_options() -> list:
    options = []
    for name, field in Method.model_fields.items():
        if name == PER_UNIT_SCORINGS[0]:
            options.append(click.option("--scoring", type=choices(_scorings()), default=None,
                                        help="Score for both unit types (overridden by --ff-scoring / --attn-scoring)."))
        options.append(_method_option(name, field))
    return options


def _parse_max_memory(ctx, param, value):
    """'0=20GiB,1=20GiB,cpu=60GiB' -> {0: '20GiB', 1: '20GiB', 'cpu': '60GiB'} (accelerate's max_memory)."""
    if not value:
        return None
    from lm_eval.utils import simple_parse_args_string

    pairs = simple_parse_args_string(value)
    bad = [f"{device}={amount}" for device, amount in pairs.items() if not device or amount in ("", None)]
    if bad or not pairs:
        raise click.BadParameter(f"expected DEVICE=AMOUNT pairs like 0=20GiB,cpu=60GiB, got {value!r}.")
    return {int(device) if device.isdigit() else device: str(amount) for device, amount in pairs.items()}


def _run_options() -> list:
    from ..models import DTYPES

    r = DEFAULT_RUN
    return [
        click.option("--tasks", default=r.tasks, show_default=True, metavar="none|target|forget=a+b,retain=c",
                     help="lm-eval tasks to score: none, the target's own, or explicit lists."),
        click.option("--task-steps", default=r.task_steps, show_default=True, metavar="ends|all|0,2,5",
                     help="Steps at which the tasks run."),
        click.option("--task-limit", type=click.IntRange(min=1), default=r.task_limit,
                     help="At most this many documents per task (quick checks; not for published numbers)."),
        click.option("--include-path", "include_paths", multiple=True, type=click.Path(exists=True),
                     help="Extra folder of target / task YAML (repeatable)."),
        click.option("--device", default="auto", show_default=True, help="auto (cuda if available, else cpu), cpu, cuda, cuda:1, ..."),
        click.option("--dtype", type=choices(DTYPES), default=r.dtype, show_default=True),
        click.option("--batch-size", type=click.IntRange(min=1), default=r.batch_size,
                     help="Sequences per forward pass.  [default: 2 on CPU, 16 on a GPU]"),
        click.option("--output", default=DEFAULT_OUTPUT, show_default=True, type=click.Path(file_okay=False),
                     help="Folder for the results JSON, plot, and resumable run state (runs/)."),
        click.option("--device-map", default=None, metavar="auto|balanced|sequential",
                     help="Shard the model over the GPUs and CPU with accelerate (for models larger than one device)."),
        click.option("--max-memory", default=None, callback=_parse_max_memory, metavar="0=20GiB,cpu=60GiB",
                     help="With --device-map: memory per device."),
        click.option("--eval-backend", type=choices(("separ", "hf", "vllm")), default=r.eval_backend,
                     show_default=True,
                     help="Who scores --tasks: the in-process pruned model (separ), or lm-eval's hf / vllm backend "
                          "on a checkpoint exported at each task step (backend-agnostic tasks only)."),
        click.option("--backend-args", default=r.backend_args, metavar="k=v,...",
                     help="Extra model_args of the hf / vllm backend, e.g. tensor_parallel_size=2,data_parallel_size=2."),
        click.option("--model-id", default=None, metavar="NAME",
                     help="The name results record the model under.  [default: the embedded model's id, a local "
                          "folder's name, or the hub id]"),
        click.option("--revision", default=r.revision, help="Hub revision (branch, tag or commit) of the model."),
        click.option("--trust-remote-code", is_flag=True, help="Allow a hub model's own Python code to run."),
    ]


def _parse_seeds(ctx, param, value):
    if not value:
        return ()
    try:
        seeds = tuple(int(s) for s in value.split(",") if s.strip())
    except ValueError:
        raise click.BadParameter(f"expected seeds like 0,1,2, got {value!r}.") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise click.BadParameter(f"expected distinct non-negative seeds like 0,1,2, got {value!r}.")
    return seeds


def method_options(fn):
    """Every Method setting and the run's plumbing as options."""
    options = [
        click.option("--prune-target", "target", required=True, metavar="TARGET",
                     help="What to forget: a target name (`separ-eval targets` lists them, e.g. code, prose)."),
        click.option("--reverse", is_flag=True, help="Swap forget and retain (e.g. forget prose, keep code)."),
        *_method_options(),
        click.option("--seeds", callback=_parse_seeds, metavar="0,1,2",
                     help="Run once per seed (for `random`: which units; otherwise: which documents are read) and "
                          "report the band: mean, sd, range. One results file per seed."),
        *_run_options(),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _method(options: dict) -> Method:
    """The Method from the parsed options (consumes them); a bad combination is a usage error."""
    values = {name: options.pop(name) for name in Method.model_fields}
    values["scoring"] = options.pop("scoring")
    try:
        method = Method.from_dict(values)
    except MethodError as error:
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


def build_configs(model: str, options: dict) -> list[RunConfig]:
    """One RunConfig, or one per --seeds seed; bad values are usage errors."""
    from ..run.config import seeded

    o = dict(options)
    seeds = o.pop("seeds", ())
    config = build_config(model, o)
    return [seeded(config, seed) for seed in seeds] if seeds else [config]


def build_config(model: str, options: dict) -> RunConfig:
    """RunConfig from the parsed options; bad values are usage errors."""
    o = dict(options)
    o.pop("seeds", None)
    method = _method(o)
    if o.get("max_memory") and not o.get("device_map"):
        raise click.UsageError("--max-memory needs --device-map (e.g. --device-map auto).")
    return RunConfig(model=_model(model), method=method, device=_device(o.pop("device")),
                     include_paths=tuple(o.pop("include_paths")), **o)
