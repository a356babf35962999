"""The prune-then-evaluate loop: step 0 evaluated, then per step collect, score, prune, evaluate.

State lives in the run folder (`rundir`): every finished step is one log record, so a
killed run resumes after its last record and ends with the same numbers as an
uninterrupted one. At the end the loop writes the results file and its plot.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import data, distributed, models
from ..engine import arch, metrics, stats
from ..engine.masks import model_signature
from ..engine.method import Pruner
from ..io import writable_folder
from ..report.assemble import document_counts, measured
from ..report.schema import Results
from ..report.store import write_results
from .config import RunConfig, RunError, default_batch_size
from .environment import environment
from .rundir import RunDir
from .tasks import TaskRunner

# Progress callback: (phase, step, tokens_done_in_phase) -> None; phases: collect, evaluate, tasks.
Progress = Callable[[str, int, int], None]


def _tokens_callback(progress: Progress | None, phase: str, step: int):
    if progress is None:
        return None
    callback = lambda n: progress(phase, step, n)  # noqa: E731
    callback(0)  # the phase starts now, not when its first batch is done
    return callback


@dataclass
class SharedStart:
    """What runs that differ only in how they score units compute alike, computed once (see run.compare)."""

    step0: dict | None = None  # the step-0 record: metrics and per-document counts of the unpruned model
    statistics: tuple[stats.UnitStats, stats.UnitStats] | None = None  # the unpruned model's sums (a union)
    forget: data.CorpusBlocks | None = None  # the prepared blocks (same tokenizer, same budget)
    retain: data.CorpusBlocks | None = None


class Run:
    """One model x target x method: prepares everything once, then steps."""

    def __init__(self, config: RunConfig, progress: Progress | None = None, log: Callable[[str], None] = print,
                 shared: SharedStart | None = None):
        self.config = config
        self.progress = progress
        self.log = log
        self.shared = shared or SharedStart()
        self._collected_s = 0.0
        method = config.method
        self.target = config.load_target()
        self.tasks = TaskRunner(config, self.target, log)
        # Named before loading anything, so a clash with another run in this folder is refused at once.
        self.name = config.name(self.target)
        writable_folder(config.output)  # now, not after the model has loaded
        self.run_dir = RunDir(Path(config.output) / "runs" / self.name)
        self.run_dir.check_identity(config.identity())
        self.timing = {"load_s": 0.0, "prepare_s": 0.0, "collect_s": 0.0, "prune_s": 0.0, "eval_s": 0.0, "tasks_s": 0.0}

        started = time.perf_counter()
        device = distributed.init(config.device)
        if config.device_map is not None and distributed.world_size() > 1:
            raise RunError("--device-map shards one model over this process's devices; under torchrun every rank "
                           "holds a whole model. Use one or the other.")
        self.model, self.tokenizer, self.info = models.load(
            config.model, device=device, dtype=config.dtype, revision=config.revision,
            trust_remote_code=config.trust_remote_code, device_map=config.device_map, max_memory=config.max_memory,
            offload_folder=self.run_dir.offload_dir, model_id=config.model_id,
        )
        self.model_map = arch.map_model(self.model)
        self.batch_size = config.batch_size or default_batch_size(arch.input_device(self.model))
        self.timing["load_s"] = time.perf_counter() - started

        started = time.perf_counter()
        self.forget = self.shared.forget or data.CorpusBlocks.prepare(
            data.load_corpus(self.target.forget.corpus), self.tokenizer, method.budget)
        self.retain = self.shared.retain or data.CorpusBlocks.prepare(
            data.load_corpus(self.target.retain.corpus), self.tokenizer, method.budget)
        self.timing["prepare_s"] = time.perf_counter() - started

        self.pruner = Pruner(self.model, self.model_map, method)
        self.pruner.masks.meta["model"] = {
            "id": self.info.id,
            "family": self.info.family,
            "signature": model_signature(self.model),
        }

    # ------------------------------------------------------------------ phases

    def _open(self) -> list[dict]:
        """Create or resume the run folder; a resumed run gets its saved masks baked back in."""
        records = self.run_dir.open(self.config.identity(), write=distributed.is_main())
        if distributed.is_main():
            self.run_dir.write_layout({side: {"collect": blocks.collect.layout, "evaluate": blocks.evaluate.layout}
                                       for side, blocks in (("forget", self.forget), ("retain", self.retain))})
        if records:
            last = records[-1]["step"]
            restored = self.run_dir.restore(self.model_map, model_signature(self.model),
                                            mean_offset=self.config.method.offset == "mean", last_step=last)
            restored.meta.update({k: v for k, v in self.pruner.masks.meta.items() if k not in restored.meta})
            self.pruner.masks = restored
            self.log(f"Resuming {self.name} after step {last} of {self.config.method.steps}.")
        return records

    def _statistics(self, step: int) -> tuple[stats.UnitStats, stats.UnitStats]:
        """This step's statistics; a --no-recollect run collects once and keeps them in the run folder."""
        fixed = not self.config.method.recollect
        if fixed:
            cached = self.run_dir.load_fixed_stats()
            if cached is not None:
                return cached
            if step > 1:
                raise self.run_dir.missing_stats_error()
        if step == 1 and self.shared.statistics is not None:  # the unpruned model's, computed once for several runs
            if fixed and distributed.is_main():
                self.run_dir.save_fixed_stats(*self.shared.statistics)
            return self.shared.statistics
        started = time.perf_counter()
        callback = _tokens_callback(self.progress, "collect", step)
        forget = self.pruner.collect(self.forget, self.batch_size, progress=callback)
        retain = self.pruner.collect(self.retain, self.batch_size, progress=callback)
        self._collected_s = time.perf_counter() - started
        self.timing["collect_s"] += self._collected_s
        if fixed and distributed.is_main():
            self.run_dir.save_fixed_stats(forget, retain)
        return forget, retain

    def _evaluate(self, step: int) -> dict:
        """Metrics of both sides, and the per-document counts they are the sums of."""
        started = time.perf_counter()
        callback = _tokens_callback(self.progress, "evaluate", step)
        record, per_document = {}, {}
        with self.pruner.fast_forward():
            for side, blocks in (("forget", self.forget), ("retain", self.retain)):
                counts = metrics.count_targets(self.model, distributed.shard(blocks.evaluate), blocks.frequent,
                                               by="unit", batch_size=self.batch_size, progress=callback)
                counts = distributed.all_reduce(counts)
                record[side] = metrics.TokenCounts.from_tensor(counts.sum(dim=0)).metrics()
                per_document[side] = document_counts(counts.tolist())
        record["counts"] = per_document
        self.timing["eval_s"] += time.perf_counter() - started
        if self.tasks.due(step):
            started = time.perf_counter()
            if self.progress:
                self.progress("tasks", step, 0)
            record["tasks"] = self.tasks.run(step, self.model, self.tokenizer, self.pruner.masks, self.run_dir,
                                             self.batch_size)
            self.timing["tasks_s"] += time.perf_counter() - started
        return record

    def _commit(self, records: list[dict], record: dict) -> None:
        if distributed.is_main():
            self.run_dir.commit(record)
        records.append(record)

    # ------------------------------------------------------------------ the loop

    def step0_record(self) -> dict:
        """The unpruned model's record: its metrics and per-document counts on the evaluation blocks."""
        return {"step": 0, "pruned": {"ff": 0.0, "attn": 0.0}, **self._evaluate(0)}

    def execute(self) -> tuple[Results, Path | None]:
        """Run (or resume) every step; returns the results and where they were written (rank 0)."""
        run_started = time.perf_counter()
        records = self._open()
        if not records:
            self._commit(records, self.shared.step0 or self.step0_record())
        for step in self.pruner.prune_steps(self._statistics, first=records[-1]["step"] + 1):
            if distributed.is_main():
                self.pruner.masks.save(self.run_dir.masks_dir(step))
            pruned = {u: self.pruner.masks.fraction(u) for u in ("ff", "attn")}
            collected, self._collected_s = self._collected_s, 0.0  # this step's own collection (0: shared or fixed)
            self._commit(records, {"step": step, "pruned": pruned, **self._evaluate(step), "collect_s": collected})
        self.timing["prune_s"] = self.pruner.prune_seconds
        self.timing["total_s"] = time.perf_counter() - run_started
        results = self.results(records)
        path = None
        if distributed.is_main():
            path = write_results(results, self.config.output)
            try:
                from ..report.plots import plot_trajectory

                plot_trajectory(results, path.with_suffix(".png"))
            except Exception as error:  # a plot must never cost the results
                self.log(f"Could not draw the trajectory plot: {error}")
        return results, path

    def results(self, records: list[dict]) -> Results:
        documents = {"forget": self.forget.evaluate.documents, "retain": self.retain.evaluate.documents}
        return Results.model_validate({
            "schema": "separ-eval/results/v1",
            "model": self.info.as_dict(),
            "target": self.target.as_dict(),
            "method": self.config.method.as_dict(),
            "data": {"forget": self.forget.identity(), "retain": self.retain.identity()},
            **measured(records, documents),
            "environment": environment(self.config.device),
            "timing": {k: round(v, 3) for k, v in self.timing.items()},
        })


def run(config: RunConfig, progress: Progress | None = None, log: Callable[[str], None] = print) -> tuple[Results, Path | None]:
    return Run(config, progress=progress, log=log).execute()
