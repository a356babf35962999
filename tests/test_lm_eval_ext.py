"""The `separ` lm-eval model: pruning at load time, token_metrics, cache safety, the launcher, bad input."""

import functools
import json
import sqlite3

import pytest
import torch
from click.testing import CliRunner

from separ_eval import models
from separ_eval.cli.lm_eval import lm_eval_command
from separ_eval.data import CorpusBlocks, load_corpus
from separ_eval.engine import arch, edit, metrics
from separ_eval.engine.masks import Masks, MaskError, model_signature
from separ_eval.engine.method import Method, Pruner
from separ_eval.lm_eval_ext import model as separ_model
from separ_eval.lm_eval_ext import runner
from separ_eval.lm_eval_ext.tasks import DEFAULT_SHARDS, TaskDataError
from separ_eval.targets import TargetError

TOKEN_TASKS = {"separ_code_tokens": "code", "separ_prose_tokens": "prose"}
TOKEN_METRICS = ("top1", "top10", "skip50_top1", "skip50_top10", "loss")
RUN = dict(log_samples=False, bootstrap_iters=0)


pytestmark = pytest.mark.usefixtures("one_thread")



def engine_masks(model, tokenizer, method: Method, forget="code", retain="prose") -> Masks:
    """Masks computed by the engine itself (the loop's way), baked into `model`."""
    model_map = arch.map_model(model)
    pruner = Pruner(model, model_map, method)
    pruner.masks.meta["model"] = {"id": "tiny", "signature": model_signature(model)}
    sides = [CorpusBlocks.prepare(load_corpus(c), tokenizer, method.budget, need_eval=False) for c in (forget, retain)]
    fixed = None
    for step in range(1, method.steps + 1):
        if method.recollect or fixed is None:
            fixed = [pruner.collect(side, 8) for side in sides]
        pruner.step(*fixed, step)
    return pruner.masks


@pytest.fixture(scope="module")
def masks_dir(tiny_dir, tmp_path_factory):
    model, tokenizer, _ = models.load(str(tiny_dir))
    masks = engine_masks(model, tokenizer, Method(ff_frac=0.3, attn_frac=0.1, steps=1, collect_tokens=3000))
    return masks.save(tmp_path_factory.mktemp("masks"))


@functools.lru_cache(maxsize=4)
def engine_blocks(model_dir, corpus, eval_tokens=Method().eval_tokens) -> CorpusBlocks:
    _, tokenizer, _ = models.load(str(model_dir))
    return CorpusBlocks.prepare(load_corpus(corpus), tokenizer, Method(eval_tokens=eval_tokens).budget)


def engine_counts(model_dir, masks_dir, corpus, keep=None, eval_tokens=Method().eval_tokens) -> metrics.TokenCounts:
    """The loop's own metrics: models.load + edit.apply + CorpusBlocks.prepare + metrics.evaluate."""
    model, _, _ = models.load(str(model_dir))
    if masks_dir is not None:
        edit.apply(arch.map_model(model), Masks.load(masks_dir))
    blocks = engine_blocks(model_dir, corpus, eval_tokens)
    evaluate = blocks.evaluate
    if keep is not None:
        evaluate = evaluate.select([i for i in range(len(evaluate)) if keep(i)])
    return metrics.evaluate(model, evaluate, blocks.frequent, batch_size=8)


def assert_token_scores_equal(scores: dict, counts: metrics.TokenCounts):
    expected = counts.metrics()
    for name in TOKEN_METRICS:
        assert scores[f"{name},none"] == pytest.approx(expected[name], abs=1e-6, rel=1e-6), name


def bits_per_byte(model, model_args, limit=3, **kwargs) -> float:
    results = runner.simple_evaluate(model, model_args, tasks=["separ_code_ppl"], limit=limit, **RUN, **kwargs)
    return results["results"]["separ_code_ppl"]["bits_per_byte,none"]


# ---------------------------------------------------------------------------- token_metrics


def test_token_tasks_equal_engine_metrics(tiny_dir, masks_dir):
    results = runner.simple_evaluate(
        "separ", f"pretrained={tiny_dir},masks={masks_dir},batch_size=8", tasks=list(TOKEN_TASKS), **RUN
    )
    scores = runner.scores(results)
    for task, corpus in TOKEN_TASKS.items():
        pruned = engine_counts(tiny_dir, masks_dir, corpus)
        assert pruned.n > 0.9 * Method().eval_tokens  # the whole default budget
        assert_token_scores_equal(scores[task], pruned)
        unpruned = engine_counts(tiny_dir, None, corpus).metrics()
        assert scores[task]["loss,none"] != pytest.approx(unpruned["loss"], abs=1e-4)


def test_limit_takes_whole_shards(tiny_dir, masks_dir):
    results = runner.simple_evaluate(
        "separ", f"pretrained={tiny_dir},masks={masks_dir},batch_size=3", tasks=["separ_prose_tokens"], limit=3, **RUN
    )
    shards = engine_counts(tiny_dir, masks_dir, "prose", keep=lambda i: i % DEFAULT_SHARDS < 3)
    assert_token_scores_equal(runner.scores(results)["separ_prose_tokens"], shards)


def test_groups_run_and_report_pruning(tiny_dir, masks_dir):
    results = runner.simple_evaluate(
        "separ", {"pretrained": str(tiny_dir), "masks": str(masks_dir)}, tasks=["separ_code", "separ_general"],
        limit=2, **RUN,
    )
    scores = runner.scores(results)
    assert set(results["group_subtasks"]["separ_code"]) == {"separ_code_tokens", "separ_code_ppl", "separ_humaneval_mc"}
    assert set(results["group_subtasks"]["separ_general"]) == {
        "separ_prose_tokens", "separ_prose_ppl", "separ_world_facts_mc"}
    for task in ("separ_humaneval_mc", "separ_world_facts_mc"):
        assert 0 <= scores[task]["acc,none"] <= 1
    for task in ("separ_code_ppl", "separ_prose_ppl"):
        assert scores[task]["bits_per_byte,none"] > 0
    info = results["config"]["separ"]
    masks = Masks.load(masks_dir)
    assert info["fingerprint"] == masks.fingerprint()
    assert info["pruned"]["ff"] == pytest.approx(masks.fraction("ff"))
    assert info["masks"] == str(masks_dir)


def test_in_memory_evaluate_tasks_for_the_loop(tiny_dir, masks_dir):
    model, tokenizer, _ = models.load(str(tiny_dir))
    edit.apply(arch.map_model(model), Masks.load(masks_dir))
    scores = runner.evaluate_tasks(model, tokenizer, ["separ_code_tokens"], limit=2)
    shards = engine_counts(tiny_dir, masks_dir, "code", keep=lambda i: i % DEFAULT_SHARDS < 2)
    assert_token_scores_equal(scores["separ_code_tokens"], shards)


# ---------------------------------------------------------------------------- pruning at load time


def test_prune_target_computes_the_engines_masks(tiny_dir, tmp_path):
    lm = separ_model.SeparLM(
        pretrained=str(tiny_dir), prune_target="code", ff_frac=0.1, attn_frac=0.05, steps=2, collect_tokens=2000,
        scoring="freq", save_masks=str(tmp_path / "masks"),
    )
    saved = Masks.load(tmp_path / "masks")
    model, tokenizer, _ = models.load(str(tiny_dir))
    method = Method(ff_frac=0.1, attn_frac=0.05, steps=2, collect_tokens=2000, ff_scoring="freq", attn_scoring="freq")
    expected = engine_masks(model, tokenizer, method)
    for unit in ("ff", "attn"):
        assert torch.equal(saved.pruned[unit], expected.pruned[unit])
        assert torch.equal(lm.masks.pruned[unit], expected.pruned[unit])
    assert saved.fraction("ff") == pytest.approx(0.2, abs=0.01)
    assert saved.meta["target"] == {"name": "code", "forget": "code", "retain": "prose", "reversed": False}
    assert saved.meta["method"]["scoring"] == {"ff": "freq", "attn": "freq"}
    for name, param in lm.model.state_dict().items():  # the pruning is baked into the weights
        assert torch.equal(param, model.state_dict()[name]), name

    flipped = separ_model.SeparLM(pretrained=str(tiny_dir), prune_target="code", reverse=True, ff_frac=0.1, steps=1,
                              collect_tokens=2000)
    assert flipped.masks.meta["target"]["reversed"] is True and flipped.masks.meta["target"]["forget"] == "prose"
    assert flipped.fingerprint != lm.fingerprint


def test_exported_checkpoint_on_hf_matches_separ_with_masks(tiny_dir, masks_dir, tmp_path):
    model, tokenizer, _ = models.load(str(tiny_dir))
    masks = Masks.load(masks_dir)
    edit.apply(arch.map_model(model), masks)
    exported = edit.export(model, tokenizer, masks, tmp_path / "exported")
    on_hf = bits_per_byte("hf", f"pretrained={exported},device=cpu")
    on_separ = bits_per_byte("separ", f"pretrained={tiny_dir},masks={masks_dir}")
    unpruned = bits_per_byte("hf", f"pretrained={tiny_dir},device=cpu")
    assert on_hf == pytest.approx(on_separ, rel=1e-6)
    assert on_hf != pytest.approx(unpruned, rel=1e-3)


# ---------------------------------------------------------------------------- cache safety


def test_use_cache_keeps_pruned_and_unpruned_apart(tiny_dir, masks_dir, tmp_path):
    cache = str(tmp_path / "cache" / "responses")
    unpruned = bits_per_byte("separ", f"pretrained={tiny_dir}", use_cache=cache)
    pruned = bits_per_byte("separ", f"pretrained={tiny_dir},masks={masks_dir}", use_cache=cache)
    assert pruned != pytest.approx(unpruned, rel=1e-3)
    assert pruned == pytest.approx(bits_per_byte("separ", f"pretrained={tiny_dir},masks={masks_dir}"), rel=1e-9)
    # Another backend on the same cache reads the unpruned answers, never the pruned ones.
    assert bits_per_byte("hf", f"pretrained={tiny_dir},device=cpu", use_cache=cache) == pytest.approx(unpruned, rel=1e-9)

    # A second pruned run is answered from its own table: the model is never asked.
    lm = separ_model.SeparLM(pretrained=str(tiny_dir), masks=str(masks_dir))

    def must_not_run(*args, **kwargs):
        raise AssertionError("the cached answers of this pruned model were not used")

    lm.loglikelihood_rolling = must_not_run
    assert bits_per_byte(lm, None, use_cache=cache) == pytest.approx(pruned, rel=1e-9)
    with sqlite3.connect(f"{cache}_rank0.db") as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert f"separ_{lm.fingerprint[:24]}" in tables and "unnamed" in tables
        assert db.execute(f'SELECT COUNT(*) FROM "separ_{lm.fingerprint[:24]}"').fetchone()[0] == 3


def test_fingerprint():
    from separ_eval.testing import tiny_model

    masks = Masks.empty(arch.map_model(tiny_model("llama")))
    assert masks.fingerprint() is None  # nothing removed
    masks.pruned["ff"][0, 3] = True
    first = masks.fingerprint()
    masks.offsets["ff"][0, 3] = 0.5
    second = masks.fingerprint()
    assert first and second and first != second and len(first) == 64


# ---------------------------------------------------------------------------- the launcher


def test_launcher_runs_groups_and_user_tasks(tiny_dir, masks_dir, tmp_path):
    from test_tasks import user_tasks

    user_dir = user_tasks(tmp_path, [doc[:3000] for doc in load_corpus("prose").documents[:150]])
    out = tmp_path / "out"
    args = [
        "--model", "separ", "--model_args", f"pretrained={tiny_dir},masks={masks_dir}", "--batch_size", "4",
        "--tasks", "separ_code,separ_general,my_tokens", "--include_path", str(user_dir),
        "--device", "cpu", "--limit", "2", "--output_path", str(out), "--metadata", '{"eval_tokens": 1500}',
    ]
    result = CliRunner().invoke(lm_eval_command, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "separ_humaneval_mc" in result.output or "HumanEval multiple choice" in result.output
    saved = json.loads(next(out.rglob("results_*.json")).read_text())
    scores = runner.scores(saved)
    assert {"separ_code_tokens", "separ_code_ppl", "separ_humaneval_mc", "separ_prose_tokens",
            "separ_prose_ppl", "separ_world_facts_mc", "my_tokens"} <= set(scores)
    assert saved["config"]["separ"]["fingerprint"] == Masks.load(masks_dir).fingerprint()
    # eval_tokens from --metadata reaches the token tasks; shards 0 and 1 of the 1500-token blocks
    shards = engine_counts(tiny_dir, masks_dir, "code", keep=lambda i: i % DEFAULT_SHARDS < 2, eval_tokens=1500)
    assert_token_scores_equal(scores["separ_code_tokens"], shards)


def test_launcher_unknown_task(monkeypatch):
    from lm_eval.tasks import TaskManager

    init = TaskManager.__init__  # lm-eval's 15k tasks take ~20 s to index and are not needed here
    monkeypatch.setattr(TaskManager, "__init__", lambda self, *a, **k: init(self, *a, **{**k, "include_defaults": False}))
    result = CliRunner().invoke(lm_eval_command, ["--model", "dummy", "--tasks", "separ_cod"])
    assert result.exit_code == 1
    assert "Unknown task 'separ_cod'" in result.output and "separ_code" in result.output


# ---------------------------------------------------------------------------- bad input


def test_masks_for_another_architecture(tiny_dir, tmp_path):
    shapes = {"ff": (3, 128), "attn": (3, 64)}  # a 3-layer model with wider MLPs
    other = Masks(
        pruned={u: torch.zeros(s, dtype=torch.bool) for u, s in shapes.items()},
        offsets={u: torch.zeros(s) for u, s in shapes.items()},
        meta={"model": {"id": "tiny-neox"}},
    )
    other.pruned["ff"][0, 0] = True
    other.save(tmp_path)
    with pytest.raises(MaskError) as error:
        separ_model.SeparLM(pretrained=str(tiny_dir), masks=str(tmp_path))
    message = str(error.value)
    assert f"masks={tmp_path}" in message and "tiny-neox" in message and "Recompute" in message


def test_masks_for_another_checkpoint(tiny_dir, tmp_path):
    from separ_eval.testing import tiny_model

    sibling = tiny_model("llama", seed=1)
    masks = Masks.empty(arch.map_model(sibling), {"model": {"id": "llama-seed-1", "signature": model_signature(sibling)}})
    masks.pruned["ff"][0, 0] = True
    masks.save(tmp_path)
    with pytest.raises(MaskError, match="other checkpoint.*Recompute the masks"):
        separ_model.SeparLM(pretrained=str(tiny_dir), masks=str(tmp_path))


@pytest.mark.parametrize("backend", ["hf", "dummy"])
def test_token_metrics_on_a_backend_that_cannot_serve_it(tiny_dir, backend):
    with pytest.raises(TaskDataError) as error:
        runner.simple_evaluate(backend, f"pretrained={tiny_dir},device=cpu", tasks=["separ_code_tokens"], limit=1, **RUN)
    message = str(error.value)
    assert "`--model separ`" in message and "separ_code_ppl" in message


@pytest.mark.parametrize("model_args, match", [
    (dict(ff_frac=0.1), "no prune_target"),
    (dict(masks="x", prune_target="code"), "not both"),
    (dict(prune_target="code", ff_frac=2.0), "ff_frac must be a fraction"),
    (dict(prune_target="code", scoring="magic"), "Unknown scoring 'magic'"),
])
def test_bad_pruning_args(tiny_dir, model_args, match):
    with pytest.raises(separ_model.SeparModelError, match=match):
        separ_model.SeparLM(pretrained=str(tiny_dir), **model_args)


def test_unknown_prune_target(tiny_dir):
    with pytest.raises(TargetError, match="Unknown target 'cobol'.*code, github-code, prose"):
        separ_model.SeparLM(pretrained=str(tiny_dir), prune_target="cobol")


def test_in_memory_model_cannot_be_pruned_by_args():
    from separ_eval.testing import tiny_model

    with pytest.raises(separ_model.SeparModelError, match="pretrained=NAME"):
        separ_model.SeparLM(pretrained=tiny_model("llama"), masks="somewhere")


def test_unknown_task_through_simple_evaluate(tiny_dir):
    with pytest.raises(runner.TaskError, match="Unknown task 'separ_genral' \\(did you mean separ_general"):
        runner.simple_evaluate("separ", f"pretrained={tiny_dir}", tasks=["separ_genral"], include_defaults=False)


# ---------------------------------------------------------------------------- the real model (slow)


SLOW_SAMPLES = {  # documents per task (lm-eval's `samples`): a few minutes on 2 CPU cores
    "separ_code_tokens": [0, 1, 2], "separ_prose_tokens": [0, 1, 2],  # 3 of 16 shards: ~1500 tokens each
    "separ_code_ppl": [0, 1], "separ_prose_ppl": [0, 1],
    "separ_humaneval_mc": list(range(16)), "separ_world_facts_mc": list(range(40)),
}


@pytest.mark.slow
def test_smollm2_code_pruning_hits_code_harder(tmp_path, request):
    """Prune code-specific FF neurons of smollm2-135m (2 steps of 1%): code falls more than general."""

    def measure(lm):
        results = runner.simple_evaluate(lm, tasks=["separ_code", "separ_general"], samples=SLOW_SAMPLES, **RUN)
        assert set(results["group_subtasks"]) == {"separ_code", "separ_general"}
        return runner.scores(results)

    pruned_lm = separ_model.SeparLM(
        pretrained="smollm2-135m", prune_target="code", ff_frac=0.01, steps=2, collect_tokens=4000,
        save_masks=str(tmp_path / "masks"), batch_size=8,
    )
    assert Masks.load(tmp_path / "masks").fraction("ff") == pytest.approx(0.02, abs=1e-3)
    pruned = measure(pruned_lm)
    for task, corpus in TOKEN_TASKS.items():  # token-level numbers equal the engine's on the same blocks
        blocks = separ_model.corpus_blocks(pruned_lm.tokenizer, corpus, Method().eval_tokens, Method().block_len)
        subset = blocks.evaluate.select([i for i in range(len(blocks.evaluate)) if i % DEFAULT_SHARDS in SLOW_SAMPLES[task]])
        assert_token_scores_equal(pruned[task], metrics.evaluate(pruned_lm.model, subset, blocks.frequent))
    del pruned_lm
    base = measure(separ_model.SeparLM(pretrained="smollm2-135m", batch_size=8))

    def drop(task, metric):
        return 1 - pruned[task][f"{metric},none"] / base[task][f"{metric},none"]

    report = {
        "top1": (drop("separ_code_tokens", "top1"), drop("separ_prose_tokens", "top1")),
        "skip50_top1": (drop("separ_code_tokens", "skip50_top1"), drop("separ_prose_tokens", "skip50_top1")),
        "mc acc": (drop("separ_humaneval_mc", "acc"), drop("separ_world_facts_mc", "acc")),
        "mc acc_norm": (drop("separ_humaneval_mc", "acc_norm"), drop("separ_world_facts_mc", "acc_norm")),
        "bits_per_byte": (drop("separ_code_ppl", "bits_per_byte"), drop("separ_prose_ppl", "bits_per_byte")),
    }
    print("\nsmollm2-135m, code-specific FF neurons pruned (2 x 1%): relative drop, code vs general")
    for name, (code, general) in report.items():
        print(f"  {name:>14}: code {code:+.3f}  general {general:+.3f}")
    print("  base:", json.dumps(base), "\n  pruned:", json.dumps(pruned))
    assert report["top1"][0] > report["top1"][1] + 0.1
    assert report["mc acc"][0] > report["mc acc"][1]


def test_separ_refuses_an_encoder_as_the_cli_does(tmp_path):
    import transformers

    from separ_eval.models import ModelLoadError
    from separ_eval.testing import tiny_tokenizer

    config = transformers.RobertaConfig(vocab_size=384, hidden_size=64, num_hidden_layers=1, num_attention_heads=4,
                                        intermediate_size=96)
    transformers.RobertaForMaskedLM(config).save_pretrained(tmp_path)
    tiny_tokenizer().save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="roberta model \\(RobertaForMaskedLM\\), not a causal decoder"):
        separ_model.SeparLM(pretrained=str(tmp_path))
