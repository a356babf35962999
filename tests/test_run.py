"""The prune-then-evaluate loop end to end on a tiny model: results, masks, modes, resume."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from separ_eval import data, models
from separ_eval.data import CorpusBlocks
from separ_eval.engine import arch, edit, metrics, scoring, stats
from separ_eval.engine.masks import Masks
from separ_eval.engine.method import Method
from separ_eval.report import schema
from separ_eval.report.store import load_results
from separ_eval.run.config import RunConfig, RunError
from separ_eval.run.loop import Run
from separ_eval.run.loop import run as run_loop
from separ_eval.run.rundir import LOG_NAME, read_log
from separ_eval.report.separability import summarize
from separ_eval.testing import HEADS, LAYERS, MLP, make_tiny_setup

FF_UNITS = LAYERS * MLP  # 192
TINY = dict(collect_tokens=3000, eval_tokens=1500, block_len=64, steps=3, ff_frac=0.1, attn_frac=0.1)
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_setup(tmp_path_factory.mktemp("tiny"))


def config(tiny, output, **method) -> RunConfig:
    return RunConfig(
        model=tiny["model"], target="tiny", method=Method(**{**TINY, **method}), output=str(output),
        include_paths=(tiny["include"],), batch_size=4,
    )


def run(cfg: RunConfig, **kwargs) -> tuple[dict, Path]:
    """The loop, with its results as the JSON object the file holds."""
    results, path = run_loop(cfg, **kwargs)
    return results.to_dict(), path


def run_dir(path: Path) -> Path:
    return path.parent / "runs" / path.stem


def close_to_plan(fraction: float, planned: float, units: int, steps: int) -> bool:
    """Each step rounds its count to a whole unit."""
    return abs(fraction - planned) <= steps * 0.5 / units + 1e-12


@pytest.fixture(scope="module")
def default_run(tiny, tmp_path_factory):
    output = tmp_path_factory.mktemp("out")
    obj, path = run(config(tiny, output), log=lambda message: None)
    return obj, path


def same_metrics(got: dict, want: dict) -> bool:
    """Accuracies exactly; loss and ppl to float rounding (a mean offset baked in one go or step by step
    rounds the bias differently in its last bit)."""
    return got.keys() == want.keys() and all(
        got[k] == want[k] if k in metrics.ACCURACY_METRICS else got[k] == pytest.approx(want[k], rel=1e-7) for k in got)


def reevaluate(tiny, masks_dir: Path, method: Method) -> dict:
    """Metrics of a fresh model with the saved masks applied: must equal the logged step."""
    model, tokenizer, _ = models.load(tiny["model"])
    edit.apply(arch.map_model(model), Masks.load(masks_dir))
    blocks = CorpusBlocks.prepare(data.load_corpus(str(tiny["root"] / "code.jsonl")), tokenizer, method.budget)
    return metrics.evaluate(model, blocks.evaluate, blocks.frequent, batch_size=4).metrics()


def test_run_writes_valid_results_masks_and_log(tiny, default_run):
    obj, path = default_run
    assert path.exists() and path.with_suffix(".png").stat().st_size > 1000
    assert load_results(path).to_dict() == json.loads(path.read_text()) == obj
    trajectory = obj["trajectory"]
    assert [r["step"] for r in trajectory] == [0, 1, 2, 3]
    attn_units = LAYERS * HEADS * 16
    for record in trajectory:
        s = record["step"]
        assert close_to_plan(record["pruned"]["ff"], 0.1 * s, FF_UNITS, s)
        assert close_to_plan(record["pruned"]["attn"], 0.1 * s, attn_units, s)
        assert 0 <= record["forget"]["top1"] <= record["forget"]["top10"] <= 1
        assert record["retain"]["loss"] > 0
    assert trajectory[3]["pruned"]["ff"] == pytest.approx(57 / FF_UNITS)  # 3 x round(0.1 x 192)
    directory = run_dir(path)
    assert len(read_log(directory / LOG_NAME)) == 4
    previous = None
    for step in (1, 2, 3):
        masks = Masks.load(directory / "masks" / f"step-{step:03d}")
        assert masks.fraction("ff") == trajectory[step]["pruned"]["ff"]
        assert masks.meta["step"] == step
        if previous is not None:  # cumulative: earlier units stay pruned
            assert bool((previous.pruned["ff"] <= masks.pruned["ff"]).all())
        previous = masks
    assert schema.validate(obj) == []
    points = {m: {k: v[k] for k in ("sa", "mdd", "f_at_r5")} for m, v in obj["summary"].items()}
    assert points == summarize([{k: r[k] for k in ("step", "pruned", "forget", "retain")} for r in trajectory])
    for entry in obj["summary"].values():  # every number says its error
        assert entry["sa_ci"][0] <= entry["sa_ci"][1] and entry["mdd_ci"][0] <= entry["mdd_ci"][1]
    assert all(set(r["stderr"]["forget"]) == set(metrics.ACCURACY_METRICS) for r in trajectory)
    assert len(obj["samples"]["forget"]["documents"]) == obj["data"]["forget"]["eval_documents"] > 1
    # The masks on disk are the model that was measured: a fresh model + masks gives the same numbers.
    assert same_metrics(reevaluate(tiny, directory / "masks" / "step-003", Method(**TINY)), trajectory[3]["forget"])


def test_no_recollect_prunes_cumulative_top_k_of_the_unpruned_statistics(tiny, tmp_path):
    obj, path = run(config(tiny, tmp_path, recollect=False, attn_frac=0.0), log=lambda message: None)
    directory = run_dir(path)
    assert "norecollect" in path.name
    ff = [r["pruned"]["ff"] for r in obj["trajectory"]]
    assert ff == pytest.approx([0.0, 19 / FF_UNITS, 38 / FF_UNITS, 58 / FF_UNITS], abs=1e-7)  # round(0.1 s 192)
    assert [r["pruned"]["attn"] for r in obj["trajectory"]] == [0.0] * 4
    forget = stats.load_stats(directory / "stats" / "forget.safetensors")
    retain = stats.load_stats(directory / "stats" / "retain.safetensors")
    scores = scoring.score("abs", forget, retain, "ff")
    expected = edit.select(scores, torch.zeros_like(scores, dtype=torch.bool), 58)
    saved = Masks.load(directory / "masks" / "step-003")
    assert torch.equal(saved.pruned["ff"], expected)


def test_mean_offset_run_resumes_after_a_torn_log_line(tiny, tmp_path):
    """Mean offsets fold into biases; a torn last record is dropped and that step is redone identically."""
    cfg = config(tiny, tmp_path, offset="mean")
    first, path = run(cfg, log=lambda message: None)
    masks = Masks.load(run_dir(path) / "masks" / "step-003")
    assert bool((masks.offsets["ff"][~masks.pruned["ff"]] == 0).all())
    assert int((masks.offsets["ff"][masks.pruned["ff"]] != 0).sum()) > 40
    assert same_metrics(reevaluate(tiny, run_dir(path) / "masks" / "step-003", cfg.method), first["trajectory"][3]["forget"])

    log = run_dir(path) / LOG_NAME
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:2]) + lines[2][: len(lines[2]) // 2])  # killed while writing step 2
    path.unlink()
    messages = []
    second, again = run(cfg, log=messages.append)
    assert again == path and any("after step 1" in m for m in messages)
    assert len(log.read_bytes().splitlines()) == 4
    assert second["trajectory"] == first["trajectory"]
    assert second["summary"] == first["summary"]


def test_head_pruning_removes_whole_heads(tiny, tmp_path):
    obj, path = run(config(tiny, tmp_path, ff_frac=0.0, attn_frac=0.25, attn_unit="head"), log=lambda m: None)
    assert [r["pruned"]["attn"] for r in obj["trajectory"]] == [0.0, 0.25, 0.5, 0.75]
    assert [r["pruned"]["ff"] for r in obj["trajectory"]] == [0.0] * 4
    masks = Masks.load(run_dir(path) / "masks" / "step-002")
    per_head = masks.pruned["attn"].reshape(LAYERS, HEADS, -1)
    assert bool((per_head.all(-1) | ~per_head.any(-1)).all())  # all or nothing within a head
    assert int(per_head.all(-1).sum()) == 4


def test_a_different_run_in_the_same_folder_is_refused(tiny, default_run):
    from click.testing import CliRunner

    from separ_eval.cli import cli

    _, path = default_run
    other = config(tiny, path.parent, collect_tokens=2000)  # same file name, other settings
    with pytest.raises(RunError, match="holds a different run.*collect_tokens: 3000 there, 2000 now"):
        Run(other, log=lambda message: None).execute()
    result = CliRunner().invoke(cli, [
        "--model", tiny["model"], "--prune-target", "tiny", "--include-path", tiny["include"], "--steps", "3",
        "--ff-frac", "0.1", "--attn-frac", "0.1", "--collect-tokens", "3000", "--eval-tokens", "1500",
        "--block-len", "32", "--output", str(path.parent)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "holds a different run (method.block_len: 64 there, 32 now)" in result.output
    assert "Use another --output" in result.output


def test_read_log_drops_a_torn_line(tmp_path):
    log = tmp_path / LOG_NAME
    log.write_bytes(b'{"step": 0}\n{"step": 1}\n{"step": 2, "for')
    assert read_log(log) == [{"step": 0}, {"step": 1}]
    assert log.read_bytes() == b'{"step": 0}\n{"step": 1}\n'


def _cli_args(tiny, output):
    return [
        "--model", tiny["model"], "--prune-target", "tiny", "--include-path", tiny["include"],
        "--collect-tokens", "3000", "--eval-tokens", "1500", "--block-len", "64", "--steps", "5",
        "--ff-frac", "0.1", "--attn-frac", "0.05", "--batch-size", "4", "--device", "cpu", "--output", str(output),
    ]


def _comparable(path: Path) -> dict:
    obj = json.loads(path.read_text())
    obj.pop("timing")
    obj["environment"].pop("created")
    return obj


def test_resume_after_sigkill_matches_an_uninterrupted_run(tiny, tmp_path):
    """Killed by SIGKILL after two logged steps, the same command finishes with identical numbers."""
    from click.testing import CliRunner

    from separ_eval.cli import cli

    whole, killed = tmp_path / "whole", tmp_path / "killed"
    env = {**os.environ, **ONE_THREAD, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    victim = subprocess.Popen([sys.executable, "-m", "separ_eval", *_cli_args(tiny, killed)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    logs: list[Path] = []

    def kill_after_two_records():
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and victim.poll() is None:
            logs[:] = killed.glob(f"runs/*/{LOG_NAME}")
            if logs and logs[0].read_bytes().count(b"\n") >= 2:
                break
            time.sleep(0.005)
        victim.send_signal(signal.SIGKILL)

    killer = threading.Thread(target=kill_after_two_records)
    killer.start()
    try:  # the uninterrupted reference runs in this process meanwhile (one thread, like the subprocess)
        reference = CliRunner().invoke(cli, _cli_args(tiny, whole))
    finally:
        killer.join()
    assert reference.exit_code == 0, reference.output
    assert victim.wait() == -signal.SIGKILL, victim.stderr.read().decode()[-2000:]
    assert logs
    done = read_log(logs[0])
    assert 2 <= len(done) < 6 and not list(killed.glob("*.json"))  # it really was cut short

    resumed = CliRunner().invoke(cli, _cli_args(tiny, killed))
    assert resumed.exit_code == 0, resumed.output
    assert f"after step {done[-1]['step']} of 5" in resumed.output
    [a], [b] = whole.glob("*.json"), killed.glob("*.json")
    assert a.name == b.name
    assert _comparable(a) == _comparable(b)  # exact: every trajectory number, bit for bit
    assert len(read_log(logs[0])) == 6


def test_runs_match_the_recorded_fingerprint(tmp_path):
    """tests/data/golden_tiny_run.json was written by tests/golden_run.py before the speed work (issue 5) and
    rewritten once since, when the sampling across documents (issue 11) was meant to change the numbers."""
    from golden_run import GOLDEN, fingerprint

    expected = json.loads(GOLDEN.read_text())
    actual = fingerprint(tmp_path)
    assert actual.keys() == expected.keys()
    for name in expected:
        for got, want in zip(actual[name], expected[name], strict=True):
            assert got.get("pruned") == want.get("pruned"), (name, got["step"])  # identical masks
            for side in ("forget", "retain"):
                for metric, value in want[side].items():
                    if metric in metrics.ACCURACY_METRICS:
                        assert got[side][metric] == value, (name, got["step"], side, metric)
                    else:
                        assert got[side][metric] == pytest.approx(value, rel=1e-6), (name, got["step"], side, metric)


def test_progress_opens_each_phase_before_its_first_batch(tiny, tmp_path):
    """A phase's clock starts at its opening call (0 tokens); tokens reported add up to what the blocks hold."""
    calls = []
    cfg = config(tiny, tmp_path, steps=1, attn_frac=0.0)
    loop_run = Run(cfg, progress=lambda phase, step, n: calls.append((phase, step, n)), log=lambda message: None)
    loop_run.execute()
    phases = []
    for phase, step, n in calls:
        if not phases or tuple(phases[-1][:2]) != (phase, step):
            assert n == 0, (phase, step)
            phases.append([phase, step, 0])
        phases[-1][2] += n
    evaluated = loop_run.forget.evaluate.n_tokens + loop_run.retain.evaluate.n_tokens
    collected = loop_run.forget.collect.n_tokens + loop_run.retain.collect.n_tokens
    assert phases == [["evaluate", 0, evaluated], ["collect", 1, collected], ["evaluate", 1, evaluated]]


def test_hf_backend_scores_exported_checkpoints_like_the_in_process_model(tiny, tmp_path):
    """--eval-backend hf: the pruned model, exported each task step, scores as the `separ` wrapper does;
    token-metric tasks (only `separ` can run them) are left to the loop's own metrics, with a note."""
    tasks = dict(tasks="forget=separ_code_tokens+separ_code_ppl,retain=separ_prose_ppl", task_limit=3)
    messages = []
    base = config(tiny, tmp_path / "separ", steps=1, attn_frac=0.0)
    separ_obj, _ = run(RunConfig(**{**vars(base), **tasks}), log=lambda message: None)
    hf_cfg = RunConfig(**{**vars(base), **tasks, "eval_backend": "hf", "output": str(tmp_path / "hf")})
    hf_obj, hf_path = run(hf_cfg, log=messages.append)
    assert any("separ_code_tokens" in m and "token metrics" in m for m in messages)
    for step in (0, 1):
        separ_tasks, hf_tasks = separ_obj["trajectory"][step]["tasks"], hf_obj["trajectory"][step]["tasks"]
        assert set(hf_tasks["forget"]) == {"separ_code_ppl"} and set(hf_tasks["retain"]) == {"separ_prose_ppl"}
        for side, task in (("forget", "separ_code_ppl"), ("retain", "separ_prose_ppl")):
            for metric in ("bits_per_byte,none", "word_perplexity,none"):
                assert hf_tasks[side][task][metric] == pytest.approx(separ_tasks[side][task][metric], rel=1e-5)
    # pruning moved the score, so the step-1 equality is about the pruned checkpoint, not the base model
    assert hf_obj["trajectory"][1]["tasks"]["forget"]["separ_code_ppl"]["bits_per_byte,none"] != \
        hf_obj["trajectory"][0]["tasks"]["forget"]["separ_code_ppl"]["bits_per_byte,none"]
    assert not (run_dir(hf_path) / "checkpoints" / "step-001").exists()  # exports are temporary


def test_vllm_backend_without_vllm_is_refused_before_any_work(tiny, tmp_path):
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here")
    cfg = RunConfig(**{**vars(config(tiny, tmp_path)), "tasks": "forget=separ_code_ppl,retain=separ_prose_ppl",
                       "eval_backend": "vllm"})
    with pytest.raises(ValueError, match="pip install vllm"):
        Run(cfg, log=lambda message: None)
    assert not (tmp_path / "runs").exists()


def test_device_map_with_disk_offload_runs_the_same_loop(tiny, tmp_path, default_run):
    """--device-map auto with too little --max-memory: layers go to disk; masks and metrics are unchanged."""
    cfg = RunConfig(**{**vars(config(tiny, tmp_path)), "device_map": "auto", "max_memory": {"cpu": "120KB"}})
    sharded = Run(cfg, log=lambda message: None)
    offloaded = [n for n, p in sharded.model.named_parameters() if p.device.type == "meta"]
    assert any("layers.1" in n for n in offloaded)  # really split
    obj, path = sharded.execute()
    obj = obj.to_dict()
    plain, plain_path = default_run
    for got, want in zip(obj["trajectory"], plain["trajectory"], strict=True):
        assert got["pruned"] == want["pruned"]
        for side in ("forget", "retain"):
            assert got[side]["top1"] == want[side]["top1"]
            assert got[side]["loss"] == pytest.approx(want[side]["loss"], rel=1e-5)
    for step in (1, 2, 3):
        a = Masks.load(run_dir(path) / "masks" / f"step-{step:03d}")
        b = Masks.load(run_dir(plain_path) / "masks" / f"step-{step:03d}")
        assert all(torch.equal(a.pruned[u], b.pruned[u]) for u in a.pruned)


def test_fast_paths_change_no_mask_and_no_metric(tiny, tmp_path, monkeypatch):
    """Compacted FF layers and blockwise attention (512-token blocks use 4 query blocks) against the plain
    forward: the same masks, the same accuracies, the loss to float rounding."""
    from separ_eval.engine import forward

    method = dict(block_len=512, collect_tokens=6000, eval_tokens=3000, steps=2, ff_frac=0.2, attn_frac=0.1)
    fast_obj, fast_path = run(config(tiny, tmp_path / "fast", **method), log=lambda message: None)
    monkeypatch.setattr(forward, "ENABLED", False)
    plain_obj, plain_path = run(config(tiny, tmp_path / "plain", **method), log=lambda message: None)
    for fast, plain in zip(fast_obj["trajectory"], plain_obj["trajectory"], strict=True):
        for side in ("forget", "retain"):
            for metric, value in plain[side].items():
                if metric in metrics.ACCURACY_METRICS:
                    assert fast[side][metric] == value, (fast["step"], side, metric)
                else:
                    assert fast[side][metric] == pytest.approx(value, rel=1e-6), (fast["step"], side, metric)
    for step in (1, 2):
        a, b = (Masks.load(p.parent / "runs" / p.stem / "masks" / f"step-{step:03d}") for p in (fast_path, plain_path))
        for unit in arch.UNIT_TYPES:
            assert torch.equal(a.pruned[unit], b.pruned[unit]), (step, unit)
    assert fast_obj["trajectory"][2]["pruned"]["ff"] == pytest.approx(2 * round(0.2 * FF_UNITS) / FF_UNITS)


def test_random_scoring_runs_no_statistics_pass(tiny, tmp_path):
    """A random baseline reads no activation: the decoder runs for the evaluations only, and the masks
    are the seeded random choice."""
    cfg = config(tiny, tmp_path, steps=2, attn_frac=0.0, ff_scoring="random")
    loop_run = Run(cfg, log=lambda message: None)
    forwards = []
    handle = arch.base_model(loop_run.model).register_forward_hook(lambda *args: forwards.append(1))
    loop_run.execute()
    handle.remove()
    batches = sum(-(-len(side.evaluate) // loop_run.batch_size) for side in (loop_run.forget, loop_run.retain))
    assert len(forwards) == 3 * batches  # steps 0, 1, 2: evaluation passes only
    shapes = loop_run.model_map.shapes()
    empty = stats.UnitStats.zeros(shapes)
    first = edit.select(scoring.score("random", empty, empty, "ff", seed=0), torch.zeros(shapes["ff"], dtype=torch.bool),
                         round(0.1 * FF_UNITS))
    saved = Masks.load(loop_run.run_dir.masks_dir(1))
    assert torch.equal(saved.pruned["ff"], first)


def test_a_run_does_not_depend_on_the_order_of_documents_in_the_corpus_files(tiny, tmp_path):
    """The same corpora with their lines shuffled: the same blocks, documents, masks and numbers."""
    import random

    shuffled = tmp_path / "shuffled"
    (shuffled / "targets").mkdir(parents=True)
    for name in ("code", "prose"):
        lines = (tiny["root"] / f"{name}.jsonl").read_text().splitlines(keepends=True)
        random.Random(5).shuffle(lines)
        (shuffled / f"{name}.jsonl").write_text("".join(lines))
    (shuffled / "targets" / "tiny.yaml").write_text(
        f"target: tiny\nforget: {{corpus: {shuffled / 'code.jsonl'}}}\nretain: {{corpus: {shuffled / 'prose.jsonl'}}}\n")
    base = config(tiny, tmp_path / "a", steps=2, attn_frac=0.0)
    first, first_path = run(base, log=lambda message: None)
    second, second_path = run(RunConfig(**{**vars(base), "output": str(tmp_path / "b"),
                                           "include_paths": (str(shuffled / "targets"),)}), log=lambda message: None)
    assert (run_dir(first_path) / "blocks.jsonl").read_text() == (run_dir(second_path) / "blocks.jsonl").read_text()
    assert first["samples"] == second["samples"] and first["trajectory"] == second["trajectory"]
    for side in ("forget", "retain"):
        assert first["data"][side]["sha256"] == second["data"][side]["sha256"]  # the same set of documents
    layout = [json.loads(line) for line in (run_dir(first_path) / "blocks.jsonl").read_text().splitlines()]
    assert {(r["side"], r["phase"]) for r in layout} == {(s, p) for s in ("forget", "retain") for p in ("collect", "evaluate")}
    evaluated = {w["document"] for r in layout if r["side"] == "forget" and r["phase"] == "evaluate" for w in r["windows"]}
    assert evaluated == set(first["samples"]["forget"]["documents"])
    assert first["data"]["forget"]["eval_documents"] == len(evaluated)


def test_corpora_with_their_own_splits_are_used_as_given(tiny, tmp_path):
    """{train: FILE, test: FILE}: statistics come only from the train file, metrics only from the test file,
    whatever the hash split would have said; results name the files, not where they lie."""
    from separ_eval.data.corpora import _is_test
    from separ_eval.data.sampling import document_id

    folder = tmp_path / "own-splits"
    folder.mkdir()
    docs = {name: [json.loads(line)["text"] for line in (tiny["root"] / f"{name}.jsonl").read_text().splitlines()]
            for name in ("code", "prose")}
    ids = {}
    for name, texts in docs.items():
        for split, part in (("train", texts[:80]), ("test", texts[80:])):
            (folder / f"{name}-{split}.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in part))
            ids[name, split] = {document_id(t) for t in part}
    (folder / "split.yaml").write_text(  # relative paths: read next to the target file
        "target: split\nforget: {corpus: {train: code-train.jsonl, test: code-test.jsonl}}\n"
        "retain: {corpus: {train: prose-train.jsonl, test: prose-test.jsonl}}\n")
    cfg = RunConfig(**{**vars(config(tiny, tmp_path / "out", steps=1, attn_frac=0.0)), "target": "split",
                       "include_paths": (str(folder),)})
    obj, path = run(cfg, log=lambda message: None)
    layout = [json.loads(line) for line in (run_dir(path) / "blocks.jsonl").read_text().splitlines()]
    used = {}
    for record in layout:
        used.setdefault((record["side"], record["phase"]), set()).update(w["document"] for w in record["windows"])
    for side, name in (("forget", "code"), ("retain", "prose")):
        assert used[side, "collect"] <= ids[name, "train"] and used[side, "evaluate"] <= ids[name, "test"]
        assert used[side, "collect"] and used[side, "evaluate"]
    hash_test = {document_id(t) for t in docs["code"][:80] if _is_test(t)}
    assert used["forget", "collect"] & hash_test  # the hash split would have held these out: it was not used
    assert obj["data"]["forget"]["source"] == "local:train=code-train.jsonl,test=code-test.jsonl"
    assert obj["data"]["forget"]["split"] == "given" and obj["target"]["forget"] == "train=code-train.jsonl,test=code-test.jsonl"
    text = path.read_text()
    assert str(tmp_path) not in text and '"/tmp' not in text  # no absolute path of this machine in the results
    assert obj["model"]["id"] == "m" and path.name.startswith("m__split__")  # a local model by its folder name


# ---------------------------------------------------------------- compare


def test_compare_shares_step_0_and_the_first_statistics_and_gives_the_runs_alone(tiny, tmp_path, monkeypatch):
    """Scorings under the same data: step 0 is evaluated once and the unpruned model's statistics collected once
    (the union of what they read); each scoring's run is the run it would be alone; compare.json pairs them."""
    from separ_eval.run import compare as compare_module

    collects, step0s = [], []
    original_collect, original_evaluate = stats.collect, Run._evaluate
    monkeypatch.setattr(stats, "collect", lambda *a, **k: (collects.append(k.get("names")), original_collect(*a, **k))[1])
    monkeypatch.setattr(Run, "_evaluate", lambda self, step: (step0s.append(step) if step == 0 else None,
                                                              original_evaluate(self, step))[1])
    base = config(tiny, tmp_path, steps=2, attn_frac=0.0)
    scorings = ["abs", "std", "attrib", "wanda-diff", "centred", "random"]
    obj, folder = compare_module.compare(base, scorings, log=lambda message: None)
    assert step0s == [0]  # one step-0 evaluation for six scorings
    assert len(collects) == 2 + 2 * 5  # the shared first collection (2 sides), then step 2 of each but random
    union = collects[0]["ff"]
    assert {"sum_abs", "sum", "sum_sq", "sum_grad", "sum_act_grad"} <= set(union)  # what all of them read, once
    saved = json.loads((folder / "compare.json").read_text())
    assert saved == json.loads(json.dumps(obj)) and set(saved["scorings"]) == set(scorings)
    assert (folder / "compare.png").stat().st_size > 5000
    files = sorted(folder.glob("*.json"))
    assert len(files) == 7  # six results files and compare.json
    for name, entry in saved["scorings"].items():
        assert schema.validate(json.loads((folder / entry["file"]).read_text())) == []
        assert entry["sa_ci"][0] <= entry["sa"] <= entry["sa_ci"][1] or entry["sa"] is None
    assert saved["scorings"]["abs"]["sa_diff_abs"] == 0 and saved["scorings"]["abs"]["sa_diff_abs_ci"] == [0.0, 0.0]
    low, high = saved["scorings"]["attrib"]["sa_diff_abs_ci"]
    assert low <= saved["scorings"]["attrib"]["sa_diff_abs"] <= high and saved["best_classical"] in ("abs", "std")
    centred = json.loads((folder / saved["scorings"]["centred"]["file"]).read_text())
    assert centred["method"]["offset"] == "mean"  # centred is meant to keep a removed unit's mean
    first_steps = {json.dumps(json.loads((folder / e["file"]).read_text())["samples"]["forget"]["counts"][0])
                   for e in saved["scorings"].values()}
    assert len(first_steps) == 1  # the very same step 0 for all

    for name in ("attrib", "abs"):  # alone, the same masks and numbers
        method = Method(**{**TINY, "steps": 2, "attn_frac": 0.0, "ff_scoring": name})
        alone, alone_path = run(RunConfig(**{**vars(base), "method": method, "output": str(tmp_path / f"alone-{name}")}),
                                log=lambda message: None)
        together = json.loads((folder / saved["scorings"][name]["file"]).read_text())
        assert alone["trajectory"] == together["trajectory"]
        for step in (1, 2):
            a = Masks.load(run_dir(alone_path) / "masks" / f"step-{step:03d}").pruned["ff"]
            b = Masks.load(folder / "runs" / saved["scorings"][name]["file"][:-5] / "masks" / f"step-{step:03d}").pruned["ff"]
            assert torch.equal(a, b)

    collects.clear()
    again, _ = compare_module.compare(base, scorings, log=lambda message: None)  # resumes: nothing to compute
    assert collects == [] and again["scorings"]["attrib"]["sa"] == obj["scorings"]["attrib"]["sa"]


def test_compare_variants_are_other_schedules_or_joint_selection(tiny):
    from separ_eval.run.compare import scoring_configs

    base = config(tiny, "out", attn_frac=0.05, steps=4)
    configs = scoring_configs(base, ["abs", "abs@0.025x8", "attrib+joint", "random"], seeds=(0, 1, 2))
    assert list(configs) == ["abs", "abs@0.025x8", "attrib+joint", "random", "random-seed1", "random-seed2"]
    finer = configs["abs@0.025x8"].method
    assert (finer.ff_frac, finer.attn_frac, finer.steps) == (0.025, 0.025, 8)  # the same total: 20% of each type
    joint = configs["attrib+joint"].method
    assert joint.joint and joint.ff_scoring == joint.attn_scoring == "attrib"
    assert len({cfg.name(base.load_target()) for cfg in configs.values()}) == len(configs)  # one run folder each
    with pytest.raises(RunError, match="FRACTIONxSTEPS"):
        scoring_configs(base, ["abs@fine"])
