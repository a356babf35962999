"""Models split by accelerate's device_map (one layer offloaded to disk) prune exactly like unsharded ones."""

import pytest
import torch

from separ_eval import data, models
from separ_eval.data import CorpusBlocks
from separ_eval.engine import arch
from separ_eval.engine.method import Method, Pruner
from separ_eval.testing import save_tiny


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("tiny") / "llama", "llama")


def _prune_two_steps(model, tokenizer, method):
    pruner = Pruner(model, arch.map_model(model), method)
    forget = CorpusBlocks.prepare(data.load_corpus("code"), tokenizer, method.budget)
    retain = CorpusBlocks.prepare(data.load_corpus("prose"), tokenizer, method.budget)
    for step in (1, 2):
        pruner.step(pruner.collect(forget, 4), pruner.collect(retain, 4), step)
    with torch.no_grad():
        logits = model(input_ids=forget.evaluate.input_ids[:2]).logits
    return pruner.masks, logits


@pytest.mark.parametrize("offset", ["zero", "mean"])
def test_disk_offloaded_layer_prunes_to_the_same_masks(checkpoint, tmp_path, offset):
    method = Method(ff_frac=0.1, attn_frac=0.1, steps=2, collect_tokens=1500, eval_tokens=500, block_len=64, offset=offset)
    plain, tokenizer, _ = models.load(str(checkpoint))
    device_map = {"model.embed_tokens": "cpu", "model.layers.0": "cpu", "model.layers.1": "disk",
                  "model.norm": "cpu", "model.rotary_emb": "cpu", "lm_head": "cpu"}
    from transformers import AutoModelForCausalLM

    sharded = AutoModelForCausalLM.from_pretrained(checkpoint, device_map=device_map, offload_folder=str(tmp_path)).eval()
    assert sharded.model.layers[1].mlp.down_proj.weight.device.type == "meta"  # really offloaded

    masks_plain, logits_plain = _prune_two_steps(plain, tokenizer, method)
    masks_sharded, logits_sharded = _prune_two_steps(sharded, tokenizer, method)
    for unit in ("ff", "attn"):
        assert torch.equal(masks_plain.pruned[unit], masks_sharded.pruned[unit])
        assert masks_plain.pruned[unit][1].any()  # the offloaded layer was pruned too
    torch.testing.assert_close(logits_sharded, logits_plain, rtol=1e-5, atol=1e-5)
