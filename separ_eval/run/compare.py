"""Several scorings on one model and target, under the same data and budgets, sharing what they compute alike.

Runs that differ only in their scoring have the same step 0 (the unpruned model on the same
evaluation windows) and start from the same statistics of the unpruned model: both are
computed once, the statistics as the union of the sums every scoring reads, and kept in
`shared/` so a killed comparison resumes like a run does. Each scoring is then an
ordinary run in the comparison's folder (its own results file, run folder and log).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Callable

from .. import distributed
from ..engine.method import Method, Pruner
from ..engine.stats import UnitStats, load_stats, save_stats
from ..io import atomic_write, write_json
from ..report.compare import comparison, comparison_png
from ..report.naming import slug, target_tag
from .config import RunConfig, RunError
from .loop import Run, SharedStart

MEAN_OFFSET_SCORINGS = ("centred",)  # scorings meant to be used with --offset mean (a removed unit keeps its mean)


def _variant(label: str, method: dict) -> tuple[str, dict]:
    """'abs', 'abs@0.025x10' (another schedule: fraction per step x steps) or 'abs+joint' (FF and attention
    ranked in one pool): the scoring's name and the method it runs."""
    name, _, joint = label.partition("+")
    name, _, schedule = name.partition("@")
    values = dict(method)
    if schedule:
        try:
            fraction, steps = schedule.split("x")
            values.update(steps=int(steps), **{f"{u}_frac": float(fraction) for u in ("ff", "attn") if method[f"{u}_frac"]})
        except ValueError:
            raise RunError(f"A schedule is FRACTIONxSTEPS, e.g. abs@0.025x10; got {label!r}.") from None
    if joint:
        if joint != "joint":
            raise RunError(f"The only selection variant is +joint (e.g. abs+joint); got {label!r}.")
        values["joint"] = True
    return name, values


def scoring_configs(config: RunConfig, scorings: list[str], seeds=()) -> dict[str, RunConfig]:
    """One run per scoring (random once per seed), every other setting as given; see `_variant` for labels."""
    if not scorings:
        raise RunError("--scorings needs at least one scoring, e.g. abs,attrib,wanda-diff,centred,random.")
    configs = {}
    for label in scorings:
        name, method = _variant(label, config.method.model_dump())
        random_seeds = list(seeds or (method["seed"],)) if name == "random" else [method["seed"]]
        for index, seed in enumerate(random_seeds):
            values = {**method, "seed": seed, "offset": "mean" if name in MEAN_OFFSET_SCORINGS else method["offset"]}
            for unit in ("ff", "attn"):
                if method[f"{unit}_frac"]:
                    values[f"{unit}_scoring"] = name
            configs[label if index == 0 else f"{label}-seed{seed}"] = replace(config, method=Method.from_dict(values))
    return configs


def folder(config: RunConfig, model_id: str) -> Path:
    target = config.load_target()
    return Path(config.output) / "compare" / f"{slug(model_id)}__{target_tag(target.name, config.reverse)}"


def _union(runs: list[Method], base: Run) -> dict[str, tuple[str, ...]]:
    union: dict[str, dict[str, None]] = {}
    for method in runs:
        for unit, names in Pruner(base.model, base.model_map, method).statistics_needed().items():
            union.setdefault(unit, {}).update(dict.fromkeys(names))
    return {unit: tuple(names) for unit, names in union.items()}


def _shared_start(base: Run, methods: list[Method], shared_dir: Path) -> SharedStart:
    """Step 0 and the unpruned model's statistics: read from `shared_dir`, or computed once and kept there."""
    shared_dir.mkdir(parents=True, exist_ok=True)
    step0_path = shared_dir / "step0.json"
    stats_paths = [shared_dir / f"{side}.safetensors" for side in ("forget", "retain")]
    if step0_path.exists():
        step0 = json.loads(step0_path.read_text())
    else:
        step0 = {**base.step0_record(), "collect_s": 0.0}
        if distributed.is_main():
            write_json(step0_path, step0)
    if all(p.exists() for p in stats_paths):
        statistics = (load_stats(stats_paths[0]), load_stats(stats_paths[1]))
    else:
        names = _union(methods, base)
        statistics: tuple[UnitStats, UnitStats] = tuple(
            base.pruner.collect(side, base.batch_size, names=names) for side in (base.forget, base.retain))
        if distributed.is_main():
            for path, value in zip(stats_paths, statistics):
                atomic_write(path, lambda tmp, value=value: save_stats(value, tmp))
    return SharedStart(step0, statistics, base.forget, base.retain)


def collect_cost(run: Run) -> float | None:
    """Seconds per step of the run's own collections (step 1 is shared): from its log, so resumes count."""
    from ..io import read_log

    own = [r.get("collect_s") for r in read_log(run.run_dir.log_path) if r["step"] >= 2]
    own = [s for s in own if s]
    return sum(own) / len(own) if own else None


def compare(config: RunConfig, scorings: list[str], seeds=(), *, log: Callable[[str], None] = print,
            execute: Callable[[Run], tuple] = Run.execute) -> tuple[dict, Path]:
    """Run every scoring (resuming what is done) and write compare.json and compare.png beside their results.

    `execute(run)` runs one scoring (the CLI wraps it in its progress display).
    """
    from .. import models

    out = folder(config, models.recorded_id(config.model, config.model_id))
    configs = {name: replace(cfg, output=str(out)) for name, cfg in scoring_configs(config, scorings, seeds).items()}
    first, *rest = configs
    base = Run(configs[first], log=log)
    log(f"Step 0 and the unpruned model's statistics, once for {len(configs)} scorings...")
    base.shared = _shared_start(base, [cfg.method for cfg in configs.values()], out / "shared")
    results, paths, costs = {}, {}, {}
    for name in (first, *rest):
        run = base if name == first else Run(configs[name], log=log, shared=base.shared)
        results[name], paths[name] = execute(run)
        costs[name] = collect_cost(run)
        if run is not base:
            del run  # frees this run's model before the next one loads: one extra model in memory at a time, not two
    obj = comparison(results, costs, reference=scorings[0] if "abs" not in results else "abs",
                     files={name: path.name for name, path in paths.items() if path is not None})
    if distributed.is_main():
        write_json(out / "compare.json", obj)
        (out / "compare.png").write_bytes(comparison_png(results, f"{obj['model']} · {obj['direction']}"))
    return obj, out
