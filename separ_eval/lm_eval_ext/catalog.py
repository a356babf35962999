"""The package's lm-eval tasks as a catalogue: what each task and group runs, and a smoke check of each
on lm-eval's dummy model (task plumbing, not a model)."""

from __future__ import annotations

import os
import random
import time
import traceback
from pathlib import Path

from ..engine.metrics import TokenCounts
from ..resources import tasks_dir
from .runner import task_paths
from .tasks import read_task_yaml


def task_index(include_path=(), include_defaults: bool = False):
    """lm-eval's TaskManager over the package's tasks and the include paths."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_defaults=include_defaults, include_path=task_paths(include_path))


def task_rows(include_path=()) -> list[dict]:
    """name, kind, what it runs, hub or offline, and the defining file, for every task and group."""
    manager = task_index(include_path)
    rows = []
    for name, entry in sorted(manager.task_index.items()):
        if name in manager.all_tags:
            continue
        cfg = read_task_yaml(entry.yaml_path) if entry.yaml_path else (entry.cfg or {})
        metadata = cfg.get("metadata") if isinstance(cfg.get("metadata"), dict) else {}
        if name in manager.all_groups:
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
    if path is None:
        return "-"
    try:
        return str(Path("tasks") / Path(path).resolve().relative_to(tasks_dir().resolve()))
    except ValueError:
        return str(path)


def _check_lm():
    """lm-eval's `dummy` model, plus fake token_metrics answers."""
    from lm_eval.models.dummy import DummyLM

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
