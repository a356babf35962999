"""Benchmark the separ-eval prune-then-evaluate loop against its floor and against taker.

On one model and one setting, in one run, each in its own process (so memory peaks are separate):

1. floor  - bare `torch.inference_mode()` forwards over exactly the token blocks the loop must
            process: the decoder only (`arch.base_model`) for the statistics passes, the whole
            model with its LM head for the evaluation passes; same batch size, block length, dtype;
2. loop   - `separ_eval.run.loop.Run(RunConfig(...)).execute()` with those settings;
3. taker  - taker's own `run_pruning` (PyPI taker, in bench/.venv-taker) on the same local model
            directory and the same corpora (train / test splits exported to jsonl), same fraction,
            steps and token budgets.

    python bench/bench_loop.py                                  # the defaults below
    python bench/bench_loop.py --collect-tokens 2000 --eval-tokens 1000 --steps 2   # a quick look
    python bench/bench_loop.py --dtype bfloat16 --skip-taker --json-out bench/out/bf16.json

Defaults: smollm2-135m, float32, FF `abs`, 5 steps of 5%, 2e4 collection and 1e4 evaluation
tokens per corpus, batch 2 (separ-eval's CPU default), blocks of 512, target `code` (forget `code`,
retain `prose`). The floor is the plain transformers forward; the loop runs its fast paths
(`separ_eval.engine.forward`: removed FF neurons skipped, causal attention blockwise), so it can beat it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import OUT, ensure_taker_venv, machine, rss_peak_mib, run_child, versions  # noqa: E402

DEFAULTS = dict(model="smollm2-135m", target="code", dtype="float32", batch_size=2, block_len=512,
                ff_frac=0.05, steps=5, collect_tokens=20000, eval_tokens=10000, scoring="abs")


# ---------------------------------------------------------------------------------------- helpers


def _method(s: dict):
    from separ_eval.engine.method import Method

    return Method.from_dict({key: s[key] for key in ("ff_frac", "steps", "scoring", "collect_tokens", "eval_tokens",
                                                     "block_len")})


def _corpus_names(target: str) -> tuple[str, str]:
    """(forget, retain) corpus names of a target; the registry if present, else the `code` pair."""
    try:
        from separ_eval.targets import load_target

        t = load_target(target)
        return t.forget.corpus, t.retain.corpus
    except ImportError:
        if target != "code":
            raise
        return "code", "prose"


def _prepare(s: dict, tokenizer):
    from separ_eval import data

    budget = _method(s).budget
    forget_name, retain_name = _corpus_names(s["target"])
    return (data.CorpusBlocks.prepare(data.load_corpus(forget_name), tokenizer, budget),
            data.CorpusBlocks.prepare(data.load_corpus(retain_name), tokenizer, budget))


def _threads() -> int:
    import torch

    return torch.get_num_threads()


# ---------------------------------------------------------------------------------------- phases (children)


def phase_floor(s: dict) -> dict:
    """Bare forwards over the loop's own blocks, in the loop's order: eval 0, then (collect, eval) per step."""
    import torch

    from separ_eval import models
    from separ_eval.engine import arch

    started = time.perf_counter()
    model, tokenizer, _ = models.load(s["model"], dtype=s["dtype"])
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    forget, retain = _prepare(s, tokenizer)
    prepare_s = time.perf_counter() - started
    rss_ready = rss_peak_mib()
    decoder = arch.base_model(model)
    bs = s["batch_size"]
    timing = {"collect": 0.0, "eval": 0.0}
    cpu = {"collect": 0.0, "eval": 0.0}
    tokens = {"collect": 0, "eval": 0}

    def passes(phase, module, blocks):
        t0, c0 = time.perf_counter(), time.process_time()
        for input_ids, attention_mask in blocks.batches(bs):
            module(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
            tokens[phase] += int(attention_mask.sum())
        timing[phase] += time.perf_counter() - t0
        cpu[phase] += time.process_time() - c0

    with torch.inference_mode():
        for step in range(s["steps"] + 1):
            if step > 0:
                for side in (forget, retain):
                    passes("collect", decoder, side.collect)
            for side in (forget, retain):
                passes("eval", model, side.evaluate)
    return {"tool": "floor", "timing": {**{k: round(v, 3) for k, v in timing.items()},
                                        "loop_s": round(timing["collect"] + timing["eval"], 3),
                                        "load": round(load_s, 3), "prepare": round(prepare_s, 3)},
            "cpu": {**{k: round(v, 3) for k, v in cpu.items()}, "loop_s": round(cpu["collect"] + cpu["eval"], 3)},
            "tokens": tokens, "rss_peak_mib": round(rss_peak_mib(), 1), "rss_ready_mib": round(rss_ready, 1),
            "threads": _threads()}


def phase_loop(s: dict, profile: str | None = None) -> dict:
    from separ_eval.engine import forward
    from separ_eval.run.config import RunConfig
    from separ_eval.run.loop import Run

    forward.ENABLED = s.get("fast_paths", True)

    tokens = {"collect": 0, "evaluate": 0}

    def progress(phase, step, n):
        tokens[phase] = tokens.get(phase, 0) + n

    output = tempfile.mkdtemp(prefix="loop-", dir=OUT)  # fresh: a resumed run would skip the work
    config = RunConfig(model=s["model"], target=s["target"], method=_method(s), dtype=s["dtype"],
                       batch_size=s["batch_size"], output=output)
    started, cpu_init0 = time.perf_counter(), time.process_time()
    run = Run(config, progress=progress, log=lambda m: None)
    init_s = time.perf_counter() - started
    init_cpu = time.process_time() - cpu_init0
    rss_ready = rss_peak_mib()
    cpu = {"collect": 0.0, "eval": 0.0}

    def cpu_timed(phase, fn):
        def wrapper(*args, **kwargs):
            c0 = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                cpu[phase] += time.process_time() - c0
        return wrapper

    from separ_eval.engine import metrics

    run.pruner.collect = cpu_timed("collect", run.pruner.collect)
    metrics.evaluate = cpu_timed("eval", metrics.evaluate)  # the loop looks it up as metrics.evaluate
    started, cpu0 = time.perf_counter(), time.process_time()
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        results, path = profiler.runcall(run.execute)
        profiler.dump_stats(profile)
    else:
        results, path = run.execute()
    obj = results.to_dict()
    execute_s = time.perf_counter() - started
    cpu["loop_s"] = time.process_time() - cpu0
    cpu["init_s"] = init_cpu
    t = obj["timing"]
    return {"tool": "loop",
            "timing": {"collect": t["collect_s"], "eval": t["eval_s"], "prune": t["prune_s"],
                       "loop_s": round(execute_s, 3), "load": t["load_s"], "prepare": t["prepare_s"],
                       "init_s": round(init_s, 3)},
            "cpu": {k: round(v, 3) for k, v in cpu.items()},
            "tokens": {"collect": tokens["collect"], "eval": tokens["evaluate"]},
            "rss_peak_mib": round(rss_peak_mib(), 1), "rss_ready_mib": round(rss_ready, 1),
            "threads": _threads(), "results_path": str(path), "summary": obj["summary"],
            "trajectory": [{k: r[k] for k in ("step", "forget", "retain")} for r in obj["trajectory"]]}


# ---------------------------------------------------------------------------------------- taker


def export_for_taker(s: dict, directory: Path) -> dict:
    """The corpora's train/test splits as jsonl, and the taker spec (skip ids = separ-eval's frequent tokens)."""
    from transformers import AutoTokenizer

    from separ_eval import data, models

    model_dir = models.resolve(s["model"])
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    directory.mkdir(parents=True, exist_ok=True)
    spec = {"model_dir": model_dir, "dtype": {"float32": "fp32", "bfloat16": "bfp16", "float16": "fp16"}[s["dtype"]],
            "ff_frac": s["ff_frac"], "steps": s["steps"], "collect_tokens": s["collect_tokens"],
            "eval_tokens": s["eval_tokens"], "block_len": s["block_len"]}
    for side, name in zip(("forget", "retain"), _corpus_names(s["target"])):
        corpus = data.load_corpus(name)
        paths = {}
        for split in ("train", "test"):
            path = directory / f"{name}.{split}.jsonl"
            with open(path, "w", encoding="utf-8") as f:
                for doc in corpus.split(split):
                    f.write(json.dumps({"text": doc}) + "\n")
            paths[split] = str(path)
        skip = data.frequent_tokens(tokenizer, corpus.split("train")).tolist()
        spec[side] = {"name": f"separ-{name}", **paths, "skip_ids": skip}
    return spec


# ---------------------------------------------------------------------------------------- report


def _rate(tokens, seconds):
    return tokens / seconds if seconds else float("nan")


def rows_for(result: dict) -> list[tuple]:
    """(phase, wall s, cpu s, tokens)."""
    t, k, c = result["timing"], result["tokens"], result.get("cpu", {})
    rows = [("collect", t.get("collect", 0.0), c.get("collect"), k.get("collect", 0)),
            ("eval", t.get("eval", 0.0), c.get("eval"), k.get("eval", 0))]
    if "prune" in t:
        rows.append(("score+prune", t["prune"], c.get("prune"), None))
    rows.append(("loop total", t["loop_s"], c.get("loop_s"), k.get("collect", 0) + k.get("eval", 0)))
    return rows


def ratios(results: dict) -> list[tuple]:
    """(label, phase, wall ratio, wall-per-token ratio, cpu-per-token ratio)."""
    out = []
    pairs = [("loop / floor", "loop", "floor"), ("taker / loop", "taker", "loop")]
    nan = float("nan")
    for label, a, b in pairs:
        if a not in results or b not in results:
            continue
        ra, rb = results[a], results[b]
        for phase, key in (("collect", "collect"), ("eval", "eval"), ("loop total", "loop_s")):
            wa, wb = ra["timing"].get(key, 0), rb["timing"].get(key, 0)
            ca, cb = ra.get("cpu", {}).get(key), rb.get("cpu", {}).get(key)
            ta = ra["tokens"].get(key, 0) if key != "loop_s" else sum(ra["tokens"].values())
            tb = rb["tokens"].get(key, 0) if key != "loop_s" else sum(rb["tokens"].values())
            per_token = (wa / ta) / (wb / tb) if ta and tb and wb else nan
            cpu_per_token = (ca / ta) / (cb / tb) if ta and tb and ca and cb else nan
            out.append((label, phase, wa / wb if wb else nan, per_token, cpu_per_token))
        out.append((label, "peak RSS", ra["rss_peak_mib"] / rb["rss_peak_mib"], None, None))
    return out


def print_report(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 130))
    s, m = report["settings"], report["machine"]
    console.print(f"[bold]separ-eval loop benchmark[/bold]  {s['model']}  {s['dtype']}  target {s['target']}  "
                  f"FF {s['scoring']} {s['steps']} x {s['ff_frac']:.0%}  collect {s['collect_tokens']}  "
                  f"eval {s['eval_tokens']} tokens/corpus  batch {s['batch_size']} x {s['block_len']}"
                  f"  loop fast paths {'on' if s.get('fast_paths', True) else 'off'}")
    console.print(f"machine: {m['cpu']}, {m['cores']} cores, {m['mem_gib']} GiB, load {m['load_1min']} at start; "
                  f"versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()))
    table = Table(title="wall time per phase (each tool in its own process)")
    for col in ("tool", "phase", "wall s", "CPU s", "tokens", "tokens/s", "peak RSS MiB"):
        table.add_column(col, justify="left" if col in ("tool", "phase") else "right")
    for tool in ("floor", "loop", "taker"):
        if tool not in report["results"]:
            continue
        r = report["results"][tool]
        for i, (phase, wall, cpu, tok) in enumerate(rows_for(r)):
            table.add_row(tool if i == 0 else "", phase, f"{wall:.1f}", "" if cpu is None else f"{cpu:.1f}",
                          "" if tok is None else f"{tok:,}", "" if tok is None else f"{_rate(tok, wall):,.1f}",
                          f"{r['rss_peak_mib']:,.0f}" if i == 0 else "")
        t = r["timing"]
        extra = f"load {t.get('load', 0):.1f}" + (f" + prepare {t['prepare']:.1f}" if "prepare" in t else "")
        table.add_row("", f"[dim]outside loop: {extra}[/dim]", "", "", "", "", "", end_section=True)
    console.print(table)
    rt = Table(title="ratios (per token corrects for differing token counts; CPU s is less sensitive to a busy machine)")
    for col in ("ratio", "phase", "wall", "wall per token", "CPU per token"):
        rt.add_column(col, justify="left" if col in ("ratio", "phase") else "right")
    for label, phase, wall, per_token, cpu_per_token in report["ratios"]:
        rt.add_row(label, phase, f"{wall:.2f}x", "" if per_token is None else f"{per_token:.2f}x",
                   "" if cpu_per_token is None else f"{cpu_per_token:.2f}x")
    if rt.row_count:
        console.print(rt)
    sa = Table(title="separability area per metric (a sanity check that both tools did the same job)")
    for col in ("tool", "top1", "top10", "skip50_top1", "skip50_top10", "forget top1 0 -> S", "retain top1 0 -> S"):
        sa.add_column(col, justify="left" if col == "tool" else "right")
    for tool in ("loop", "taker"):
        r = report["results"].get(tool)
        if not r or not r.get("trajectory"):
            continue
        try:
            from separ_eval.report.separability import summarize

            summary = summarize(r["trajectory"])
        except Exception as error:  # never lose the timing report to this
            console.print(f"[dim]no SA for {tool}: {error}[/dim]")
            continue
        traj = r["trajectory"]
        sa.add_row(tool, *(f"{summary[m]['sa']:.3f}" for m in ("top1", "top10", "skip50_top1", "skip50_top10")),
                   f"{traj[0]['forget']['top1']:.3f} -> {traj[-1]['forget']['top1']:.3f}",
                   f"{traj[0]['retain']['top1']:.3f} -> {traj[-1]['retain']['top1']:.3f}")
    if sa.row_count:
        console.print(sa)
    if "taker" in report["results"]:
        console.print("[dim]taker counts its evaluation budget in skip50 predictions (tokens outside the 50 most "
                      "frequent), so it evaluates more tokens than the loop; collection stops after the text that "
                      "crosses the budget. 'tokens' counts every position each tool ran through the model.[/dim]")


# ---------------------------------------------------------------------------------------- main


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=DEFAULTS["model"])
    p.add_argument("--target", default=DEFAULTS["target"])
    p.add_argument("--dtype", default=DEFAULTS["dtype"], choices=("float32", "bfloat16", "float16"))
    p.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"])
    p.add_argument("--block-len", type=int, default=DEFAULTS["block_len"])
    p.add_argument("--ff-frac", type=float, default=DEFAULTS["ff_frac"])
    p.add_argument("--steps", type=int, default=DEFAULTS["steps"])
    p.add_argument("--collect-tokens", type=int, default=DEFAULTS["collect_tokens"])
    p.add_argument("--eval-tokens", type=int, default=DEFAULTS["eval_tokens"])
    p.add_argument("--skip-taker", action="store_true", help="measure floor and loop only")
    p.add_argument("--skip-floor", action="store_true")
    p.add_argument("--taker-concurrently", action="store_true",
                   help="run taker at the same time as floor + loop (saves wall time on a slow machine; noisier)")
    p.add_argument("--only", choices=("floor", "loop", "taker"), help="measure one tool only")
    p.add_argument("--no-fast-paths", action="store_true",
                   help="the loop without separ_eval.engine.forward's fast paths (plain transformers forward): what the fast paths save")
    p.add_argument("--profile", metavar="FILE", help="cProfile the loop's execute() into FILE (adds overhead)")
    p.add_argument("--json-out", metavar="FILE", help="write settings, machine, versions and all results here")
    p.add_argument("--from-json", metavar="FILE", help="print the report of an earlier --json-out and exit")
    p.add_argument("--phase", choices=("floor", "loop"), help=argparse.SUPPRESS)  # internal: one child
    p.add_argument("--settings", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    a = p.parse_args(argv)

    if a.from_json:
        report = json.loads(Path(a.from_json).read_text())
        report["ratios"] = ratios(report["results"])
        print_report(report)
        return 0
    if a.phase:  # child process
        s = json.loads(a.settings)
        result = phase_floor(s) if a.phase == "floor" else phase_loop(s, profile=a.profile)
        Path(a.out).write_text(json.dumps(result, indent=2))
        return 0

    s = dict(model=a.model, target=a.target, dtype=a.dtype, batch_size=a.batch_size, block_len=a.block_len,
             ff_frac=a.ff_frac, steps=a.steps, collect_tokens=a.collect_tokens, eval_tokens=a.eval_tokens,
             scoring=DEFAULTS["scoring"], fast_paths=not a.no_fast_paths)
    tools = [a.only] if a.only else [t for t in ("floor", "loop", "taker")
                                     if not (t == "taker" and a.skip_taker) and not (t == "floor" and a.skip_floor)]
    OUT.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-", dir=OUT))
    report = {"settings": s, "machine": machine(), "versions": versions(), "tools": tools, "work_dir": str(work),
              "results": {}, "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    def measure(tool: str) -> dict:
        out = work / f"{tool}.json"
        log = work / f"{tool}.log"
        if tool == "taker":
            python = ensure_taker_venv()
            spec = export_for_taker(s, work / "taker-data")
            spec_path = work / "taker-spec.json"
            spec_path.write_text(json.dumps(spec))
            result = run_child([str(Path(__file__).parent / "taker_driver.py"), str(spec_path), str(out)], out,
                               log=log, python=str(python))
            result["tokens"] = {"collect": result["tokens"].get("collect", 0), "eval": result["tokens"].get("eval", 0)}
            for key in ("collect", "eval"):
                result["timing"].setdefault(key, 0.0)
                result["cpu"].setdefault(key, 0.0)
            return result
        argv_child = [str(Path(__file__).resolve()), "--phase", tool, "--settings", json.dumps(s), "--out", str(out)]
        if tool == "loop" and a.profile:
            argv_child += ["--profile", a.profile]
        return run_child(argv_child, out, log=log)

    def done(tool: str, result: dict) -> None:
        report["results"][tool] = result
        (work / "report.json").write_text(json.dumps(report, indent=2))  # partial results survive a crash
        print(f"[{time.strftime('%H:%M:%S')}] {tool}: loop {result['timing']['loop_s']:.1f} s, "
              f"peak RSS {result['rss_peak_mib']:.0f} MiB", flush=True)

    background = None
    if a.taker_concurrently and "taker" in tools and len(tools) > 1:
        # Overlap taker (by far the slowest) with floor + loop: each still has its own process and peak,
        # but every timing then shares the CPUs with the other tool; compare CPU s more than wall s.
        from concurrent.futures import ThreadPoolExecutor

        tools = [t for t in tools if t != "taker"]
        ensure_taker_venv()
        print(f"[{time.strftime('%H:%M:%S')}] measuring taker (concurrently) ...", flush=True)
        pool = ThreadPoolExecutor(1)
        background = pool.submit(measure, "taker")
        report["taker_concurrently"] = True
    for tool in tools:
        print(f"[{time.strftime('%H:%M:%S')}] measuring {tool} ...", flush=True)
        done(tool, measure(tool))
    if background is not None:
        done("taker", background.result())
    report["ratios"] = ratios(report["results"])
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    report["machine"]["load_1min_end"] = machine()["load_1min"]
    if a.json_out:
        Path(a.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json_out).write_text(json.dumps(report, indent=2))
    print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
