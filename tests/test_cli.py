"""The `separ-eval` command line: help, error messages, leaderboard, validate, export, sweep."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
import torch
from click.testing import CliRunner

from separ_eval import data, models
from separ_eval.cli import cli
from separ_eval.engine import arch, edit
from separ_eval.engine.masks import Masks, model_signature
from separ_eval.engine.method import Method
from separ_eval.report.schema import SCHEMA
from separ_eval.report.separability import summarize
from separ_eval.testing import save_tiny, tiny_tokenizer

ROOT = Path(__file__).resolve().parent.parent

HASH = "0123456789abcdef" * 4


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny llama checkpoint and a `tiny` target over small slices of the embedded corpora."""
    root = tmp_path_factory.mktemp("cli")
    targets = root / "targets"
    targets.mkdir()
    for name in ("code", "prose"):
        with open(root / f"{name}.jsonl", "w", encoding="utf-8") as handle:
            for doc in data.load_corpus(name).documents[:120]:
                handle.write(json.dumps({"text": doc[:2500]}) + "\n")
    (root / "empty.jsonl").write_text("\n")
    (targets / "tiny.yaml").write_text(
        f"target: tiny\nforget: {{corpus: {root / 'code.jsonl'}}}\nretain: {{corpus: {root / 'prose.jsonl'}}}\n"
    )
    (targets / "hollow.yaml").write_text(
        f"target: hollow\nforget: {{corpus: {root / 'empty.jsonl'}}}\nretain: {{corpus: {root / 'prose.jsonl'}}}\n"
    )
    return {"model": str(save_tiny(root / "m", "llama")), "include": str(targets), "root": root}


def invoke(*args, **env):
    return CliRunner(env=env or None).invoke(cli, [str(a) for a in args])


def fails_cleanly(result, code, *fragments):
    """Nonzero exit with a click message (no traceback) containing every fragment."""
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert "Error:" in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


# ---------------------------------------------------------------- help and routing


def test_group_help_lists_commands_and_the_run_hint():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("run", "sweep", "leaderboard", "validate", "export", "lm-eval", "targets", "tasks"):
        assert f"  {command} " in result.output
    assert "separ-eval --prune-target code" in result.output


def help_entries(output: str) -> dict[str, str]:
    """Option name -> its whole help entry (line wrapping undone)."""
    entries, current = {}, None
    for line in output.splitlines():
        if line.startswith("  -"):
            current = line.split()[0]
            entries[current] = ""
        if current:
            entries[current] += " " + line.strip()
    return entries


def test_run_help_shows_the_method_defaults():
    result = invoke("run", "--help")
    assert result.exit_code == 0
    entries = help_entries(result.output)
    m = Method()
    for option, value in (("--ff-frac", m.ff_frac), ("--attn-frac", m.attn_frac), ("--steps", m.steps),
                          ("--collect-tokens", m.collect_tokens), ("--eval-tokens", m.eval_tokens),
                          ("--block-len", m.block_len), ("--offset", m.offset), ("--attn-unit", m.attn_unit),
                          ("--ff-scoring", m.ff_scoring), ("--attn-scoring", m.attn_scoring), ("--seed", m.seed),
                          ("--recollect", "recollect"), ("--model", "smollm2-135m"), ("--output", "results"),
                          ("--tasks", "none"), ("--dtype", "float32")):
        assert f"[default: {value}" in entries[option], (option, entries[option])
    assert "--trust-remote-code" in entries and "default" not in entries["--trust-remote-code"]


def test_options_without_a_command_go_to_run():
    fails_cleanly(invoke("--prune-target", "code", "--ff-frac", "1.5"), 2, "--ff-frac", "1.5", "0.0<=x<=1.0")
    assert "separ-eval run --help" in invoke("--steps", "0").output


# ---------------------------------------------------------------- bad input


def test_bad_settings_are_usage_errors():
    fails_cleanly(invoke("--prune-target", "code", "--attn-frac", "-0.1"), 2, "--attn-frac")
    fails_cleanly(invoke("--prune-target", "code", "--ff-frac", "0.5", "--steps", "3"), 2,
                  "steps x fraction exceeds 1", "lower --steps")
    fails_cleanly(invoke("--prune-target", "code", "--ff-frac", "0"), 2, "Nothing to prune")
    fails_cleanly(invoke("--prune-target", "code", "--scoring", "magic"), 2, "--scoring", "abs")
    fails_cleanly(invoke("--model", "./no/such/folder", "--prune-target", "code"), 2, "no such folder")


def test_unknown_target_suggests_the_close_one(tiny):
    fails_cleanly(invoke("--model", tiny["model"], "--prune-target", "cde"), 1, "Unknown target 'cde'",
                  "Did you mean 'code'", "prose")


def test_model_not_found_offline():
    fails_cleanly(invoke("--model", "no-such-org/no-such-model", "--prune-target", "code"), 1,
                  "Could not load 'no-such-org/no-such-model'", "local directory")


def test_unknown_architecture_says_how_to_map_it(tmp_path):
    import transformers

    config = transformers.MixtralConfig(vocab_size=384, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                                        num_hidden_layers=1, intermediate_size=32, num_local_experts=2)
    transformers.AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path / "moe")
    tiny_tokenizer().save_pretrained(tmp_path / "moe")
    fails_cleanly(invoke("--model", tmp_path / "moe", "--prune-target", "code"), 1,
                  "family 'mixtral'", "Mixture-of-experts", "OVERRIDES")


def test_empty_and_short_corpora(tiny, tmp_path):
    common = ("--model", tiny["model"], "--include-path", tiny["include"], "--output", tmp_path)
    fails_cleanly(invoke(*common, "--prune-target", "hollow"), 1, "empty.jsonl", "is empty")
    fails_cleanly(invoke(*common, "--prune-target", "tiny", "--eval-tokens", 10**8), 1,
                  "test split has only", "lower the token budget")


def test_bad_task_spec(tiny):
    fails_cleanly(invoke("--model", tiny["model"], "--prune-target", "code", "--tasks", "bogus"), 1,
                  "--tasks expects", "forget=a+b,retain=c")


# ---------------------------------------------------------------- leaderboard and validate


def make_results(model_id, forget_top1, retain_top1):
    def scores(top1):
        return {"top1": top1, "top10": 0.9, "skip50_top1": top1 / 2, "skip50_top10": 0.8, "loss": 2.0}

    trajectory = [
        {"step": s, "pruned": {"ff": 0.05 * s, "attn": 0.0}, "forget": scores(f), "retain": scores(r)}
        for s, (f, r) in enumerate(zip(forget_top1, retain_top1))
    ]
    return {
        "schema": SCHEMA,
        "model": {"id": model_id, "revision": None, "family": "llama", "n_params": 135_000_000, "dtype": "float32"},
        "target": {"name": "code", "forget": "code", "retain": "prose", "reversed": False},
        "method": {**Method(steps=2).as_dict()},
        "data": {"forget": {"source": "code", "sha256": HASH}, "retain": {"source": "prose", "sha256": HASH}},
        "trajectory": trajectory,
        "summary": summarize(trajectory),
        "environment": {"created": "2026-01-01T00:00:00Z"},
        "timing": {"total_s": 1.0},
    }


@pytest.fixture
def results_dir(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "good-a.json").write_text(json.dumps(make_results("org/model-a", (0.5, 0.25, 0.1), (0.5, 0.5, 0.45))))
    (folder / "good-b.json").write_text(json.dumps(make_results("org/model-b", (0.4, 0.38, 0.3), (0.5, 0.45, 0.4))))
    (folder / "corrupt.json").write_text('{"schema": "separ-eval/results/v1", "model": ')
    (folder / "foreign.json").write_text(json.dumps({"name": "package.json", "version": "1.0"}))
    return folder


def test_leaderboard_warns_about_bad_files_and_renders_the_rest(results_dir, tmp_path):
    for fmt in ("md", "html", "json", "table"):
        result = invoke("leaderboard", results_dir, "--format", fmt)
        assert result.exit_code == 0, result.output
        assert "corrupt.json" in result.stderr and "invalid JSON" in result.stderr
        assert "foreign.json" in result.stderr and "schema" in result.stderr
        assert "corrupt" not in result.stdout and "foreign" not in result.stdout
        assert "org/model-a" in result.stdout and "org/model-b" in result.stdout
    rows = json.loads(invoke("leaderboard", results_dir, "--format", "json").stdout)
    assert [row["model"] for row in rows] == ["org/model-a", "org/model-b"]  # best SA first
    assert rows[0]["sa_top1"] == pytest.approx(make_results("a", (0.5, 0.25, 0.1), (0.5, 0.5, 0.45))["summary"]["top1"]["sa"])
    md = invoke("leaderboard", results_dir, "--format", "md").stdout.splitlines()
    assert md[0].split("|")[1].strip() == "Model" and len(md) == 4
    out = tmp_path / "board.html"
    assert invoke("leaderboard", results_dir, "--format", "html", "--out", out).exit_code == 0
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and html.count('<tr class="run"') == 2  # one row per valid file
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html  # offline


def test_leaderboard_without_valid_results(tmp_path):
    fails_cleanly(invoke("leaderboard", tmp_path / "missing"), 1, "No results folder")
    (tmp_path / "x.json").write_text("[]")
    result = invoke("leaderboard", tmp_path)
    fails_cleanly(result, 1, "No valid results")
    assert "x.json" in result.stderr


def test_validate_exit_codes(results_dir):
    ok = invoke("validate", results_dir / "good-a.json", results_dir / "good-b.json")
    assert ok.exit_code == 0 and ok.stdout.count("ok: ") == 2
    bad = invoke("validate", results_dir / "good-a.json", results_dir / "foreign.json")
    assert bad.exit_code == 1
    assert "foreign.json" in bad.stderr and "schema: expected 'separ-eval/results/v1'" in bad.stderr
    assert "model: missing" in bad.stderr and "1 of 2 file(s) invalid" in bad.stderr
    whole_folder = invoke("validate", results_dir)
    assert whole_folder.exit_code == 1 and "2 of 4 file(s) invalid" in whole_folder.stderr
    assert invoke("validate", results_dir / "nope.json").exit_code == 1


# ---------------------------------------------------------------- export


def _masks_for(model_dir, tmp_path, offsets=False):
    model, _, _ = models.load(model_dir)
    model_map = arch.map_model(model)
    masks = Masks.empty(model_map, {"model": {"id": model_dir, "signature": model_signature(model)}})
    generator = torch.Generator().manual_seed(0)
    for unit in masks.pruned:
        masks.pruned[unit] = torch.rand(masks.pruned[unit].shape, generator=generator) < 0.3
        if offsets:
            masks.offsets[unit] = torch.randn(masks.pruned[unit].shape, generator=generator) * masks.pruned[unit]
    return masks.save(tmp_path / "masks"), masks


def test_export_round_trip_gives_identical_logits(tiny, tmp_path):
    from transformers import AutoModelForCausalLM

    masks_dir, masks = _masks_for(tiny["model"], tmp_path)
    result = invoke("export", "--model", tiny["model"], "--masks", masks_dir, "--out", tmp_path / "pruned")
    assert result.exit_code == 0, result.output
    pruned, _, _ = models.load(tiny["model"])
    edit.apply(arch.map_model(pruned), masks)
    exported = AutoModelForCausalLM.from_pretrained(tmp_path / "pruned").eval()
    ids = torch.randint(3, 384, (2, 24), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = pruned(ids).logits, exported(ids).logits
        unpruned = models.load(tiny["model"])[0](ids).logits
    assert torch.equal(expected, got)
    assert not torch.allclose(expected, unpruned)  # the pruning did change the model
    assert Masks.load(tmp_path / "pruned" / "separ_masks").pruned["ff"].equal(masks.pruned["ff"])
    fails_cleanly(invoke("export", "--model", tiny["model"], "--masks", masks_dir, "--out", tmp_path / "pruned"), 1,
                  "not empty", "--overwrite")


def test_export_refuses_masks_of_another_model(tiny, tmp_path):
    masks_dir, _ = _masks_for(tiny["model"], tmp_path)
    other = save_tiny(tmp_path / "other", "llama", seed=1)  # same shapes, other weights
    fails_cleanly(invoke("export", "--model", other, "--masks", masks_dir, "--out", tmp_path / "x"), 1,
                  "other checkpoint", "Recompute the masks")
    gpt2 = save_tiny(tmp_path / "gpt2", "gpt_neox")
    fails_cleanly(invoke("export", "--model", gpt2, "--masks", masks_dir, "--out", tmp_path / "y"), 1,
                  "Recompute")


def test_export_of_mean_offsets_without_bias_flags_is_refused(tiny, tmp_path):
    masks_dir, _ = _masks_for(tiny["model"], tmp_path, offsets=True)
    fails_cleanly(invoke("export", "--model", tiny["model"], "--masks", masks_dir, "--out", tmp_path / "z"), 1,
                  "offset=zero")


# ---------------------------------------------------------------- sweep


def test_sweep_reports_a_failing_model_goes_on_and_skips_finished_ones(tiny, tmp_path):
    args = ("sweep", "--models", f"no-such-org/missing,./nowhere,{tiny['model']}", "--prune-target", "tiny",
            "--include-path", tiny["include"], "--collect-tokens", 2000, "--eval-tokens", 1000, "--block-len", 64,
            "--steps", 2, "--ff-frac", 0.1, "--batch-size", 4, "--device", "cpu", "--output", tmp_path)
    first = invoke(*args)
    assert first.exit_code == 1, first.output
    assert "no-such-org/missing failed: Could not load" in first.stderr
    assert "./nowhere failed: Invalid value for '--model': no such folder" in first.stderr
    assert "step 2/2 collect: 4,0" in first.stderr and "tok/s" in first.stderr  # progress, one line per phase
    [produced] = tmp_path.glob("*.json")
    assert "separ-eval leaderboard" in first.stdout and "│ m " in first.stdout  # a local model by its folder name
    before = produced.read_text()
    second = invoke(*args)
    assert "already done" in second.stderr and second.exit_code == 1
    fails_cleanly(invoke(*args[:-2], "--ff-frac", 2), 2, "--ff-frac")  # bad settings stop it before any model
    assert produced.read_text() == before
    assert invoke("validate", produced).exit_code == 0


def test_max_memory_and_task_specs_are_parsed_by_lm_evals_parser():
    from separ_eval.cli.options import _parse_max_memory
    from separ_eval.run.config import RunError, task_plan

    assert _parse_max_memory(None, None, "0=20GiB,1=20GiB,cpu=60GiB") == {0: "20GiB", 1: "20GiB", "cpu": "60GiB"}
    with pytest.raises(click.BadParameter, match="DEVICE=AMOUNT"):
        _parse_max_memory(None, None, "0=20GiB,cpu")
    assert task_plan("forget=a+b,retain=c", target=None) == {"forget": ["a", "b"], "retain": ["c"]}
    with pytest.raises(RunError, match="--tasks expects"):
        task_plan("forget=a,middle=b", target=None)
    fails_cleanly(invoke("--prune-target", "code", "--max-memory", "cpu=1GiB"), 2, "--max-memory needs --device-map")


def test_seeds_run_once_per_seed_and_print_the_band(tiny, tmp_path):
    common = ("--model", tiny["model"], "--prune-target", "tiny", "--include-path", tiny["include"],
              "--collect-tokens", 1500, "--eval-tokens", 1000, "--block-len", 64, "--steps", 2, "--ff-frac", 0.1,
              "--batch-size", 4, "--device", "cpu", "--output", tmp_path, "--seeds", "0,1,2")
    result = invoke(*common, "--scoring", "random")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in tmp_path.glob("*.json"))
    assert len(names) == 3 and any("seed1" in n for n in names) and any("seed2" in n for n in names)
    masks = {n: Masks.load(tmp_path / "runs" / n[:-5] / "masks" / "step-001").pruned["ff"] for n in names}
    assert len({m.numpy().tobytes() for m in masks.values()}) == 3  # random: other units per seed
    band = [line for line in result.stdout.splitlines() if "ff-random-0.1x2 " in line and "│     3 │" in line]
    assert len(band) == 1 and " sd" in band[0]  # one band row for the three seeds
    abs_run = invoke(*common[:-2], "--seeds", "0,1", "--output", tmp_path / "abs")
    assert abs_run.exit_code == 0, abs_run.output
    assert sorted(p.name.split("__")[-1] for p in (tmp_path / "abs").glob("*.json")) == \
        ["ff-abs-0.1x2-data1.json", "ff-abs-0.1x2.json"]  # other scorings: other documents per seed
    fails_cleanly(invoke(*common[:-2], "--seeds", "0,0"), 2, "distinct")


# ---------------------------------------------------------------- refused before any work


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    """A tiny BertForMaskedLM checkpoint: an encoder, which AutoModelForCausalLM would still load."""
    import transformers

    directory = tmp_path_factory.mktemp("bert")
    config = transformers.BertConfig(vocab_size=384, hidden_size=64, num_hidden_layers=1, num_attention_heads=4,
                                     intermediate_size=96)
    transformers.BertForMaskedLM(config).save_pretrained(directory)
    tiny_tokenizer().save_pretrained(directory)
    return directory


def _no_weights_loaded(monkeypatch):
    import transformers

    def refuse(*args, **kwargs):
        raise AssertionError("the model's weights were loaded")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)


def test_an_encoder_only_model_is_refused_before_its_weights_load(bert_dir, monkeypatch, tmp_path):
    _no_weights_loaded(monkeypatch)
    result = invoke("--model", bert_dir, "--prune-target", "code", "--output", tmp_path)
    fails_cleanly(result, 1, "is a bert model (BertForMaskedLM), not a causal decoder", "bidirectional encoder")
    assert not (tmp_path / "runs").exists()


def test_an_encoder_only_model_prints_no_traceback_from_the_real_command(bert_dir, tmp_path):
    done = subprocess.run([sys.executable, "-m", "separ_eval", "--model", str(bert_dir), "--prune-target", "code",
                           "--output", str(tmp_path)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert [line for line in done.stderr.splitlines() if line.strip()][-1].startswith("Error: ")
    assert "bert" in done.stderr


def test_an_unwritable_output_fails_before_the_model_loads(tiny, monkeypatch, tmp_path):
    from separ_eval import models as models_module

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(models_module, "load", lambda *a, **k: pytest.fail("the model was loaded"))
    result = invoke("--model", tiny["model"], "--prune-target", "tiny", "--include-path", tiny["include"],
                    "--output", blocker / "out")
    fails_cleanly(result, 1, f"Cannot write to --output {blocker / 'out'}", "Not a directory", "writable")
    assert [line for line in result.output.splitlines() if line.startswith("Error:")] == \
        [result.output.strip().splitlines()[-1]]  # one line


def test_a_target_yaml_that_does_not_parse_is_named_with_its_line(tiny, tmp_path):
    (tmp_path / "broken.yaml").write_text("target: broken\nforget: {corpus: code, tasks: [separ_code]\nretain: prose\n")
    (tmp_path / "task.yaml").write_text("task: fine\ncustom_dataset: !function utils.ppl_dataset\n")  # lm-eval's tags
    result = invoke("--model", tiny["model"], "--prune-target", "broken", "--include-path", tmp_path)
    fails_cleanly(result, 1, "broken.yaml, line 3", "not valid YAML")
    listing = CliRunner().invoke(cli, ["targets", "--include-path", str(tmp_path)])
    fails_cleanly(listing, 1, "broken.yaml, line 3")


def test_debug_shows_the_traceback_and_bugs_keep_theirs(tiny, monkeypatch):
    from separ_eval.models import ModelLoadError
    from separ_eval.run import loop

    debug = invoke("--model", "no-such-org/no-such-model", "--prune-target", "code", SEPAR_EVAL_DEBUG="1")
    assert isinstance(debug.exception, ModelLoadError)  # raised, not turned into a message

    def bug(self, *args, **kwargs):
        raise ValueError("a programming error")

    monkeypatch.setattr(loop.Run, "__init__", bug)
    result = invoke("--model", tiny["model"], "--prune-target", "tiny", "--include-path", tiny["include"])
    assert result.exit_code == 1 and isinstance(result.exception, ValueError)  # not a one-line "Error:"
    assert "Error: a programming error" not in result.output


def _results_readme():
    spec = importlib.util.spec_from_file_location("results_readme", ROOT / "scripts" / "results_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compare_prints_one_table_and_writes_compare_json(tiny, tmp_path):
    result = invoke("compare", "--model", tiny["model"], "--prune-target", "tiny", "--include-path", tiny["include"],
                    "--scorings", "abs,wanda-diff,random", "--seeds", "0,1", "--collect-tokens", 1500,
                    "--eval-tokens", 1000, "--block-len", 64, "--steps", 2, "--ff-frac", 0.1, "--batch-size", 4,
                    "--device", "cpu", "--output", tmp_path)
    assert result.exit_code == 0, result.output
    [folder] = (tmp_path / "compare").iterdir()
    saved = json.loads((folder / "compare.json").read_text())
    assert set(saved["scorings"]) == {"abs", "wanda-diff", "random", "random-seed1"}  # random once per seed
    assert "ΔSA vs abs" in result.stdout and "wanda-diff" in result.stdout
    readme = _results_readme().main(str(tmp_path))  # what scripts/publish.sh writes into results/README.md
    section = readme[readme.index("## Scorings compared"):]
    rows = [line for line in section.splitlines() if line.startswith("|") and not line.startswith("| --")][1:]
    assert sorted(row.split("|")[1].strip() for row in rows) == ["abs", "random", "random-seed1", "wanda-diff"]
    abs_row = next(row for row in rows if row.split("|")[1].strip() == "abs")
    assert f"{saved['scorings']['abs']['sa']:.3f} ±" in abs_row and "+0.000 [+0.000, +0.000]" in abs_row
    fails_cleanly(invoke("compare", "--model", tiny["model"], "--prune-target", "tiny", "--include-path",
                         tiny["include"], "--scorings", "abs@fine", "--output", tmp_path), 1, "FRACTIONxSTEPS")
