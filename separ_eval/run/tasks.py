"""lm-eval tasks inside a run: which tasks at which steps, scored in process or by an external backend.

The in-process `separ` model scores the pruned model as it is; `hf` and `vllm` score a
checkpoint exported at the task step (and deleted after). Only backend-agnostic tasks go
to an external backend: token-metric tasks need the engine, which the loop runs itself.
"""

from __future__ import annotations

import shutil
from typing import Callable

from .. import distributed
from ..engine import arch, edit
from .config import RunConfig, RunError, task_plan, task_steps
from .rundir import RunDir


class TaskRunner:
    def __init__(self, config: RunConfig, target, log: Callable[[str], None]):
        self.config = config
        self.plan = task_plan(config.tasks, target)
        self.steps = task_steps(config.task_steps, config.method.steps)
        self.log = log
        self._check_backend()

    def due(self, step: int) -> bool:
        return bool(self.plan) and step in self.steps

    def _check_backend(self) -> None:
        """External backends evaluate an exported checkpoint: check what they can run before loading anything."""
        if self.config.eval_backend == "separ" or not self.plan:
            return
        from ..lm_eval_ext.runner import backend_available, split_backend_agnostic

        backend_available(self.config.eval_backend)
        if distributed.launched():
            raise RunError(f"--eval-backend {self.config.eval_backend} runs its own parallelism: use it from one "
                           "process (no torchrun), with backend args such as tensor_parallel_size.")
        for side, names in list(self.plan.items()):
            agnostic, token_only = split_backend_agnostic(names, self.config.include_paths)
            if token_only:  # the loop measures these itself, every step
                self.log(f"{side} tasks {', '.join(token_only)}: token metrics need the in-process model; "
                         f"the loop's own metrics cover them, {self.config.eval_backend} runs the rest.")
            self.plan[side] = agnostic

    def run(self, step: int, model, tokenizer, masks, run_dir: RunDir, batch_size: int) -> dict:
        """{side: {task: {"metric,filter": value}}} of the model as pruned at `step`."""
        if self.config.eval_backend != "separ":
            return self._on_checkpoint(step, model, tokenizer, masks, run_dir, batch_size)
        from ..lm_eval_ext.runner import evaluate_tasks

        return {
            side: evaluate_tasks(model, tokenizer, names, batch_size=batch_size, limit=self.config.task_limit,
                                 include_paths=self.config.include_paths)
            for side, names in self.plan.items()
        }

    def _on_checkpoint(self, step, model, tokenizer, masks, run_dir: RunDir, batch_size: int) -> dict:
        """Export the pruned model as a plain checkpoint and score it with lm-eval's hf or vllm backend."""
        from ..lm_eval_ext.runner import evaluate_checkpoint

        checkpoint = run_dir.checkpoint_dir(step)
        shutil.rmtree(checkpoint, ignore_errors=True)  # a half-written one from a killed run
        edit.export(model, tokenizer, masks, checkpoint)
        try:
            return {
                side: evaluate_checkpoint(
                    checkpoint, names, backend=self.config.eval_backend, dtype=self.config.dtype,
                    batch_size=batch_size, device=str(arch.input_device(model)),
                    backend_args=self.config.backend_args, limit=self.config.task_limit,
                    include_paths=self.config.include_paths,
                )
                for side, names in self.plan.items() if names
            }
        finally:
            shutil.rmtree(checkpoint, ignore_errors=True)
