"""Prune-then-evaluate loop with a resumable run directory.

A run directory holds `config.json` (what the run is), `masks/step-NNN/` (the
cumulative masks after each step) and `log.jsonl` (one record per finished
step). Masks are written atomically before their log record: the log record is
the commit point, so a run killed at any moment resumes from its last record.
Resuming replays the saved masks step by step onto the fresh model, which
reproduces the weights bit for bit (biases included), then carries on.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import torch

from . import __version__, arch, distributed, data, metrics, models, prune, results, separability, stats
from .method import CorpusBlocks, Method, Pruner
from .paths import atomic_write

LOG_NAME = "log.jsonl"
CONFIG_NAME = "config.json"


class RunError(RuntimeError):
    pass


@dataclass
class RunConfig:
    model: str = "smollm2-135m"
    target: str = "code"
    reverse: bool = False
    method: Method = field(default_factory=Method)
    device: str = "cpu"
    dtype: str = "float32"
    batch_size: int | None = None  # None: default_batch_size(device)
    revision: str | None = None
    trust_remote_code: bool = False
    output: str = "results"
    include_paths: tuple[str, ...] = ()
    tasks: str = "none"  # "none", "target", or "forget=a+b,retain=c"
    task_steps: str = "ends"  # "ends", "all", or "0,2,5"
    task_limit: int | None = None
    eval_backend: str = "separ"  # separ (in process) | hf | vllm (lm-eval backends on an exported checkpoint)
    backend_args: str = ""  # e.g. "tensor_parallel_size=2,data_parallel_size=2,gpu_memory_utilization=0.8"
    device_map: str | None = None  # accelerate sharding: "auto", "balanced", "sequential"
    max_memory: dict | None = None  # with device_map: {0: "20GiB", "cpu": "60GiB"}

    def identity(self) -> dict:
        """What must match for a run directory to be resumed."""
        return {
            "model": self.model,
            "revision": self.revision,
            "target": self.target,
            "reverse": self.reverse,
            "method": self.method.as_dict(),
            "dtype": self.dtype,
            "tasks": self.tasks,
            "task_steps": self.task_steps,
            "task_limit": self.task_limit,
            **({"eval_backend": self.eval_backend} if self.eval_backend != "separ" else {}),
        }


# Progress callback: (phase, step, tokens_done_in_phase) -> None; phases: collect, evaluate, tasks.
Progress = Callable[[str, int, int], None]


def _tokens_callback(progress: Progress | None, phase: str, step: int):
    if progress is None:
        return None
    return lambda n: progress(phase, step, n)


def read_log(path: Path) -> list[dict]:
    """Finished step records; a torn last line (killed mid-write) is dropped from the file."""
    if not path.exists():
        return []
    records, good_bytes = [], 0
    with open(path, "rb") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                break
            if not line.endswith(b"\n"):
                break
            records.append(record)
            good_bytes += len(line)
    if good_bytes != path.stat().st_size:
        with open(path, "r+b") as handle:
            handle.truncate(good_bytes)
    return records


def _append_log(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _write_json_atomic(path: Path, obj) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2)))


def model_id(name: str) -> str:
    """The id a model is recorded under (as models.load reports it), known before loading it."""
    return models.EMBEDDED[name][2] if name in models.EMBEDDED else name


def planned_name(config: RunConfig) -> str:
    """The run's name (results file stem, run folder) without loading the model."""
    from .targets import load_target

    target = load_target(config.target, include_paths=config.include_paths)
    target = target.reversed() if config.reverse else target
    return results.run_name(model_id(config.model), target.name, config.reverse, config.method.as_dict())


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _task_plan(config: RunConfig, target) -> dict[str, list[str]]:
    if config.tasks in ("", "none", None):
        return {}
    if config.tasks == "target":
        return {"forget": list(target.forget.tasks), "retain": list(target.retain.tasks)}
    plan: dict[str, list[str]] = {}
    for part in config.tasks.split(","):
        side, _, names = part.partition("=")
        if side not in ("forget", "retain") or not names:
            raise ValueError(f"--tasks expects 'none', 'target' or 'forget=a+b,retain=c', got {config.tasks!r}.")
        plan[side] = [n for n in names.split("+") if n]
    return plan


def _task_steps(spec: str, steps: int) -> set[int]:
    if spec == "ends":
        return {0, steps}
    if spec == "all":
        return set(range(steps + 1))
    try:
        return {int(s) for s in spec.split(",")}
    except ValueError as error:
        raise ValueError(f"--task-steps expects 'ends', 'all' or a list like '0,2,5', got {spec!r}.") from error


def default_batch_size(device) -> int:
    """Sequences per forward when the user names none. On CPU, 2 x 512 tokens ran no slower per token than
    8 x 512 in A/B runs (bench/README.md) with a lower memory peak; accelerators want bigger batches."""
    return 2 if torch.device(device).type == "cpu" else 16


class Run:
    """One model x target x method: prepares everything once, then steps."""

    def __init__(self, config: RunConfig, progress: Progress | None = None, log: Callable[[str], None] = print):
        from .targets import load_target

        self.config = config
        self.progress = progress
        self.log = log
        method = config.method
        target = load_target(config.target, include_paths=config.include_paths)
        self.target = target.reversed() if config.reverse else target
        self.task_plan = _task_plan(config, self.target)
        self.task_steps = _task_steps(config.task_steps, method.steps)
        self._check_backend()
        # Named before loading anything, so a clash with another run in this folder is refused at once.
        self.name = results.run_name(model_id(config.model), self.target.name, config.reverse, method.as_dict())
        self.run_dir = Path(config.output) / "runs" / self.name
        self._check_identity()
        self.timing = {"load_s": 0.0, "prepare_s": 0.0, "collect_s": 0.0, "prune_s": 0.0, "eval_s": 0.0, "tasks_s": 0.0}

        started = time.perf_counter()
        device = distributed.init(config.device)
        if config.device_map is not None and distributed.world_size() > 1:
            raise RunError("--device-map shards one model over this process's devices; under torchrun every rank "
                           "holds a whole model. Use one or the other.")
        self.model, self.tokenizer, self.info = models.load(
            config.model, device=device, dtype=config.dtype, revision=config.revision,
            trust_remote_code=config.trust_remote_code, device_map=config.device_map, max_memory=config.max_memory,
            offload_folder=self.run_dir / "offload",
        )
        self.model_map = arch.map_model(self.model)
        self.batch_size = config.batch_size or default_batch_size(arch.input_device(self.model))
        self.timing["load_s"] = time.perf_counter() - started

        started = time.perf_counter()
        self.forget = CorpusBlocks.prepare(data.load_corpus(self.target.forget.corpus), self.tokenizer, method)
        self.retain = CorpusBlocks.prepare(data.load_corpus(self.target.retain.corpus), self.tokenizer, method)
        self.timing["prepare_s"] = time.perf_counter() - started

        self.pruner = Pruner(self.model, self.model_map, method)
        self.pruner.masks.meta["model"] = {
            "id": self.info.id,
            "family": self.info.family,
            "signature": prune.model_signature(self.model),
        }
        self.fixed_stats: tuple[stats.UnitStats, stats.UnitStats] | None = None

    # ------------------------------------------------------------------ state on disk

    def _check_identity(self) -> None:
        """Refuse a run folder that holds another run (same name, other settings)."""
        config_path = self.run_dir / CONFIG_NAME
        if not config_path.exists():
            return
        saved, identity = _flatten(json.loads(config_path.read_text())), _flatten(self.config.identity())
        differ = [f"{k}: {saved.get(k)!r} there, {identity.get(k)!r} now" for k in sorted({*saved, *identity})
                  if saved.get(k) != identity.get(k)]
        if differ:
            raise RunError(
                f"{self.run_dir} holds a different run ({'; '.join(differ)}). "
                "Use another --output, or delete that directory to start over."
            )

    def _open_run_dir(self) -> list[dict]:
        """Create or resume the run directory; returns the finished records."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config_path = self.run_dir / CONFIG_NAME
        self._check_identity()
        if not config_path.exists() and distributed.is_main():
            _write_json_atomic(config_path, self.config.identity())
        records = read_log(self.run_dir / LOG_NAME)
        if records:
            self._restore(records[-1]["step"])
            self.log(f"Resuming {self.name} after step {records[-1]['step']} of {self.config.method.steps}.")
        return records

    def _masks_dir(self, step: int) -> Path:
        return self.run_dir / "masks" / f"step-{step:03d}"

    def _restore(self, last_step: int) -> None:
        """Replay saved masks step by step: reproduces the incremental baking exactly."""
        previous = prune.Masks.empty(self.model_map)
        for step in range(1, last_step + 1):
            saved = prune.Masks.load(self._masks_dir(step))
            saved.check_compatible(self.model_map, prune.model_signature(self.model))
            new = {u: saved.pruned[u] & ~previous.pruned[u] for u in saved.pruned}
            offsets = {u: saved.offsets[u] - previous.offsets[u] for u in saved.offsets}
            prune.bake(self.model_map, new, offsets if self.config.method.offset == "mean" else None)
            previous = saved
        previous.meta.update({k: v for k, v in self.pruner.masks.meta.items() if k not in previous.meta})
        self.pruner.masks = previous

    # ------------------------------------------------------------------ phases

    def _statistics(self, step: int) -> tuple[stats.UnitStats, stats.UnitStats]:
        if not self.config.method.recollect and self.fixed_stats is not None:
            return self.fixed_stats
        cached = [self.run_dir / "stats" / f"{side}.safetensors" for side in ("forget", "retain")]
        if not self.config.method.recollect and all(p.exists() for p in cached):
            self.fixed_stats = (stats.load_stats(cached[0]), stats.load_stats(cached[1]))
            return self.fixed_stats
        if not self.config.method.recollect and step > 1:
            raise RunError(
                f"{cached[0].parent} is missing: a --no-recollect run cannot resume without the statistics "
                f"of the unpruned model. Delete {self.run_dir} to start over."
            )
        started = time.perf_counter()
        callback = _tokens_callback(self.progress, "collect", step)
        if callback:
            callback(0)  # the phase starts now, not when its first batch is done
        forget = self.pruner.collect(self.forget, self.batch_size, progress=callback)
        retain = self.pruner.collect(self.retain, self.batch_size, progress=callback)
        self.timing["collect_s"] += time.perf_counter() - started
        if not self.config.method.recollect:
            self.fixed_stats = (forget, retain)
            if distributed.is_main():
                cached[0].parent.mkdir(exist_ok=True)
                for path, value in zip(cached, self.fixed_stats):  # atomic: a torn file would poison resumes
                    atomic_write(path, lambda tmp, value=value: stats.save_stats(value, tmp))
        return forget, retain

    def _evaluate(self, step: int) -> dict:
        started = time.perf_counter()
        callback = _tokens_callback(self.progress, "evaluate", step)
        if callback:
            callback(0)
        record = {}
        with self.pruner.fast_forward():
            for side, blocks in (("forget", self.forget), ("retain", self.retain)):
                counts = metrics.evaluate(self.model, distributed.shard(blocks.evaluate), blocks.frequent,
                                          batch_size=self.batch_size, progress=callback)
                record[side] = counts.all_reduce().metrics()
        self.timing["eval_s"] += time.perf_counter() - started
        if self.task_plan and step in self.task_steps:
            started = time.perf_counter()
            if self.progress:
                self.progress("tasks", step, 0)
            record["tasks"] = self._run_tasks(step)
            self.timing["tasks_s"] += time.perf_counter() - started
        return record

    def _check_backend(self) -> None:
        """External backends evaluate an exported checkpoint: check what they can run before loading anything."""
        if self.config.eval_backend == "separ" or not self.task_plan:
            return
        from .harness import backend_available, split_backend_agnostic

        backend_available(self.config.eval_backend)
        if distributed.launched():
            raise RunError(f"--eval-backend {self.config.eval_backend} runs its own parallelism: use it from one "
                           "process (no torchrun), with backend args such as tensor_parallel_size.")
        for side, names in list(self.task_plan.items()):
            agnostic, token_only = split_backend_agnostic(names, self.config.include_paths)
            if token_only:  # the loop measures these itself, every step
                self.log(f"{side} tasks {', '.join(token_only)}: token metrics need the in-process model; "
                         f"the loop's own metrics cover them, {self.config.eval_backend} runs the rest.")
            self.task_plan[side] = agnostic

    def _run_tasks(self, step: int) -> dict:
        if self.config.eval_backend != "separ":
            return self._run_tasks_on_checkpoint(step)
        from .harness import evaluate_tasks

        return {
            side: evaluate_tasks(
                self.model, self.tokenizer, names, batch_size=self.batch_size,
                limit=self.config.task_limit, include_paths=self.config.include_paths,
            )
            for side, names in self.task_plan.items()
        }

    def _run_tasks_on_checkpoint(self, step: int) -> dict:
        """Export the pruned model as a plain checkpoint and score it with lm-eval's hf or vllm backend."""
        import shutil

        from .harness import evaluate_checkpoint

        checkpoint = self.run_dir / "checkpoints" / f"step-{step:03d}"
        shutil.rmtree(checkpoint, ignore_errors=True)  # a half-written one from a killed run
        prune.export(self.model, self.tokenizer, self.pruner.masks, checkpoint)
        try:
            return {
                side: evaluate_checkpoint(
                    checkpoint, names, backend=self.config.eval_backend, dtype=self.config.dtype,
                    batch_size=self.batch_size, device=str(arch.input_device(self.model)),
                    backend_args=self.config.backend_args, limit=self.config.task_limit,
                    include_paths=self.config.include_paths,
                )
                for side, names in self.task_plan.items() if names
            }
        finally:
            shutil.rmtree(checkpoint, ignore_errors=True)

    # ------------------------------------------------------------------ the loop

    def execute(self) -> tuple[dict, Path | None]:
        """Run (or resume) every step; returns the results object and where it was written (rank 0)."""
        run_started = time.perf_counter()
        records = self._open_run_dir()
        method = self.config.method
        if not records:
            record = {"step": 0, "pruned": {"ff": 0.0, "attn": 0.0}, **self._evaluate(0)}
            if distributed.is_main():
                _append_log(self.run_dir / LOG_NAME, record)
            records.append(record)
        for step in range(records[-1]["step"] + 1, method.steps + 1):
            forget_stats, retain_stats = self._statistics(step)
            started = time.perf_counter()
            self.pruner.step(forget_stats, retain_stats, step)
            self.timing["prune_s"] += time.perf_counter() - started
            if distributed.is_main():
                self.pruner.masks.save(self._masks_dir(step))
            pruned = {u: self.pruner.masks.fraction(u) for u in ("ff", "attn")}
            record = {"step": step, "pruned": pruned, **self._evaluate(step)}
            if distributed.is_main():
                _append_log(self.run_dir / LOG_NAME, record)
            records.append(record)
        self.timing["total_s"] = time.perf_counter() - run_started
        obj = self.results(records)
        path = None
        if distributed.is_main():
            path = results.write_results(obj, self.config.output)
            try:
                from .plots import plot_trajectory

                plot_trajectory(obj, path.with_suffix(".png"))
            except Exception as error:  # a plot must never cost the results
                self.log(f"Could not draw the trajectory plot: {error}")
        return obj, path

    def results(self, records: list[dict]) -> dict:
        trajectory = [{k: r[k] for k in ("step", "pruned", "forget", "retain", "tasks") if k in r} for r in records]
        summary = separability.summarize(trajectory)
        if any("tasks" in r for r in trajectory):
            summary.update(separability.summarize_tasks([r for r in trajectory if "tasks" in r]))
        method = self.config.method.as_dict()
        device = self.config.device
        if device.startswith("cuda") and torch.cuda.is_available():
            device = torch.cuda.get_device_name()
        else:
            device = f"{device} ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
        return {
            "schema": results.SCHEMA,
            "model": self.info.as_dict(),
            "target": {
                "name": self.target.name,
                "forget": self.target.forget.corpus,
                "retain": self.target.retain.corpus,
                "reversed": self.config.reverse,
            },
            "method": method,
            "data": {"forget": self.forget.corpus.identity(), "retain": self.retain.corpus.identity()},
            "trajectory": trajectory,
            "summary": summary,
            "environment": _environment(device),
            "timing": {k: round(v, 3) for k, v in self.timing.items()},
        }


def _environment(device: str) -> dict:
    import lm_eval
    import transformers

    try:
        from importlib.metadata import version

        lm_eval_version = version("lm_eval")
    except Exception:
        lm_eval_version = getattr(lm_eval, "__version__", "unknown")
    return {
        "separ_eval": __version__,
        "lm_eval": lm_eval_version,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": device,
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def run(config: RunConfig, progress: Progress | None = None, log: Callable[[str], None] = print) -> tuple[dict, Path | None]:
    return Run(config, progress=progress, log=log).execute()
