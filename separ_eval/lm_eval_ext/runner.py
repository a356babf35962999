"""Running lm-eval tasks: the task index over the package's and the user's task YAML, and evaluation
through the `separ` model (in process) or lm-eval's `hf` / `vllm` backends (on an exported checkpoint)."""

from __future__ import annotations

import importlib.util

from ..engine import arch
from ..errors import SeparEvalError
from ..resources import tasks_dir
from .tasks import REQUEST_TYPE


class TaskError(SeparEvalError, ValueError):
    """An unknown task or backend; the message names the fix."""


def task_paths(user_paths=()) -> list[str]:
    """The package's tasks/ first, then the user's paths (later ones override earlier task names)."""
    from ..targets import split_paths

    return [str(tasks_dir()), *split_paths(user_paths)]


def _member_names(cfg: dict) -> list:
    members = cfg.get("task", [])
    return members if isinstance(members, list) else [members]


def _resolvable(name: str, manager, seen: set | None = None) -> bool:
    """Whether `name` and everything it contains are in `manager`'s index (so lm-eval's own tasks are not needed)."""
    index = manager.task_index
    seen = set() if seen is None else seen
    if name in seen:
        return True
    seen.add(name)
    entry = index.get(name)
    if entry is None:
        return False
    if name in manager.all_tags:
        return all(t in index for t in entry.tags)
    if name not in manager.all_groups:
        return True
    for item in _member_names(entry.cfg or {}):
        if isinstance(item, str) and not _resolvable(item, manager, seen):
            return False
        if isinstance(item, dict):
            ref = item.get("group") or item.get("task")
            if ref in index and not _resolvable(ref, manager, seen):
                return False
            if "group" in item and ref not in index and not all(
                _resolvable(m, manager, seen) for m in _member_names(item) if isinstance(m, str)
            ):
                return False
    return True


def unknown_task_error(names, task_manager) -> TaskError:
    import difflib

    known = task_manager.all_tasks
    hints = []
    for name in names:
        close = difflib.get_close_matches(name, known, n=3)
        hints.append(f"{name!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
    return TaskError(
        f"Unknown task {', '.join(hints)}. List the package's tasks with `separ-eval tasks` and lm-eval's with "
        "`separ-eval lm-eval ls tasks`; add your own task YAML with --include_path DIR."
    )


def make_task_manager(tasks=(), include_path=(), metadata: dict | None = None, include_defaults: bool | None = None):
    """A TaskManager over the package's tasks and `include_path`, checked against `tasks`.

    lm-eval's ~15k built-in tasks are indexed only when needed (include_defaults=None: when a
    requested task or a group member is not one of the package's or the user's).
    """
    from lm_eval.tasks import TaskManager

    paths = task_paths(include_path)
    names = [t for t in tasks if isinstance(t, str) and not t.endswith(".yaml")]
    manager = None
    if include_defaults is not True:
        manager = TaskManager(include_defaults=False, include_path=paths, metadata=metadata)
        expanded = [m for n in names for m in (manager.match_tasks([n]) or [n])]
        if include_defaults is None and not all(_resolvable(n, manager) for n in expanded):
            manager = None
    if manager is None:
        manager = TaskManager(include_path=paths, metadata=metadata)
    missing = [n for n in names if not manager.match_tasks([n])]
    if missing:
        raise unknown_task_error(missing, manager)
    return manager


def simple_evaluate(model="separ", model_args=None, tasks=(), *, include_path=(), include_defaults=None,
                    metadata: dict | None = None, task_manager=None, **kwargs):
    """`lm_eval.simple_evaluate` with the package's tasks on the include path and `separ` registered.

    Task names are checked first (an unknown one is a TaskError naming close matches).
    """
    import lm_eval
    from lm_eval.utils import simple_parse_args_string

    args = simple_parse_args_string(model_args) if isinstance(model_args, str) else dict(model_args or {})
    tasks = [tasks] if isinstance(tasks, str) else list(tasks)
    manager = task_manager or make_task_manager(tasks, include_path, args | (metadata or {}), include_defaults)
    return lm_eval.simple_evaluate(model=model, model_args=model_args, tasks=tasks, task_manager=manager, **kwargs)


def scores(results: dict) -> dict[str, dict[str, float]]:
    """{task: {"metric,filter": value}} of the numeric scores in lm-eval results (stderr left out)."""
    out = {}
    for task, values in (results or {}).get("results", {}).items():
        numeric = {
            k: float(v) for k, v in values.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and "_stderr" not in k and k != "sample_len"
        }
        if numeric:
            out[task] = numeric
    return out


def evaluate_tasks(model, tokenizer, names, *, batch_size: int = 8, limit=None, include_paths=(),
                   device: str | None = None) -> dict[str, dict[str, float]]:
    """Scores of an in-memory (already pruned) model on lm-eval tasks: {task: {"metric,filter": value}}."""
    names = list(names)
    if not names:
        return {}
    if device is None:
        device = str(arch.input_device(model))
    from .model import SeparLM

    lm = SeparLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=device)
    results = simple_evaluate(lm, tasks=names, include_path=include_paths, limit=limit,
                              log_samples=False, bootstrap_iters=0)
    return scores(results)


# ---------------------------------------------------------------------------- other backends

EXTERNAL_BACKENDS = ("hf", "vllm")


def split_backend_agnostic(names, include_paths=()) -> tuple[list[str], list[str]]:
    """(leaf tasks any lm-eval backend can run, `token_metrics` tasks only `separ` can) of tasks or groups."""
    names = list(names)
    if not names:
        return [], []
    loaded = make_task_manager(names, include_paths).load(names)["tasks"]
    agnostic = [n for n, task in loaded.items() if task.OUTPUT_TYPE != REQUEST_TYPE]
    token_only = [n for n, task in loaded.items() if task.OUTPUT_TYPE == REQUEST_TYPE]
    return agnostic, token_only


def backend_available(backend: str) -> None:
    """Refuse an external backend whose engine is not installed, before any work is done."""
    if backend not in ("separ", *EXTERNAL_BACKENDS):
        raise TaskError(f"Unknown evaluation backend {backend!r}; choose separ, hf or vllm.")
    if backend == "vllm" and importlib.util.find_spec("vllm") is None:
        raise TaskError(
            "--eval-backend vllm needs vLLM on a CUDA machine: `pip install vllm` in an environment whose torch and "
            "transformers match vLLM's pins (see README, Scaling out). --eval-backend hf evaluates the same "
            "exported checkpoints with lm-eval's hf backend."
        )


def evaluate_checkpoint(path, names, *, backend: str, dtype: str, batch_size: int = 8, device: str = "cpu",
                        backend_args: str = "", limit=None, include_paths=()) -> dict[str, dict[str, float]]:
    """Scores of an exported checkpoint on lm-eval tasks through lm-eval's own `hf` or `vllm` backend."""
    from lm_eval.utils import simple_parse_args_string

    args = {"pretrained": str(path), "dtype": dtype}
    if backend == "hf":
        args["device"] = device
    args |= simple_parse_args_string(backend_args) if backend_args else {}
    results = simple_evaluate(backend, args, tasks=list(names), include_path=include_paths, limit=limit,
                              batch_size=batch_size if backend == "hf" else "auto",
                              log_samples=False, bootstrap_iters=0)
    return scores(results)
