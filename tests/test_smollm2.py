"""Selective pruning on the real embedded model (SmolLM2-135M-Instruct): code is separable from prose.

Slow (a few minutes on 2 CPU cores) but run in CI: it is the claim the tool exists for.
"""

import copy

import pytest
import torch

from separ_eval import data
from separ_eval.data import CorpusBlocks
from separ_eval.engine import arch, edit, metrics
from separ_eval.engine.masks import Masks
from separ_eval.engine.method import Method, Pruner

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setting(smollm2):
    model, tokenizer, _ = smollm2
    method = Method(ff_frac=0.05, steps=1, collect_tokens=20000, eval_tokens=4000, block_len=512)
    forget = CorpusBlocks.prepare(data.load_corpus("code"), tokenizer, method.budget)
    retain = CorpusBlocks.prepare(data.load_corpus("prose"), tokenizer, method.budget)
    pruner = Pruner(model, arch.map_model(model), method)
    statistics = (pruner.collect(forget, 8), pruner.collect(retain, 8))
    base = {side: metrics.evaluate(model, b.evaluate, b.frequent).metrics() for side, b in (("code", forget), ("prose", retain))}
    return model, tokenizer, method, forget, retain, statistics, base


def _prune_copy(setting, scoring_name):
    model, _, method, forget, retain, statistics, base = setting
    pruned = copy.deepcopy(model)
    chosen = Method(**{**method.model_dump(), "ff_scoring": scoring_name})
    pruner = Pruner(pruned, arch.map_model(pruned), chosen)
    pruner.step(*statistics, step=1)
    after = {side: metrics.evaluate(pruned, b.evaluate, b.frequent).metrics() for side, b in (("code", forget), ("prose", retain))}
    drops = {side: 1 - after[side]["top1"] / base[side]["top1"] for side in after}
    return pruned, pruner, after, drops


@pytest.fixture(scope="module")
def abs_pruned(setting):
    return _prune_copy(setting, "abs")


def test_abs_pruning_removes_code_far_more_than_prose(abs_pruned, setting):
    _, pruner, _, drops = abs_pruned
    print(f"\nabs 5% FF: top1 drop code {drops['code']:.3f}, prose {drops['prose']:.3f}")
    assert pruner.masks.fraction("ff") == pytest.approx(0.05, abs=1e-4)
    assert drops["code"] > 0.2
    assert drops["code"] >= 5 * max(drops["prose"], 1e-3)


def test_random_pruning_barely_touches_code(abs_pruned, setting):
    _, _, _, abs_drops = abs_pruned
    _, _, _, random_drops = _prune_copy(setting, "random")
    print(f"\nrandom 5% FF: top1 drop code {random_drops['code']:.3f}, prose {random_drops['prose']:.3f}")
    assert random_drops["code"] < abs_drops["code"] / 4


def test_export_round_trip_gives_identical_logits_and_metrics(abs_pruned, setting, tmp_path):
    from transformers import AutoModelForCausalLM

    pruned, pruner, after, _ = abs_pruned
    _, tokenizer, _, forget, retain, _, _ = setting
    edit.export(pruned, tokenizer, pruner.masks, tmp_path / "ckpt")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt", dtype=torch.float32).eval()
    ids = forget.evaluate.input_ids[:2]
    with torch.no_grad():
        assert torch.equal(pruned(input_ids=ids).logits, reloaded(input_ids=ids).logits)
    again = metrics.evaluate(reloaded, forget.evaluate, forget.frequent).metrics()
    assert again == after["code"]
    assert Masks.load(tmp_path / "ckpt" / "separ_masks").count("ff") == pruner.masks.count("ff")
