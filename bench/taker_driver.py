"""Run taker's own prune-and-evaluate loop (`taker.prune.run_pruning`) on local data, instrumented.

Runs inside the taker virtual environment (bench/.venv-taker), never imports separ_eval.
Usage: python taker_driver.py SPEC.json OUT.json

SPEC holds: model_dir, dtype ("fp32" | "bfp16"), ff_frac, steps, collect_tokens, eval_tokens,
block_len, forget / retain: {name, train, test (jsonl paths, one {"text": ...} per line), skip_ids}.

taker is called unchanged; only two things are swapped in from outside:
- `infer_dataset_config` answers the two local corpus names with an EvalConfig whose loader reads
  the exported train / test files (taker's own `pytest-*-local` configs work the same way) and whose
  skip ids are separ-eval's 50 most frequent train tokens;
- timers / token counters wrap the functions run_pruning calls (model init, get_midlayer_data,
  score_and_prune, evaluate_all) and Model.get_outputs_embeds, which every forward goes through.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections import defaultdict

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("TQDM_DISABLE", "1")


def rss_peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(spec_path: str, out_path: str) -> None:
    spec = json.load(open(spec_path))
    import datasets
    import torch
    from datasets import DatasetDict

    import taker
    import taker.activations
    import taker.eval
    import taker.prune
    import taker.texts
    from taker.data_classes import EvalConfig, PruningConfig
    from taker.model import Model

    datasets.disable_progress_bars()

    # ------------------------------------------------------------ local corpora
    local = {}
    for side in ("forget", "retain"):
        c = spec[side]
        local[c["name"]] = c

    original_infer = taker.texts.infer_dataset_config

    def infer_dataset_config(dataset_str: str):
        if dataset_str in local:
            c = local[dataset_str]

            def load(c=c):
                return DatasetDict({
                    split: datasets.Dataset.from_list([json.loads(l) for l in open(c[split], encoding="utf-8")])
                    for split in ("train", "test")
                })

            return EvalConfig(c["name"], dataset_custom_load_fn=load, skip_token_ids=list(c["skip_ids"]))
        return original_infer(dataset_str)

    for module in (taker.texts, taker.activations, taker.eval):
        module.infer_dataset_config = infer_dataset_config

    # ------------------------------------------------------------ instrumentation
    timing = defaultdict(float)
    cpu = defaultdict(float)
    tokens = defaultdict(int)
    forwards = defaultdict(int)
    state = {"phase": "load"}

    def timed(phase, fn):
        def wrapper(*args, **kwargs):
            previous, state["phase"] = state["phase"], phase
            started, c0 = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                timing[phase] += time.perf_counter() - started
                cpu[phase] += time.process_time() - c0
                state["phase"] = previous

        return wrapper

    original_forward = Model.get_outputs_embeds

    def get_outputs_embeds(self, text=None, input_ids=None, *args, **kwargs):
        if input_ids is None and text is not None:
            input_ids = self.get_ids(text)
        if input_ids is not None:
            tokens[state["phase"]] += int(input_ids.numel())
            forwards[state["phase"]] += 1
        return original_forward(self, None, input_ids, *args, **kwargs)

    Model.get_outputs_embeds = get_outputs_embeds
    taker.prune.Model = timed("load", Model)
    taker.prune.get_midlayer_data = timed("collect", taker.prune.get_midlayer_data)
    taker.prune.score_and_prune = timed("prune", taker.prune.score_and_prune)
    taker.prune.evaluate_all = timed("eval", taker.prune.evaluate_all)

    config = PruningConfig(
        model_repo=spec["model_dir"],
        token_limit=spec["block_len"],
        ff_frac=spec["ff_frac"],
        attn_frac=0.0,
        dtype=spec["dtype"],
        use_accelerator=False,
        model_device="cpu",
        collection_sample_size=spec["collect_tokens"],
        eval_sample_size=spec["eval_tokens"],
        ff_scoring="abs",
        focus=spec["retain"]["name"],
        cripple=spec["forget"]["name"],
        n_steps=spec["steps"],
        recalculate_activations=True,
        run_pre_test=True,
        wandb_project="separ-eval-bench",
    )
    started, c0 = time.perf_counter(), time.process_time()
    rss_before = rss_peak_mib()
    _, history = taker.prune.run_pruning(config)
    total = time.perf_counter() - started
    cpu_total = time.process_time() - c0

    trajectory = []
    for item in history.history:
        row = {}
        for side in ("forget", "retain"):
            name = spec[side]["name"]
            acc = item.accuracy[name]
            row[side] = {
                "top1": acc["base"] / 100, "top10": acc["topk"] / 100,
                "skip50_top1": acc["skip"] / 100, "skip50_top10": acc["topk_skip"] / 100,
                "loss": item.loss_data[name]["loss"],
            }
        trajectory.append(row)

    from importlib.metadata import version

    result = {
        "tool": "taker",
        "timing": {**{k: round(v, 3) for k, v in timing.items()}, "total_s": round(total, 3),
                   "loop_s": round(total - timing["load"], 3)},
        "cpu": {**{k: round(v, 3) for k, v in cpu.items()}, "loop_s": round(cpu_total - cpu["load"], 3)},
        "tokens": dict(tokens),
        "forwards": dict(forwards),
        "rss_peak_mib": round(rss_peak_mib(), 1),
        "rss_at_start_mib": round(rss_before, 1),
        "trajectory": trajectory,
        "versions": {p: version(p) for p in ("taker", "torch", "transformers", "datasets")},
        "torch_threads": torch.get_num_threads(),
    }
    json.dump(result, open(out_path, "w"), indent=2)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
