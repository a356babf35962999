"""The package's lm-eval tasks: YAML that lm-eval builds, local datasets, listing, checking, user tasks."""

import json
import math

import pytest
from click.testing import CliRunner

from separ_eval.cli.lm_eval import tasks_command
from separ_eval.data import load_corpus
from separ_eval.engine.method import Method
from separ_eval.lm_eval_ext import runner, tasks
from separ_eval.lm_eval_ext.catalog import task_rows
from separ_eval.resources import tasks_dir

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
        "class: !function separ_eval.lm_eval_ext.tasks.TokenMetricsTask\n"
        f"dataset_kwargs:\n  corpus: {corpus}\n"
    )
    (directory / "my_ppl.yaml").write_text(
        "task: my_ppl\n"
        "custom_dataset: !function separ_eval.lm_eval_ext.tasks.ppl_dataset\n"
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
    rows = tasks.ppl_dataset("code")["test"]
    corpus = load_corpus("code")
    test, train = corpus.split("test"), corpus.split("train")
    assert len(rows) == tasks.PPL_DOCS
    for text in rows["text"]:
        assert len(text) <= tasks.PPL_CHARS
        assert any(doc.startswith(text) for doc in test)
        assert not any(doc.startswith(text) for doc in train)
    assert len(tasks.ppl_dataset("prose", ppl_docs=5, ppl_chars=300)["test"]) == 5


def test_token_documents_are_shards_with_engine_defaults():
    rows = tasks.token_dataset("prose")["test"]
    defaults = Method()
    assert rows["shard"] == list(range(tasks.DEFAULT_SHARDS))
    assert set(rows["eval_tokens"]) == {defaults.eval_tokens} and set(rows["block_len"]) == {defaults.block_len}
    rows = tasks.token_dataset("code", eval_tokens="2000", block_len=128, num_shards=4, pretrained="x")["test"]
    assert (rows["shard"], rows["eval_tokens"][0], rows["block_len"][0]) == ([0, 1, 2, 3], 2000, 128)


def test_aggregation_is_micro_averaged():
    """The YAML names the aggregations; lm-eval's registry resolves them to micro-averages over tokens."""
    from lm_eval.api.registry import get_aggregation

    names = {m["metric"]: m["aggregation"] for m in tasks.token_metric_list()}
    assert set(names) == {"top1", "top10", "skip50_top1", "skip50_top10", "loss", "ppl"}
    mean, perplexity = get_aggregation(names["top1"]), get_aggregation(names["ppl"])
    shards = [(1, 1), (0, 9)]  # one shard 1/1 right, another 0/9: per-token 0.1, mean of means 0.5
    assert mean(shards) == pytest.approx(0.1)
    assert math.isnan(mean([(0, 0)]))
    loss_sums = [(2.0, 1), (4.0, 3)]  # ppl items are log-likelihood sums: -loss
    processed = [tasks.token_process_results({}, [{"n": n, "top1": 0, "top10": 0, "skip_n": 0, "skip_top1": 0,
                                                    "skip_top10": 0, "loss_sum": loss}])["ppl"] for loss, n in loss_sums]
    assert perplexity(processed) == pytest.approx(math.exp(1.5))
    assert tasks.TokenMetricsTask.DEFAULTS.keys().isdisjoint({"metric_list"})  # read from the YAML, not repeated


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
        "task: broken_task\ncustom_dataset: !function separ_eval.lm_eval_ext.tasks.ppl_dataset\n"
        "dataset_kwargs: {corpus: no-such-corpus}\noutput_type: loglikelihood_rolling\ntest_split: test\n"
        "doc_to_target: text\n"
    )
    result = CliRunner(env={"COLUMNS": "250"}).invoke(tasks_command, ["--check", "--include-path", str(tmp_path)])
    assert result.exit_code == 1
    assert "1 task(s) failed the check" in result.output
    assert "Unknown corpus 'no-such-corpus'" in result.output.replace("\n", " ").replace("│", "")


def test_user_tasks_run_on_a_tiny_model(tiny_dir, user_dir):
    results = runner.simple_evaluate(
        "separ", f"pretrained={tiny_dir},batch_size=4", tasks=["my_tokens", "my_ppl"], include_path=[user_dir],
        metadata={"eval_tokens": 1500, "block_len": 128}, limit=3, log_samples=False, bootstrap_iters=0,
    )
    scores = runner.scores(results)
    assert 0 <= scores["my_tokens"]["top10,none"] <= 1 and scores["my_tokens"]["loss,none"] > 0
    assert scores["my_ppl"]["bits_per_byte,none"] > 0
    assert results["configs"]["my_tokens"]["output_type"] == "token_metrics"


def test_unknown_task_names_close_matches():
    with pytest.raises(runner.TaskError) as error:
        runner.make_task_manager(["separ_code_token"], include_defaults=False)
    message = str(error.value)
    assert "Unknown task 'separ_code_token'" in message and "separ_code_tokens" in message
    assert "separ-eval tasks" in message and "--include_path" in message
