"""The package's lm-eval tasks: YAML that lm-eval builds, local datasets, listing, checking, user tasks."""

import json
import math

import pytest
import torch
from click.testing import CliRunner

from separ_eval import harness
from separ_eval.data import load_corpus
from separ_eval.launcher import task_rows, tasks_command
from separ_eval.method import Method
from separ_eval.paths import tasks_dir

OFFLINE_TASKS = {
    "separ_code_tokens", "separ_prose_tokens", "separ_code_ppl", "separ_prose_ppl",
    "separ_humaneval_mc", "separ_world_facts_mc",
}


pytestmark = pytest.mark.usefixtures("one_thread")



def user_tasks(directory, corpus_docs):
    """A user's include path: a local corpus, a token task and a perplexity task on it, no Python."""
    corpus = directory / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": doc}) + "\n" for doc in corpus_docs))
    (directory / "my_tokens.yaml").write_text(
        "task: my_tokens\n"
        "class: !function separ_eval.harness.TokenMetricsTask\n"
        f"dataset_kwargs:\n  corpus: {corpus}\n"
    )
    (directory / "my_ppl.yaml").write_text(
        "task: my_ppl\n"
        "custom_dataset: !function separ_eval.harness.ppl_dataset\n"
        f"dataset_kwargs:\n  corpus: {corpus}\n"
        "output_type: loglikelihood_rolling\ntest_split: test\ndoc_to_text: ''\ndoc_to_target: text\n"
        "metric_list:\n  - metric: bits_per_byte\n    aggregation: bits_per_byte\n    higher_is_better: false\n"
    )
    return directory


@pytest.fixture(scope="module")
def user_dir(tmp_path_factory):
    return user_tasks(tmp_path_factory.mktemp("user-tasks"), [doc[:3000] for doc in load_corpus("prose").documents[:150]])


def test_layout_follows_lm_eval():
    root = tasks_dir()
    assert (root / "README.md").exists() and (root / "utils.py").exists()
    assert (root / "_tokens_template_yaml").exists()
    rows = {row["name"]: row for row in task_rows()}
    assert OFFLINE_TASKS | {"separ_code", "separ_general", "separ_code_hub", "separ_general_hub"} <= set(rows)
    assert rows["separ_code"]["runs"] == "separ_code_tokens, separ_code_ppl, separ_humaneval_mc"
    assert rows["separ_general"]["runs"] == "separ_prose_tokens, separ_prose_ppl, separ_world_facts_mc"
    assert rows["separ_code_tokens"]["runs"] == "token_metrics"
    assert rows["separ_code_ppl"]["runs"] == "loglikelihood_rolling"
    assert rows["separ_humaneval_mc"]["runs"] == "multiple_choice"
    assert not any(rows[name]["hub"] for name in OFFLINE_TASKS)
    assert rows["separ_code_hub"]["hub"] and rows["separ_general_hub"]["hub"]
    assert "humaneval" in rows["separ_code_hub"]["runs"] and "mmlu" in rows["separ_general_hub"]["runs"]


def test_mc_data_files():
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_defaults=False, include_path=str(tasks_dir()))
    tasks = manager.load(["separ_humaneval_mc", "separ_world_facts_mc"])["tasks"]
    humaneval, facts = tasks["separ_humaneval_mc"], tasks["separ_world_facts_mc"]
    assert len(humaneval.eval_docs) == 164 and len(facts.eval_docs) == 216
    doc = humaneval.eval_docs[0]
    assert humaneval.doc_to_text(doc) == doc["prompt"] and len(humaneval.doc_to_choice(doc)) == 4
    assert humaneval.doc_to_target(doc) == doc["label"]
    doc = facts.eval_docs[0]
    assert facts.doc_to_text(doc).startswith("Q: ") and facts.doc_to_choice(doc)[facts.doc_to_target(doc)].startswith(" ")


def test_ppl_documents_come_from_the_test_split():
    rows = harness.ppl_dataset("code")["test"]
    corpus = load_corpus("code")
    test, train = corpus.split("test"), corpus.split("train")
    assert len(rows) == harness.PPL_DOCS
    for text in rows["text"]:
        assert len(text) <= harness.PPL_CHARS
        assert any(doc.startswith(text) for doc in test)
        assert not any(doc.startswith(text) for doc in train)
    assert len(harness.ppl_dataset("prose", ppl_docs=5, ppl_chars=300)["test"]) == 5


def test_token_documents_are_shards_with_engine_defaults():
    rows = harness.token_dataset("prose")["test"]
    defaults = Method()
    assert rows["shard"] == list(range(harness.DEFAULT_SHARDS))
    assert set(rows["eval_tokens"]) == {defaults.eval_tokens} and set(rows["block_len"]) == {defaults.block_len}
    rows = harness.token_dataset("code", eval_tokens="2000", block_len=128, num_shards=4, pretrained="x")["test"]
    assert (rows["shard"], rows["eval_tokens"][0], rows["block_len"][0]) == ([0, 1, 2, 3], 2000, 128)


def test_aggregation_is_micro_averaged():
    shards = [(1, 1), (0, 9)]  # one shard 1/1 right, another 0/9: per-token 0.1, mean of means 0.5
    assert harness.micro_mean(shards) == pytest.approx(0.1)
    assert harness.micro_ppl([(2.0, 1), (4.0, 3)]) == pytest.approx(math.exp(1.5))
    assert math.isnan(harness.micro_mean([(0, 0)]))


def test_tasks_command_lists_package_and_user_tasks(user_dir):
    result = CliRunner(env={"COLUMNS": "250"}).invoke(tasks_command, ["--include-path", str(user_dir)])
    assert result.exit_code == 0, result.output
    for name in (*OFFLINE_TASKS, "separ_code", "separ_general_hub", "my_tokens", "my_ppl"):
        assert name in result.output
    assert "token_metrics" in result.output and "hub" in result.output


def test_tasks_check_runs_every_offline_task(user_dir):
    result = CliRunner(env={"COLUMNS": "250"}).invoke(tasks_command, ["--check", "--include-path", str(user_dir)])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("│ ")]
    checked = {line.split("│")[1].strip(): line for line in lines}
    for name in (*OFFLINE_TASKS, "separ_code", "separ_general", "my_tokens", "my_ppl"):
        assert "OK" in checked[name], checked.get(name)
    assert "skipped" in checked["separ_code_hub"]


def test_tasks_check_reports_a_broken_task(tmp_path):
    (tmp_path / "broken.yaml").write_text(
        "task: broken_task\ncustom_dataset: !function separ_eval.harness.ppl_dataset\n"
        "dataset_kwargs: {corpus: no-such-corpus}\noutput_type: loglikelihood_rolling\ntest_split: test\n"
        "doc_to_target: text\n"
    )
    result = CliRunner(env={"COLUMNS": "250"}).invoke(tasks_command, ["--check", "--include-path", str(tmp_path)])
    assert result.exit_code == 1
    assert "1 task(s) failed the check" in result.output
    assert "Unknown corpus 'no-such-corpus'" in result.output.replace("\n", " ").replace("│", "")


def test_user_tasks_run_on_a_tiny_model(tiny_dir, user_dir):
    results = harness.simple_evaluate(
        "separ", f"pretrained={tiny_dir},batch_size=4", tasks=["my_tokens", "my_ppl"], include_path=[user_dir],
        metadata={"eval_tokens": 1500, "block_len": 128}, limit=3, log_samples=False, bootstrap_iters=0,
    )
    scores = harness.scores(results)
    assert 0 <= scores["my_tokens"]["top10,none"] <= 1 and scores["my_tokens"]["loss,none"] > 0
    assert scores["my_ppl"]["bits_per_byte,none"] > 0
    assert results["configs"]["my_tokens"]["output_type"] == "token_metrics"


def test_unknown_task_names_close_matches():
    with pytest.raises(harness.HarnessError) as error:
        harness.make_task_manager(["separ_code_token"], include_defaults=False)
    message = str(error.value)
    assert "Unknown task 'separ_code_token'" in message and "separ_code_tokens" in message
    assert "separ-eval tasks" in message and "--include_path" in message
