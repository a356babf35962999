"""What `separ-eval compare` saves, and what each scoring costs to collect, measured in one run side by side.

    python bench/compare.py                                   # smollm2-135m, 6 scorings, small budgets
    python bench/compare.py --json-out bench/results/compare.json

Times k separate `run`s against one `compare` of the same k scorings (same data and budgets: compare
evaluates step 0 and collects the unpruned model's statistics once), and reads each scoring's own
collection seconds per step from its log, with the floor (bare decoder forwards over the same
collection blocks) beside them. Ratios are what to read: the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SCORINGS = ("abs", "std", "attrib", "wanda-diff", "centred", "random")


def _config(args, output: str, scoring: str | None = None):
    from separ_eval.engine.method import Method
    from separ_eval.run.config import RunConfig

    method = Method(ff_frac=0.05, steps=args.steps, collect_tokens=args.collect_tokens, eval_tokens=args.eval_tokens,
                    ff_scoring=scoring or "abs", offset="mean" if scoring == "centred" else "zero")
    return RunConfig(model=args.model, target="code", method=method, output=output)


def _floor(args) -> float:
    """Seconds of one bare forward pass over both sides' collection blocks (what one collection step costs at least)."""
    from separ_eval import data, models
    from separ_eval.engine import arch
    from separ_eval.engine.method import Method

    model, tokenizer, _ = models.load(args.model)
    budget = Method(collect_tokens=args.collect_tokens, eval_tokens=args.eval_tokens).budget
    decoder = arch.base_model(model)
    blocks = [data.CorpusBlocks.prepare(data.load_corpus(c), tokenizer, budget, need_eval=False).collect
              for c in ("code", "prose")]
    started = time.perf_counter()
    with torch.inference_mode():
        for side in blocks:
            for ids, mask in side.batches(2):
                decoder(input_ids=ids, attention_mask=mask, use_cache=False)
    return time.perf_counter() - started


def main() -> dict:
    from separ_eval.io import read_log
    from separ_eval.run.compare import compare
    from separ_eval.run.loop import run

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--collect-tokens", type=int, default=2000)
    p.add_argument("--eval-tokens", type=int, default=2000)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--json-out")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    quiet = lambda message: None  # noqa: E731

    separate, per_step = {}, {}
    for scoring in SCORINGS:
        started = time.perf_counter()
        _, path = run(_config(args, str(work / "separate" / scoring), scoring), log=quiet)
        separate[scoring] = time.perf_counter() - started
        own = [r["collect_s"] for r in read_log(path.parent / "runs" / path.stem / "log.jsonl") if r["step"] >= 1]
        per_step[scoring] = statistics.fmean(own) if own else 0.0
    started = time.perf_counter()
    compare(_config(args, str(work / "compare")), list(SCORINGS), log=quiet)
    together = time.perf_counter() - started
    floor = _floor(args)
    out = {
        "model": args.model, "scorings": SCORINGS, "collect_tokens": args.collect_tokens,
        "eval_tokens": args.eval_tokens, "steps": args.steps, "threads": torch.get_num_threads(),
        "separate_s": {k: round(v, 1) for k, v in separate.items()}, "separate_total_s": round(sum(separate.values()), 1),
        "compare_s": round(together, 1), "compare_over_separate": round(together / sum(separate.values()), 3),
        "collect_s_per_step": {k: round(v, 2) for k, v in per_step.items()}, "floor_collect_s": round(floor, 2),
        "collect_x_abs": {k: round(v / per_step["abs"], 2) for k, v in per_step.items()},
        "collect_x_floor": {k: round(v / floor, 2) for k, v in per_step.items()},
    }
    print(json.dumps(out, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
