"""Fingerprint of tiny-model runs (masks and metrics per step), to show speed work changes no result.

`python tests/golden_run.py` rewrites tests/data/golden_tiny_run.json; do that only when a change is
meant to change results, and say so in the commit.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch

GOLDEN = Path(__file__).parent / "data" / "golden_tiny_run.json"
BASE = dict(collect_tokens=3000, eval_tokens=1500, block_len=64, steps=3)
CONFIGS = {  # the FF-only and heads-only runs exercise collection of one unit type
    "ff+attn-neuron": dict(ff_frac=0.1, attn_frac=0.1),
    "ff-only": dict(ff_frac=0.1, attn_frac=0.0),
    "attn-heads-only": dict(ff_frac=0.0, attn_frac=0.25, attn_unit="head", steps=2),
}


def fingerprint(root: Path) -> dict:
    from separ_eval.engine.masks import Masks
    from separ_eval.engine.method import Method
    from separ_eval.run.config import RunConfig
    from separ_eval.run.loop import run
    from separ_eval.testing import make_tiny_setup

    tiny = make_tiny_setup(root)
    out = {}
    for name, method in CONFIGS.items():
        config = RunConfig(
            model=tiny["model"], target="tiny", method=Method(**{**BASE, **method}), output=str(root / name),
            include_paths=(tiny["include"],), batch_size=4,
        )
        results, path = run(config, log=lambda message: None)
        steps = []
        for record in results.to_dict()["trajectory"]:
            entry = {"step": record["step"], "forget": record["forget"], "retain": record["retain"]}
            if record["step"] > 0:
                masks = Masks.load(path.parent / "runs" / path.stem / "masks" / f"step-{record['step']:03d}")
                entry["pruned"] = {u: torch.nonzero(m.flatten()).flatten().tolist() for u, m in masks.pruned.items()}
            steps.append(entry)
        out[name] = steps
    return out


if __name__ == "__main__":
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        result = fingerprint(Path(tmp))
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {GOLDEN}")
