"""Where the loop spends time beyond the floor, measured A/B interleaved in one process.

On a shared, busy machine, runs in separate processes see different load; here every variant
runs on the same batch, one after the other, round after round, so load drifts hit all alike.

    python bench/overhead.py                # 3 rounds, one batch of 8 x 512 code tokens
    python bench/overhead.py --rounds 5 --batch-size 4

Variants (same batch, same model, inference_mode):
  decoder         bare decoder forward (the floor of a statistics pass)
  collect         decoder forward with separ-eval's StatsCollector hooks (ff + attn units)
  collect-ff      the same hooking the FF projections only (what an FF-only run needs)
  model           bare model forward with the LM head over every position (the floor of an eval pass)
  evaluate        separ_eval.metrics.evaluate (decoder, chunked LM head, top-k, cross-entropy)
  evaluate-chunkN the same with N positions per logits chunk (--chunks)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, versions  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--chunks", type=lambda v: [int(c) for c in v.split(",") if c], default=[],
                   help="extra evaluate variants with these logits chunk sizes, e.g. 256,1024,4096")
    p.add_argument("--json-out")
    a = p.parse_args(argv)

    import torch

    from separ_eval import data, models
    from separ_eval.data import CorpusBlocks
    from separ_eval.engine import arch, metrics, stats
    from separ_eval.engine.method import Method

    model, tokenizer, _ = models.load(a.model, dtype=a.dtype)
    model_map = arch.map_model(model)
    decoder = arch.base_model(model)
    n = a.batch_size * 511
    blocks = CorpusBlocks.prepare(data.load_corpus("code"), tokenizer, Method(collect_tokens=n, eval_tokens=n).budget)
    ids, mask = next(blocks.collect.batches(a.batch_size))
    tokens = int(mask.sum())

    def run_collect(units):
        with torch.inference_mode(), stats.StatsCollector(model_map, units=units) as collector:
            collector.token_mask = mask.bool()
            decoder(input_ids=ids, attention_mask=mask, use_cache=False)

    variants = {
        "decoder": lambda: torch.inference_mode()(decoder)(input_ids=ids, attention_mask=mask, use_cache=False),
        "collect": lambda: run_collect(("ff", "attn")),
        "collect-ff": lambda: run_collect(("ff",)),
        "model": lambda: torch.inference_mode()(model)(input_ids=ids, attention_mask=mask, use_cache=False),
        "evaluate": lambda: metrics.evaluate(model, blocks.collect, blocks.frequent, batch_size=a.batch_size),
        **{f"evaluate-chunk{c}": (lambda c=c: metrics.evaluate(model, blocks.collect, blocks.frequent,
                                                               batch_size=a.batch_size, chunk=c))
           for c in a.chunks},
    }
    variants["decoder"]()  # warm-up
    times = {k: [] for k in variants}
    for r in range(a.rounds):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()), flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\n{a.model} {a.dtype}, one batch {a.batch_size} x 512 ({tokens} tokens), median of {a.rounds} rounds:")
    print(f"  statistics pass : collect / decoder    = {med['collect'] / med['decoder']:.2f}x "
          f"(FF-only hooks: {med['collect-ff'] / med['decoder']:.2f}x)")
    print(f"  evaluation pass : evaluate / model     = {med['evaluate'] / med['model']:.2f}x")
    print("  medians s       : " + ", ".join(f"{k} {v:.2f}" for k, v in med.items()))
    m = machine()
    print(f"machine: {m['cpu']}, {m['cores']} cores, load {m['load_1min']}")
    if a.json_out:
        Path(a.json_out).write_text(json.dumps({"times": times, "median": med, "tokens": tokens, "machine": m,
                                                "versions": versions(), "settings": vars(a)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
