"""`torchrun --nproc_per_node=2` (gloo on CPU) gives the single-process run's statistics, masks and metrics."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from separ_eval import data
from separ_eval.engine import stats
from separ_eval.engine.masks import Masks
from separ_eval.engine.method import Method
from separ_eval.testing import make_tiny_setup  # a tiny model and a `tiny` target over local corpus slices

ARGS = ["run", "--prune-target", "tiny", "--ff-frac", "0.1", "--attn-frac", "0.1", "--steps", "2",
        "--no-recollect", "--collect-tokens", "3000", "--eval-tokens", "1500", "--block-len", "64",
        "--batch-size", "4", "--device", "cpu"]


def _run(command, output, tiny):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run([*command, *ARGS, "--model", tiny["model"], "--include-path", tiny["include"],
                           "--output", str(output)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = list(Path(output).glob("*.json"))
    assert len(results) == 1
    return json.loads(results[0].read_text()), next((Path(output) / "runs").iterdir())


@pytest.mark.skipif(shutil.which("torchrun") is None and not Path(sys.executable).with_name("torchrun").exists(),
                    reason="torchrun not installed")
def test_two_ranks_equal_one_process(tmp_path):
    tiny = make_tiny_setup(tmp_path)
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    single, single_dir = _run([sys.executable, "-m", "separ_eval"], tmp_path / "single", tiny)
    parallel, parallel_dir = _run([torchrun, "--standalone", "--nproc_per_node=2", "-m", "separ_eval"],
                                  tmp_path / "parallel", tiny)

    tokenizer = AutoTokenizer.from_pretrained(tiny["model"])
    method = Method(ff_frac=0.1, attn_frac=0.1, steps=2, collect_tokens=3000, eval_tokens=1500, block_len=64)
    for side in ("forget", "retain"):
        one = stats.load_stats(single_dir / "stats" / f"{side}.safetensors")
        two = stats.load_stats(parallel_dir / "stats" / f"{side}.safetensors")
        corpus = data.load_corpus(str(tiny["root"] / ("code.jsonl" if side == "forget" else "prose.jsonl")))
        collected = data.CorpusBlocks.prepare(corpus, tokenizer, method.budget, need_eval=False).collect.n_tokens
        for unit in ("ff", "attn"):
            assert one.tokens(unit) == two.tokens(unit) == collected  # every collected token, counted once over ranks
            # the rows the scoring does not read are NaN in both (not collected)
            torch.testing.assert_close(two.sums[unit], one.sums[unit], rtol=1e-9, atol=1e-9, equal_nan=True)
            assert not bool(torch.isnan(one.get(unit, "sum_abs")).any())
    for step in (1, 2):
        a = Masks.load(single_dir / "masks" / f"step-{step:03d}")
        b = Masks.load(parallel_dir / "masks" / f"step-{step:03d}")
        for unit in ("ff", "attn"):
            assert torch.equal(a.pruned[unit], b.pruned[unit])
    assert len(single["trajectory"]) == len(parallel["trajectory"]) == 3
    for one, two in zip(single["trajectory"], parallel["trajectory"]):
        for side in ("forget", "retain"):
            for metric in ("top1", "top10", "skip50_top1", "skip50_top10"):
                assert one[side][metric] == two[side][metric]  # integer counts: exact
            assert one[side]["loss"] == pytest.approx(two[side]["loss"], rel=1e-6)
