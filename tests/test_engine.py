"""The pruning engine on tiny random models of every supported family."""

import pytest
import torch
from torch import nn

from separ_eval.engine import arch, edit, forward, metrics, scoring, stats
from separ_eval.engine.masks import Masks, MaskError, model_signature
from separ_eval.data import Blocks
from separ_eval.testing import FAMILIES, tiny_model

FAMILY_NAMES = sorted(FAMILIES)


def _blocks(n=3, length=12, seed=0, pad_last=4):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, 300, (n, length), generator=generator)
    mask = torch.ones_like(ids)
    mask[-1, length - pad_last :] = 0  # right padding on the last sequence
    ids[mask == 0] = 0
    return Blocks(ids, mask)


def _logits(model, blocks):
    with torch.no_grad():
        return model(input_ids=blocks.input_ids, attention_mask=blocks.attention_mask).logits


def _random_masks(model_map, seed=0, share=0.2):
    generator = torch.Generator().manual_seed(seed)
    return {u: torch.rand(s, generator=generator) < share for u, s in model_map.shapes().items()}


@pytest.fixture(scope="module", params=FAMILY_NAMES)
def family_model(request):
    return request.param, tiny_model(request.param)


def test_widths_match_config(family_model):
    family, model = family_model
    model_map = arch.map_model(model)
    config = model.config
    expected_mlp = next(getattr(config, k) for k in ("ffn_dim", "n_inner", "intermediate_size") if getattr(config, k, None))
    expected_heads = next(getattr(config, k) for k in ("num_attention_heads", "n_head", "num_heads") if getattr(config, k, None))
    hidden = next(getattr(config, k) for k in ("hidden_size", "n_embd") if getattr(config, k, None))
    expected_head_dim = getattr(config, "head_dim", None) or hidden // expected_heads
    assert model_map.n_layers == 2
    assert model_map.d_mlp == expected_mlp
    assert model_map.n_heads == expected_heads
    assert model_map.d_head == expected_head_dim
    if family in ("gemma", "gemma2", "gemma3_text"):
        assert model_map.n_heads * model_map.d_head != hidden  # head_dim differs from hidden / heads


def test_pruning_nothing_is_bit_identical(family_model):
    family, model = family_model
    model = tiny_model(family)
    model_map = arch.map_model(model)
    blocks = _blocks()
    before = _logits(model, blocks)
    empty = Masks.empty(model_map)
    edit.bake(model_map, empty.pruned, empty.offsets)
    assert torch.equal(before, _logits(model, blocks))


def test_baked_pruning_equals_hook_ablation(family_model):
    family, _ = family_model
    model = tiny_model(family)
    model_map = arch.map_model(model)
    blocks = _blocks()
    masks = _random_masks(model_map)
    with edit.ablate_with_hooks(model_map, masks):
        reference = _logits(model, blocks)
    unpruned = _logits(model, blocks)
    edit.bake(model_map, masks)
    baked = _logits(model, blocks)
    valid = blocks.attention_mask.bool()
    assert (reference - unpruned)[valid].abs().max() > 1e-3  # the ablation really changes the output
    torch.testing.assert_close(baked[valid], reference[valid], atol=1e-5, rtol=0)


def test_mean_offset_equals_replacing_by_the_mean(family_model):
    family, _ = family_model
    model = tiny_model(family)
    model_map = arch.map_model(model)
    blocks = _blocks()
    masks = _random_masks(model_map, seed=1)
    generator = torch.Generator().manual_seed(2)
    means = {u: torch.randn(s, generator=generator) * m for u, (s, m) in
             ((u, (model_map.shapes()[u], masks[u])) for u in masks)}

    def replace_hook(keep, mean):
        def hook(module, args):
            return (args[0] * keep + mean * ~keep,)
        return hook

    handles = [
        model_map.projection(u, layer).register_forward_pre_hook(replace_hook(~masks[u][layer], means[u][layer]))
        for u in masks for layer in range(model_map.n_layers)
    ]
    reference = _logits(model, blocks)
    for handle in handles:
        handle.remove()
    edit.bake(model_map, masks, means)
    valid = blocks.attention_mask.bool()
    torch.testing.assert_close(_logits(model, blocks)[valid], reference[valid], atol=1e-5, rtol=0)


def _captured(model, model_map, blocks):
    """Float64 activations (layer, tokens, width) of every unit type, the slow obvious way."""
    kept = {u: [None] * model_map.n_layers for u in arch.UNIT_TYPES}
    handles = [model_map.projection(u, l).register_forward_pre_hook(
        lambda m, args, u=u, l=l: kept[u].__setitem__(l, args[0].detach().double()))
        for u in arch.UNIT_TYPES for l in range(model_map.n_layers)]
    with torch.no_grad():
        arch.base_model(model)(input_ids=blocks.input_ids, attention_mask=blocks.attention_mask)
    for handle in handles:
        handle.remove()
    valid = blocks.attention_mask.bool()
    return {u: torch.stack([a.reshape(*valid.shape, -1)[valid] for a in kept[u]]) for u in arch.UNIT_TYPES}


def _direct_stats(model, model_map, blocks):
    """Float64 statistics from captured activations, the slow obvious way."""
    out = {}
    for unit, acts in _captured(model, model_map, blocks).items():  # (layer, tokens, width)
        out[unit] = torch.stack([
            torch.full_like(acts[:, 0], acts.shape[1]), acts.sum(1), (acts * acts).sum(1), acts.abs().sum(1),
            acts.abs().sqrt().sum(1), (acts > 0).double().sum(1),
        ])
    return out


def test_statistics_merge_by_addition_and_match_direct(family_model):
    family, model = family_model
    model_map = arch.map_model(model)
    blocks = _blocks(n=4)
    whole = stats.collect(model, model_map, blocks, batch_size=4)
    split = stats.collect(model, model_map, blocks, batch_size=1)
    halves = stats.collect(model, model_map, Blocks(blocks.input_ids[:2], blocks.attention_mask[:2]), batch_size=2) + \
        stats.collect(model, model_map, Blocks(blocks.input_ids[2:], blocks.attention_mask[2:]), batch_size=2)
    direct = _direct_stats(model, model_map, blocks)
    assert whole.tokens() == int(blocks.attention_mask.sum())
    forward = len(stats.STAT_NAMES) - len(stats.GRADIENT_STATS)  # gradient sums are asked for by name only
    assert stats.STAT_NAMES[forward:] == stats.GRADIENT_STATS
    for unit in arch.UNIT_TYPES:
        assert whole.sums[unit].dtype == torch.float64
        assert bool(torch.isnan(whole.sums[unit][forward:]).all())  # not collected: reading them fails
        torch.testing.assert_close(whole.sums[unit][:forward], split.sums[unit][:forward], rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(whole.sums[unit][:forward], halves.sums[unit][:forward], rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(whole.sums[unit][:forward], direct[unit], rtol=1e-5, atol=1e-5)


def test_collection_never_runs_the_lm_head():
    model = tiny_model("llama")
    model_map = arch.map_model(model)

    def refuse(*_):
        raise AssertionError("the LM head ran during statistics collection")

    handle = model.get_output_embeddings().register_forward_hook(refuse)
    collected = stats.collect(model, model_map, _blocks(), batch_size=2)
    handle.remove()
    assert collected.tokens() == int(_blocks().attention_mask.sum())
    assert not any(m._forward_pre_hooks for m in model.modules())  # hooks are removed


def test_collecting_one_unit_type_hooks_only_it_and_gives_the_same_sums():
    model = tiny_model("llama")
    model_map = arch.map_model(model)
    both = stats.collect(model, model_map, _blocks(), batch_size=2)
    for unit in arch.UNIT_TYPES:
        hooked = []
        original = stats.StatsCollector._hook
        stats.StatsCollector._hook = lambda self, u, layer: (hooked.append(u), original(self, u, layer))[1]
        try:
            one = stats.collect(model, model_map, _blocks(), batch_size=2, units=(unit,))
        finally:
            stats.StatsCollector._hook = original
        assert set(hooked) == {unit} and len(hooked) == model_map.n_layers
        assert list(one.sums) == [unit]
        assert torch.equal(one.sums[unit].nan_to_num(-1), both.sums[unit].nan_to_num(-1))  # bit for bit; NaN: not collected
    with pytest.raises(ValueError, match="Unknown unit types"):
        stats.collect(model, model_map, _blocks(), units=("mlp",))


def test_lm_head_logits_match_the_model_forward_with_softcapping():
    model = tiny_model("gemma2")
    assert model.config.final_logit_softcapping
    blocks = _blocks(pad_last=0)
    with torch.no_grad():
        hidden = arch.base_model(model)(input_ids=blocks.input_ids).last_hidden_state
        torch.testing.assert_close(arch.lm_head_logits(model, hidden), model(input_ids=blocks.input_ids).logits)


# ------------------------------------------------------------------ scores and selection


def _stats_from(values_forget, values_retain):
    """UnitStats over given activations (tokens, width) for one layer of 'ff'."""
    def build(a):
        a = torch.as_tensor(a, dtype=torch.float64)
        sums = torch.stack([torch.full_like(a[0], a.shape[0]), a.sum(0), (a * a).sum(0), a.abs().sum(0),
                            a.abs().sqrt().sum(0), (a > 0).double().sum(0)])[:, None, :]
        return stats.UnitStats({"ff": sums, "attn": sums.clone()})
    return build(values_forget), build(values_retain)


def test_score_formulas_are_the_documented_ones():
    forget, retain = _stats_from([[1.0, -4.0, 0.0], [3.0, 0.0, 2.0]], [[1.0, 2.0, -1.0], [1.0, -2.0, 1.0]])
    eps = lambda retain_stat: scoring.EPS_RELATIVE * torch.tensor(retain_stat).mean()
    abs_r = [1.0, 2.0, 1.0]
    expected_abs = torch.tensor([2.0, 2.0, 1.0]) / (torch.tensor(abs_r) + eps(abs_r))
    torch.testing.assert_close(scoring.score("abs", forget, retain, "ff")[0], expected_abs.double())
    # true standard deviations: forget unit 0 values {1, 3} -> 1; retain unit 0 {1, 1} -> 0
    std_f, std_r = torch.tensor([1.0, 2.0, 1.0]), torch.tensor([0.0, 2.0, 1.0])
    torch.testing.assert_close(scoring.score("std", forget, retain, "ff")[0],
                               (std_f / (std_r + eps(std_r.tolist()))).double())
    rms_f = torch.tensor([5.0, 8.0, 2.0]).sqrt()
    rms_r = torch.tensor([1.0, 4.0, 1.0]).sqrt()
    torch.testing.assert_close(scoring.score("rms", forget, retain, "ff")[0],
                               (rms_f / (rms_r + eps(rms_r.tolist()))).double())
    freq_f, freq_r = torch.tensor([1.0, 0.0, 0.5]), torch.tensor([1.0, 0.5, 0.5])
    torch.testing.assert_close(scoring.score("freq", forget, retain, "ff")[0],
                               (freq_f / (freq_r + eps(freq_r.tolist()))).double())
    random_a = scoring.score("random", forget, retain, "ff", seed=3)
    assert torch.equal(random_a, scoring.score("random", forget, retain, "ff", seed=3))
    assert not torch.equal(random_a, scoring.score("random", forget, retain, "ff", seed=4))
    with pytest.raises(ValueError, match="Unknown scoring 'nope'"):
        scoring.score("nope", forget, retain, "ff")


def test_head_scores_average_the_head_neurons():
    forget, retain = _stats_from([[4.0, 2.0, 1.0, 1.0]], [[1.0, 1.0, 1.0, 1.0]])
    heads = scoring.score("abs", forget, retain, "attn", d_head=2)
    assert heads.shape == (1, 2)
    torch.testing.assert_close(heads, torch.tensor([[3.0, 1.0]], dtype=torch.float64), rtol=1e-5, atol=0)


def test_selection_is_global_and_skips_pruned_units():
    scores = torch.tensor([[0.9, 0.1, 0.5], [0.8, 0.95, 0.2]])
    already = torch.tensor([[False, False, False], [False, True, False]])
    chosen = edit.select(scores, already, 2)
    assert chosen.tolist() == [[True, False, False], [True, False, False]]
    assert edit.select(scores, already, 0).sum() == 0
    assert int(edit.select(scores, torch.ones_like(already), 3).sum()) == 0  # nothing left to prune


@pytest.mark.parametrize("bad", [-0.1, 1.5, "0.1"])
def test_fractions_outside_unit_interval_are_refused(bad):
    from separ_eval.engine.method import Method

    with pytest.raises(ValueError, match="fraction in \\[0, 1\\]"):
        Method(ff_frac=bad)


# ------------------------------------------------------------------ masks on disk, export


def test_masks_round_trip_and_refuse_another_model(tmp_path):
    model = tiny_model("llama")
    model_map = arch.map_model(model)
    masks = Masks.empty(model_map, {"model": {"id": "tiny-llama", "signature": model_signature(model)}})
    masks.pruned = _random_masks(model_map)
    masks.offsets["ff"] = torch.randn(model_map.shapes()["ff"]) * masks.pruned["ff"]
    masks.save(tmp_path / "m")
    loaded = Masks.load(tmp_path / "m")
    for unit in arch.UNIT_TYPES:
        assert torch.equal(loaded.pruned[unit], masks.pruned[unit])
        assert torch.equal(loaded.offsets[unit], masks.offsets[unit])
    assert loaded.meta["model"]["id"] == "tiny-llama"
    assert loaded.meta["pruned"]["ff"] == pytest.approx(masks.fraction("ff"))

    other_shapes = arch.map_model(tiny_model("gemma"))  # attention width 128, not 64
    with pytest.raises(MaskError, match="not this gemma model"):
        loaded.check_compatible(other_shapes)
    other_weights = tiny_model("llama", seed=1)
    with pytest.raises(MaskError, match="other checkpoint"):
        loaded.check_compatible(model_map, model_signature(other_weights))
    with pytest.raises(MaskError, match="holds no masks"):
        Masks.load(tmp_path)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_export_reloads_with_identical_logits(tmp_path, family):
    from transformers import AutoModelForCausalLM

    model = tiny_model(family)
    model_map = arch.map_model(model)
    masks = Masks.empty(model_map)
    masks.pruned = _random_masks(model_map)
    edit.apply(model_map, masks)
    edit.export(model, None, masks, tmp_path / "ckpt")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt").eval()
    blocks = _blocks(pad_last=0)
    assert torch.equal(_logits(model, blocks), _logits(reloaded, blocks))


def test_export_refuses_a_mean_offset_it_cannot_represent(tmp_path):
    model = tiny_model("llama")  # no bias on o_proj / down_proj
    model_map = arch.map_model(model)
    masks = _random_masks(model_map)
    edit.bake(model_map, masks, {u: torch.ones_like(m, dtype=torch.float32) * m for u, m in masks.items()})
    with pytest.raises(MaskError, match="offset=zero"):
        edit.export(model, None, None, tmp_path / "ckpt")


def test_unknown_architecture_names_the_missing_module():
    from transformers import MambaConfig, MambaForCausalLM

    model = MambaForCausalLM(MambaConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, state_size=4))
    with pytest.raises(arch.ArchitectureError, match="OVERRIDES"):
        arch.map_model(model)


def test_override_table_maps_an_odd_model(monkeypatch):
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.mix = nn.Linear(8, 8)
            self.read = nn.Linear(16, 8)

    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.config = type("C", (), {"model_type": "odd", "hidden_size": 8, "num_attention_heads": 2})()
            self.blocks = nn.ModuleList([Block(), Block()])

    monkeypatch.setitem(arch.OVERRIDES, "odd", {"layers": "blocks", "ff": "read", "attn": "mix"})
    model_map = arch.map_model(Odd())
    assert (model_map.n_layers, model_map.d_mlp, model_map.n_heads, model_map.d_head) == (2, 16, 2, 4)


@pytest.mark.parametrize("chunk", [7, 512, 10**6])
def test_metrics_match_full_logits_whatever_the_chunk(chunk):
    """Chunked LM head (any chunk size) == counting on the model's own full logits over valid positions."""
    model = tiny_model("llama")
    blocks = _blocks(n=4, length=40, pad_last=9)
    frequent = torch.tensor([3, 4, 5, 10, 20])
    counts = metrics.evaluate(model, blocks, frequent, batch_size=3, chunk=chunk)
    logits = _logits(model, blocks)[:, :-1].double()
    valid = (blocks.attention_mask[:, :-1] * blocks.attention_mask[:, 1:]).bool()
    logits, targets = logits[valid], blocks.input_ids[:, 1:][valid]
    top10 = logits.topk(10, dim=-1).indices
    rare = ~torch.isin(targets, frequent)
    hit1, hit10 = top10[:, 0] == targets, (top10 == targets[:, None]).any(-1)
    assert counts.n == targets.numel() == 4 * 39 - 9
    assert (counts.top1, counts.top10) == (int(hit1.sum()), int(hit10.sum()))
    assert (counts.skip_n, counts.skip_top1, counts.skip_top10) == (int(rare.sum()), int((hit1 & rare).sum()),
                                                                     int((hit10 & rare).sum()))
    loss = torch.nn.functional.cross_entropy(logits, targets, reduction="sum").item()
    assert counts.loss_sum == pytest.approx(loss, rel=1e-6)


def test_compacted_model_skips_removed_ff_neurons_with_the_same_outputs(family_model):
    """Inside `compacted` the removed FF neurons are not computed; logits and statistics of the kept
    neurons match the baked model, and the full weights come back on exit."""

    family, _ = family_model
    model = tiny_model(family)
    model_map = arch.map_model(model)
    blocks = _blocks()
    masks = _random_masks(model_map, share=0.3)
    edit.bake(model_map, masks)
    baked = _logits(model, blocks)
    full_stats = stats.collect(model, model_map, blocks, batch_size=2, units=("ff",))
    weights = {name: p for name, p in model.named_parameters()}
    with forward.compacted(model, model_map, masks["ff"]) as kept:
        compacted_logits = _logits(model, blocks)
        compacted_stats = stats.collect(model, model_map, blocks, batch_size=2, units=("ff",), kept={"ff": kept})
        widths = [arch.in_out_features(model_map.projection("ff", layer))[0] for layer in range(model_map.n_layers)]
    if family == "phi3":  # fused gate_up_proj: left whole, same results
        assert kept == {}
    else:
        assert sorted(kept) == list(range(model_map.n_layers))
        for layer, width in enumerate(widths):  # the kept neurons, padded with removed ones to ALIGN
            assert width == kept[layer].numel() and width % forward.ALIGN == 0
            assert 0 <= width - int((~masks["ff"][layer]).sum()) < forward.ALIGN
            assert not bool(masks["ff"][layer][~torch.isin(torch.arange(model_map.d_mlp), kept[layer])].logical_not().any())
    valid = blocks.attention_mask.bool()
    torch.testing.assert_close(compacted_logits[valid], baked[valid], atol=1e-5, rtol=0)
    forward_rows = slice(1, len(stats.STAT_NAMES) - len(stats.GRADIENT_STATS))  # the sums collected by default
    sums, reference = compacted_stats.sums["ff"][forward_rows], full_stats.sums["ff"][forward_rows]
    removed = masks["ff"]
    assert torch.equal(compacted_stats.sums["ff"][0], full_stats.sums["ff"][0])  # token counts for every neuron
    torch.testing.assert_close(sums[:, ~removed], reference[:, ~removed], rtol=1e-5, atol=1e-6)
    if kept:
        computed = torch.stack([torch.isin(torch.arange(model_map.d_mlp), kept[layer]) for layer in range(model_map.n_layers)])
        assert bool((removed & ~computed).any())
        assert bool((sums[:, removed & ~computed] == 0).all())  # removed neurons: nothing was computed
    assert {name: p for name, p in model.named_parameters()} == weights  # the very same tensors
    assert all(p is weights[name] for name, p in model.named_parameters())
    assert torch.equal(_logits(model, blocks), baked)


def test_compaction_changes_no_selection_in_a_pruning_run():
    """Scores from compacted statistics pick the same units as scores from the full ones."""

    model = tiny_model("llama")
    model_map = arch.map_model(model)
    forget_blocks, retain_blocks = _blocks(n=4, seed=1), _blocks(n=4, seed=2)
    masks = _random_masks(model_map, share=0.25)
    edit.bake(model_map, masks)
    full = [stats.collect(model, model_map, b, units=("ff",)) for b in (forget_blocks, retain_blocks)]
    with forward.compacted(model, model_map, masks["ff"]) as kept:
        small = [stats.collect(model, model_map, b, units=("ff",), kept={"ff": kept}) for b in (forget_blocks, retain_blocks)]
    for name in scoring.STATISTICS:
        k = 20
        chosen_full = edit.select(scoring.score(name, *full, "ff"), masks["ff"], k)
        chosen_small = edit.select(scoring.score(name, *small, "ff"), masks["ff"], k)
        assert torch.equal(chosen_full, chosen_small), name


@pytest.mark.parametrize("family", ["llama", "qwen2", "gpt2", "gpt_neox", "opt", "gemma2", "phi3"])
def test_blockwise_causal_attention_gives_the_same_logits(family, monkeypatch):
    """Causal attention computed per block of queries equals the one-call kernel; padded batches and
    soft-capped or windowed attention fall through to transformers' own path."""

    model = tiny_model(family)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 300, (2, 200), generator=generator)
    full = torch.ones_like(ids)
    padded = full.clone()
    padded[1, 150:] = 0
    mask_shapes = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(*args, **kwargs):
        if kwargs.get("attn_mask") is not None:
            mask_shapes.append(tuple(kwargs["attn_mask"].shape[-2:]))
        return sdpa(*args, **kwargs)

    implementation = model.config._attn_implementation
    with torch.no_grad():
        plain = [model(input_ids=ids, attention_mask=m).logits for m in (full, padded)]
        monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
        with forward.blockwise_causal_attention(model):
            blockwise = [model(input_ids=ids, attention_mask=m).logits for m in (full, padded)]
    torch.testing.assert_close(blockwise[0], plain[0], atol=1e-5, rtol=1e-5)
    valid = padded.bool()
    torch.testing.assert_close(blockwise[1][valid], plain[1][valid], atol=1e-5, rtol=1e-5)
    if family in ("llama", "qwen2", "gpt_neox", "phi3"):  # plain causal sdpa: the blocks were used
        assert (128, 128) in mask_shapes and (72, 200) in mask_shapes
    assert model.config._attn_implementation == implementation  # put back; only this model was switched


def test_collecting_only_the_sums_a_scoring_needs_gives_the_same_scores():
    """An `abs` run computes sum_abs (and counts) only: the same bits for those, and reading any
    other statistic fails instead of returning zeros."""
    model = tiny_model("llama")
    model_map = arch.map_model(model)
    everything = stats.collect(model, model_map, _blocks(), batch_size=2)
    for name in scoring.STATISTICS:
        needed = {u: scoring.NEEDS[name] for u in arch.UNIT_TYPES}
        some = stats.collect(model, model_map, _blocks(), batch_size=2, names=needed)
        for unit in arch.UNIT_TYPES:
            for stat in ("count", *scoring.NEEDS[name]):
                assert torch.equal(some.get(unit, stat), everything.get(unit, stat)), (name, stat)
            torch.testing.assert_close(scoring.STATISTICS[name](some, unit), scoring.STATISTICS[name](everything, unit),
                                       rtol=0, atol=0)
            missing = next(s for s in stats.STAT_NAMES[1:] if s not in scoring.NEEDS[name])
            with pytest.raises(ValueError, match="was not collected"):
                some.get(unit, missing)
    with pytest.raises(ValueError, match="Unknown statistics"):
        stats.collect(model, model_map, _blocks(), names={"ff": ("sum_cubed",)})


# ------------------------------------------------------------------ scorings that weigh what removal costs


def _scored_loss(model, blocks, replace=None):
    """Summed next-token loss of the scored targets, the plain way (full logits); `replace(unit, layer, x)` may
    change a projection's input."""
    handles = []
    if replace is not None:
        model_map = arch.map_model(model)
        for unit in arch.UNIT_TYPES:
            for layer in range(model_map.n_layers):
                handles.append(model_map.projection(unit, layer).register_forward_pre_hook(
                    lambda module, args, unit=unit, layer=layer: (replace(unit, layer, args[0]), *args[1:])))
    try:
        logits = model(input_ids=blocks.input_ids, attention_mask=blocks.attention_mask).logits
    finally:
        for handle in handles:
            handle.remove()
    scored, _ = blocks.targets(0, len(blocks))
    return torch.nn.functional.cross_entropy(logits[:, :-1][scored], blocks.input_ids[:, 1:][scored], reduction="sum")


NEEDED_FOR_ATTRIB = {u: scoring.NEEDS["attrib"] for u in arch.UNIT_TYPES}


def test_attribution_is_the_loss_change_to_first_order_and_no_weight_gets_a_gradient():
    model = tiny_model("gpt2", dtype=torch.float64)  # LayerNorm in float64 (Llama's RMSNorm runs in float32)
    model_map = arch.map_model(model)
    blocks = _blocks(n=2, length=24)
    before = {name: p.requires_grad for name, p in model.named_parameters()}
    collected = stats.collect(model, model_map, blocks, batch_size=2, names=NEEDED_FOR_ATTRIB)
    assert all(p.grad is None for p in model.parameters())  # the backward pass reached activations only
    assert {name: p.requires_grad for name, p in model.named_parameters()} == before
    count = collected.get("ff", "count")[0, 0]
    attribution = scoring.attribution(collected, 0.0, "ff")  # zero ablation: what --offset zero does
    with torch.no_grad():
        base = _scored_loss(model, blocks)
    for layer, neuron in ((0, 3), (1, 17), (1, 60)):
        def nudged(epsilon):
            def replace(unit, at, x):
                if unit != "ff" or at != layer:
                    return x
                x = x.clone()
                x[..., neuron] += epsilon * (0.0 - x[..., neuron])
                return x
            with torch.no_grad():
                return _scored_loss(model, blocks, replace)
        derivative = (nudged(1e-6) - base) / (1e-6 * count)
        assert float(attribution[layer, neuron]) == pytest.approx(float(derivative), rel=1e-3)


def test_attribution_equals_a_direct_computation_with_full_logits():
    model = tiny_model("llama", dtype=torch.float64)
    model_map = arch.map_model(model)
    blocks = _blocks(n=3, length=20)
    collected = stats.collect(model, model_map, blocks, batch_size=2, names=NEEDED_FOR_ATTRIB)
    kept = {}

    def keep(unit, layer, x):
        x.retain_grad()
        kept[unit, layer] = x
        return x

    model.requires_grad_(False)
    embeddings = model.get_input_embeddings().register_forward_hook(lambda m, i, out: out.requires_grad_(True))
    _scored_loss(model, blocks, keep).backward()
    embeddings.remove()
    model.requires_grad_(True)
    valid = blocks.attention_mask.bool()
    for unit in arch.UNIT_TYPES:
        grads = torch.stack([kept[unit, layer].grad[valid] for layer in range(model_map.n_layers)])  # (L, tokens, W)
        acts = torch.stack([kept[unit, layer].detach()[valid] for layer in range(model_map.n_layers)])
        retain_mean = acts.mean(dim=1)  # the same blocks on both sides: mean ablation uses their mean
        direct = ((retain_mean[:, None] - acts) * grads).sum(dim=1) / valid.sum()
        torch.testing.assert_close(scoring.attribution(collected, collected.mean(unit, "sum"), unit), direct,
                                   rtol=1e-6, atol=1e-9)
        context = scoring.Context(unit, mean_ablation=True, retain_weight=0.5)
        expected = direct - 0.5 * direct.clamp_min(0)
        torch.testing.assert_close(scoring.score("attrib", collected, collected, unit, context=context), expected,
                                   rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_wanda_diff_and_centred_equal_direct_float64_computations(family):
    model = tiny_model(family)
    model_map = arch.map_model(model)
    forget_blocks, retain_blocks = _blocks(seed=1), _blocks(seed=2)
    names = {u: ("sum", "sum_sq", "sum_abs") for u in arch.UNIT_TYPES}
    forget = stats.collect(model, model_map, forget_blocks, batch_size=2, names=names)
    retain = stats.collect(model, model_map, retain_blocks, batch_size=2, names=names)
    a_forget, a_retain = _captured(model, model_map, forget_blocks), _captured(model, model_map, retain_blocks)
    for unit in arch.UNIT_TYPES:
        columns = [model_map.projection(unit, l).weight.detach().double() for l in range(model_map.n_layers)]
        norms = torch.stack([(w.t() if family == "gpt2" else w).norm(dim=0) for w in columns])  # Conv1D: (in, out)
        torch.testing.assert_close(edit.output_weight_norms(model_map, unit), norms)
        i_forget, i_retain = a_forget[unit].abs().mean(dim=1) * norms, a_retain[unit].abs().mean(dim=1) * norms
        expected = i_forget / i_forget.sum() - 2.0 * i_retain / i_retain.sum()
        context = scoring.Context(unit, weight_norms=norms, retain_weight=2.0)
        torch.testing.assert_close(scoring.score("wanda-diff", forget, retain, unit, context=context), expected,
                                   rtol=1e-5, atol=1e-9)
        change = (a_forget[unit].var(dim=1, unbiased=False) +
                  (a_forget[unit].mean(dim=1) - a_retain[unit].mean(dim=1)) ** 2).sqrt()
        spread = a_retain[unit].std(dim=1, unbiased=False)
        expected = change / (spread + scoring.EPS_RELATIVE * spread.mean())
        torch.testing.assert_close(scoring.score("centred", forget, retain, unit, context=scoring.Context(unit)),
                                   expected, rtol=1e-4, atol=1e-9)


def test_joint_selection_ranks_both_unit_types_in_one_z_scored_pool():
    scores = {"ff": torch.tensor([[1.0, 2.0, 3.0, 4.0]]), "attn": torch.tensor([[100.0, 101.0, 150.0, 102.0]])}
    already = {u: torch.zeros_like(s, dtype=torch.bool) for u, s in scores.items()}
    chosen = edit.select_joint(scores, already, 2)
    # z-scores: ff 4.0 -> +1.16, attn 150 -> +1.49: one of each, although attention's raw scores are all larger
    assert chosen["ff"].tolist() == [[False, False, False, True]]
    assert chosen["attn"].tolist() == [[False, False, True, False]]
    already["attn"][0, 2] = True
    again = edit.select_joint(scores, already, 3)
    assert int(again["ff"].sum() + again["attn"].sum()) == 3 and not bool(again["attn"][0, 2])
