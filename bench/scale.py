"""How separ-eval's cost scales with tokens.

    python bench/scale.py memory                 # statistics over 1e4 and 1e5 tokens: peak RSS of each
    python bench/scale.py fit                    # loop wall time at 3 budgets -> wall = a + b * tokens
    python bench/scale.py fit --points 2000:1000:1 4000:2000:2 8000:4000:2   # collect:eval:steps

Every measurement runs in its own process, so each peak is its own. `memory` collects on the
forget corpus only (decoder passes with the statistics hooks, as `Pruner.collect` does): the
statistics are fixed-size float64 sums, so the peak must not grow with the token count beyond the
packed token blocks themselves (16 bytes per token).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import OUT, machine, rss_now_mib, rss_peak_mib, run_child, versions  # noqa: E402

HERE = Path(__file__).resolve()


def phase_collect(s: dict) -> dict:
    import torch

    from separ_eval import data, models
    from separ_eval.data import CorpusBlocks
    from separ_eval.engine import arch, stats
    from separ_eval.engine.method import Method

    model, tokenizer, _ = models.load(s["model"], dtype=s["dtype"])
    method = Method(collect_tokens=s["tokens"], block_len=s["block_len"])
    blocks = CorpusBlocks.prepare(data.load_corpus(s["corpus"]), tokenizer, method.budget, need_eval=False)
    model_map = arch.map_model(model)
    rss_ready_peak, rss_ready_now = rss_peak_mib(), rss_now_mib()
    started = time.perf_counter()
    result = stats.collect(model, model_map, blocks.collect, batch_size=s["batch_size"])
    wall = time.perf_counter() - started
    return {"tokens": blocks.collect.n_tokens, "collect_s": round(wall, 3),
            "tokens_per_s": round(blocks.collect.n_tokens / wall, 1),
            "stats_bytes": sum(t.numel() * t.element_size() for t in result.sums.values()),
            "blocks_bytes": blocks.collect.input_ids.numel() * 16,
            "rss_ready_peak_mib": round(rss_ready_peak, 1), "rss_ready_now_mib": round(rss_ready_now, 1),
            "rss_peak_mib": round(rss_peak_mib(), 1), "threads": torch.get_num_threads()}


def memory(a) -> dict:
    from rich.console import Console
    from rich.table import Table

    OUT.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="scale-mem-", dir=OUT))
    rows = []
    for n in a.tokens:
        s = {"model": a.model, "dtype": a.dtype, "tokens": n, "block_len": 512, "batch_size": a.batch_size,
             "corpus": a.corpus}
        out = work / f"collect-{n}.json"
        print(f"[{time.strftime('%H:%M:%S')}] collecting over {n} tokens ...", flush=True)
        r = run_child([str(HERE), "--phase", "collect", "--settings", json.dumps(s), "--out", str(out)], out,
                      log=work / f"collect-{n}.log")
        rows.append(r)
    table = Table(title=f"statistics collection: peak memory vs tokens ({a.model}, {a.dtype}, batch {a.batch_size} x 512)")
    for col in ("tokens", "collect s", "tokens/s", "RSS ready MiB", "peak RSS MiB", "peak - ready", "stats MiB", "blocks MiB"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(f"{r['tokens']:,}", f"{r['collect_s']:.1f}", f"{r['tokens_per_s']:.0f}",
                      f"{r['rss_ready_peak_mib']:,.0f}", f"{r['rss_peak_mib']:,.0f}",
                      f"{r['rss_peak_mib'] - r['rss_ready_peak_mib']:,.0f}",
                      f"{r['stats_bytes'] / 2**20:.2f}", f"{r['blocks_bytes'] / 2**20:.2f}")
    Console(width=max(Console().width, 130)).print(table)
    growth = rows[-1]["rss_peak_mib"] - rows[0]["rss_peak_mib"]
    print(f"peak growth from {rows[0]['tokens']:,} to {rows[-1]['tokens']:,} tokens: {growth:+.0f} MiB")
    return {"mode": "memory", "rows": rows, "peak_growth_mib": growth}


def fit(a) -> dict:
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    OUT.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="scale-fit-", dir=OUT))
    def run_point(point: str) -> dict:
        collect, evaluate, steps = (int(x) for x in point.split(":"))
        s = dict(model=a.model, target="code", dtype=a.dtype, batch_size=a.batch_size, block_len=512, ff_frac=0.05,
                 steps=steps, collect_tokens=collect, eval_tokens=evaluate, scoring="abs")
        out = work / f"loop-{point.replace(':', '-')}.json"
        print(f"[{time.strftime('%H:%M:%S')}] loop at collect {collect}, eval {evaluate}, steps {steps} ...", flush=True)
        return run_child([str(HERE.parent / "bench_loop.py"), "--phase", "loop", "--settings", json.dumps(s),
                          "--out", str(out)], out, log=work / f"loop-{point.replace(':', '-')}.log")

    def row(point: str, r: dict) -> dict:
        cpu = r.get("cpu", {})
        return {"point": point, "tokens": r["tokens"]["collect"] + r["tokens"]["eval"],
                "wall_s": r["timing"]["init_s"] + r["timing"]["loop_s"], "init_s": r["timing"]["init_s"],
                "loop_s": r["timing"]["loop_s"], "cpu_s": cpu.get("init_s", float("nan")) + cpu.get("loop_s", float("nan")),
                "rss_peak_mib": r["rss_peak_mib"]}

    if a.jobs > 1:  # on a busy shared machine: more of its CPU, but only the CPU-time fit stays meaningful
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(a.jobs) as pool:
            results = list(pool.map(run_point, a.points))
    else:
        results = [run_point(p) for p in a.points]
    rows = [row(p, r) for p, r in zip(a.points, results)]
    for path in a.add_result:  # the loop result of an earlier bench_loop.py --json-out
        rep = json.loads(Path(path).read_text())
        st = rep["settings"]
        rows.append(row(f"{st['collect_tokens']}:{st['eval_tokens']}:{st['steps']}*", rep["results"]["loop"]))
    x = np.array([r["tokens"] for r in rows], dtype=float)
    design = np.stack([x, np.ones_like(x)], 1)
    fits = {}
    for key in ("wall_s", "cpu_s"):
        y = np.array([r[key] for r in rows], dtype=float)
        ok = np.isfinite(y)
        if ok.sum() < 2:
            fits[key] = (float("nan"), float("nan"))
            continue
        (b, a0), *_ = np.linalg.lstsq(design[ok], y[ok], rcond=None)
        fits[key] = (float(a0), float(b))
    table = Table(title=f"loop time (load + prepare + execute) vs tokens ({a.model}, {a.dtype})")
    for col in ("collect:eval:steps", "tokens", "wall s", "of which load+prepare", "wall fit", "CPU s", "CPU fit",
                "peak RSS MiB"):
        table.add_column(col, justify="right")
    for r in rows:
        (aw, bw), (ac, bc) = fits["wall_s"], fits["cpu_s"]
        table.add_row(r["point"], f"{r['tokens']:,}", f"{r['wall_s']:.1f}", f"{r['init_s']:.1f}",
                      f"{aw + bw * r['tokens']:.1f}", f"{r['cpu_s']:.1f}", f"{ac + bc * r['tokens']:.1f}",
                      f"{r['rss_peak_mib']:,.0f}")
    Console(width=max(Console().width, 130)).print(table)
    for key, label in (("wall_s", "wall"), ("cpu_s", "CPU ")):
        a0, b = fits[key]
        print(f"{label} = {a0:.1f} s + {b * 1000:.2f} ms x tokens   -> default budget (320,000 tokens): "
              f"{a0 + b * 320000:.0f} s")
    print("tokens = steps x 2 x collect + (steps + 1) x 2 x eval (both corpora); * = from an earlier bench_loop run")
    return {"mode": "fit", "rows": rows, "fits": {k: {"a_s": v[0], "b_s_per_token": v[1]} for k, v in fits.items()}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", nargs="?", choices=("memory", "fit"))
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--corpus", default="code")
    p.add_argument("--tokens", type=int, nargs="+", default=[10000, 100000], help="memory: collection budgets")
    p.add_argument("--points", nargs="*", default=["2000:1000:1", "4000:2000:2", "8000:4000:2"],
                   help="fit: collect:eval:steps per point")
    p.add_argument("--jobs", type=int, default=1, help="fit: run the points concurrently (CPU-time fit only)")
    p.add_argument("--add-result", nargs="*", default=[], metavar="JSON",
                   help="fit: also use the loop result of these bench_loop.py --json-out files")
    p.add_argument("--json-out")
    p.add_argument("--phase", choices=("collect",), help=argparse.SUPPRESS)
    p.add_argument("--settings", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.phase:
        Path(a.out).write_text(json.dumps(phase_collect(json.loads(a.settings)), indent=2))
        return 0
    if not a.mode:
        p.error("give a mode: memory or fit")
    report = memory(a) if a.mode == "memory" else fit(a)
    report.update(machine=machine(), versions=versions(), settings=vars(a))
    m = report["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, load {m['load_1min']}")
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
