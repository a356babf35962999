"""The task side of lm-eval: the `token_metrics` request type, the token-metric task class, and the
corpus-backed datasets that the task YAML in `tasks/` name with `!function`.

`token_metrics` requests (the `separ_*_tokens` tasks) return the engine's
`metrics.TokenCounts` for a shard of a corpus's test blocks, packed exactly as the
pruning loop packs them. Other backends get an error that names the fix. The
scores are micro-averaged over tokens by named aggregations: `separ_token_mean`
(lm-eval's `weighted_mean` of (count, tokens) pairs, registered here) and lm-eval's
`weighted_perplexity` of (log-likelihood, tokens) pairs. The metric list exists once,
in `tasks/_tokens_template_yaml`; the task class reads it from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml
from lm_eval.api.instance import Instance
from lm_eval.api.metrics import weighted_mean
from lm_eval.api.model import LM
from lm_eval.api.registry import register_aggregation
from lm_eval.api.task import ConfigurableTask

from ..data import document_id, load_corpus
from ..engine.metrics import TokenCounts
from ..engine.method import Method
from ..errors import SeparEvalError
from ..resources import tasks_dir

REQUEST_TYPE = "token_metrics"
DEFAULT_SHARDS = 16  # documents of a token task: shard i holds test blocks i, i+16, i+32, ...
PPL_DOCS = 32  # test documents of a perplexity task
PPL_CHARS = 2000  # each cut to about this many characters (at a line end)


class TaskDataError(SeparEvalError, ValueError):
    """A task's corpus cannot give it documents; the message names the fix."""


@dataclass(frozen=True)
class TokenRequest:
    """One `token_metrics` request: blocks shard::num_shards of a corpus's test split."""

    corpus: str
    shard: int
    num_shards: int
    eval_tokens: int
    block_len: int

    def args(self) -> tuple:
        return (self.corpus, self.shard, self.num_shards, self.eval_tokens, self.block_len)

    @classmethod
    def from_args(cls, args) -> "TokenRequest":
        corpus, shard, num_shards, eval_tokens, block_len = args
        return cls(str(corpus), int(shard), int(num_shards), int(eval_tokens), int(block_len))


def _unsupported_token_metrics(self, requests, disable_tqdm: bool = False):
    raise TaskDataError(
        f"The `{REQUEST_TYPE}` request (tasks separ_*_tokens) needs the engine's token metrics, which the "
        f"{type(self).__name__} backend cannot compute. Use `--model separ` with the same "
        "`pretrained=...` (add `masks=DIR` for a pruned model), or run the backend-agnostic perplexity "
        "tasks separ_code_ppl / separ_prose_ppl instead."
    )


def install_request_type() -> None:
    """Give every lm-eval backend a `token_metrics` that explains how to get one (`separ` overrides it)."""
    if not hasattr(LM, REQUEST_TYPE):
        setattr(LM, REQUEST_TYPE, _unsupported_token_metrics)


install_request_type()


@register_aggregation("separ_token_mean")
def token_mean(items) -> float:
    """Sum of counts over sum of tokens (lm-eval's weighted_mean); NaN when no token qualified."""
    return weighted_mean(items) if any(b for _, b in items) else float("nan")


def as_test_split(rows: list[dict]):
    import datasets

    return {"test": datasets.Dataset.from_list(rows)}


def token_dataset(corpus: str, eval_tokens: int | None = None, block_len: int | None = None,
                  num_shards: int = DEFAULT_SHARDS, **_metadata):
    """`custom_dataset` of a token task: one document per shard of the corpus's test blocks.

    The blocks themselves are packed by the model (they depend on its tokenizer), with the
    engine's defaults unless lm-eval's metadata sets eval_tokens / block_len.
    """
    defaults = Method()
    eval_tokens = int(eval_tokens or defaults.eval_tokens)
    block_len = int(block_len or defaults.block_len)
    rows = [
        {"corpus": corpus, "shard": i, "num_shards": int(num_shards), "eval_tokens": eval_tokens, "block_len": block_len}
        for i in range(int(num_shards))
    ]
    return as_test_split(rows)


def _cut(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    end = text.rfind("\n", 0, max_chars)
    return text[: end + 1] if end > max_chars // 2 else text[:max_chars]


def ppl_dataset(corpus: str, ppl_docs: int = PPL_DOCS, ppl_chars: int = PPL_CHARS, **_metadata):
    """`custom_dataset` of a perplexity task: `ppl_docs` documents spread evenly over the corpus's
    test split (never used for statistics) in content-hash order (not file order), each cut to about
    `ppl_chars` characters at a line end."""
    test = sorted((doc for doc in load_corpus(corpus).split("test") if doc.strip()), key=document_id)
    if not test:
        raise TaskDataError(f"Corpus {corpus!r} has no test documents (10% of documents, chosen by hash): give a larger corpus.")
    count = min(int(ppl_docs), len(test))
    chosen = [test[i * len(test) // count] for i in range(count)]
    return as_test_split([{"text": _cut(doc, int(ppl_chars))} for doc in chosen])


def token_process_results(doc: dict, results: list) -> dict:
    """Per shard: the (numerator, denominator) pairs that the aggregations below sum over shards."""
    counts = results[0]
    if isinstance(counts, dict):
        counts = TokenCounts(**counts)
    return {
        "top1": (counts.top1, counts.n),
        "top10": (counts.top10, counts.n),
        "skip50_top1": (counts.skip_top1, counts.skip_n),
        "skip50_top10": (counts.skip_top10, counts.skip_n),
        "loss": (counts.loss_sum, counts.n),
        "ppl": (-counts.loss_sum, counts.n),  # a log-likelihood sum, as weighted_perplexity expects
    }


class _IgnoreTags(yaml.SafeLoader):
    """Reads task YAML as data: `!function` tags stay strings."""


_IgnoreTags.add_multi_constructor("!", lambda loader, suffix, node: loader.construct_scalar(node))


def read_task_yaml(path) -> dict:
    """A task YAML file as plain data (its `include:` merged under it, as lm-eval does), without importing
    what its `!function` tags name."""
    path = Path(path)
    with open(path, encoding="utf-8") as handle:
        config = yaml.load(handle, Loader=_IgnoreTags) or {}
    included = config.pop("include", None) if isinstance(config, dict) else None
    if included:
        config = {**read_task_yaml(path.parent / included), **config}
    return config


@lru_cache(maxsize=1)
def token_metric_list() -> list[dict]:
    """The metric list of the token tasks, as `tasks/_tokens_template_yaml` declares it."""
    return read_task_yaml(tasks_dir() / "_tokens_template_yaml")["metric_list"]


class TokenMetricsTask(ConfigurableTask):
    """The engine's next-token metrics (top1, top10, skip50_*, loss, ppl) as an lm-eval task.

    Each document asks the model for the TokenCounts of one shard of a corpus's test blocks
    through the `token_metrics` request; the aggregations sum the counts over shards, so
    scores are micro-averaged over tokens, as in `metrics.evaluate`. A YAML needs only

        task: my_tokens
        class: !function separ_eval.lm_eval_ext.tasks.TokenMetricsTask
        dataset_kwargs: {corpus: path/to/corpus.jsonl}
    """

    OUTPUT_TYPE = REQUEST_TYPE
    DEFAULTS = {
        "custom_dataset": token_dataset,
        "test_split": "test",
        "doc_to_text": "{{corpus}} test blocks {{shard}}::{{num_shards}}",
        "doc_to_target": "",
        "process_results": token_process_results,
    }

    def __init__(self, config: dict | None = None, **kwargs):
        config = {**self.DEFAULTS, "metric_list": token_metric_list(), **(config or {})}
        config.pop("class", None)  # the YAML's `class:` is not a TaskConfig field
        # lm-eval accepts only its four output types: build as a loglikelihood task
        # (no generation defaults), then declare the real request type.
        config["output_type"] = "loglikelihood"
        super().__init__(config=config, **kwargs)
        self.OUTPUT_TYPE = REQUEST_TYPE
        self.config.output_type = REQUEST_TYPE

    def construct_requests(self, doc: dict, ctx, **kwargs) -> Instance:
        kwargs.pop("apply_chat_template", None)
        kwargs.pop("chat_template", None)
        spec = TokenRequest(doc["corpus"], doc["shard"], doc["num_shards"], doc["eval_tokens"], doc["block_len"])
        return Instance(request_type=REQUEST_TYPE, doc=doc, arguments=spec.args(), idx=0, **kwargs)
