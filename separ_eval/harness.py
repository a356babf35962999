"""The lm-eval side: a registered `separ` model that loads a model pruned by masks, and its `token_metrics` request.

`--model separ --model_args pretrained=NAME,masks=DIR` applies saved masks;
`pretrained=NAME,prune_target=code,ff_frac=0.05,steps=2,...` computes them first
(statistics on the target's forget and retain corpora, no evaluation) and can
save them with `save_masks=DIR`. Every other HFLM argument works as for `hf`.
The model is loaded by name, so `accelerate launch` data parallelism works.

Cache safety: lm-eval's `--use_cache` keys responses on the request only, so
a pruned and an unpruned run of one checkpoint would share answers. A pruned
`separ` model therefore keeps its cached responses in its own table of the
cache database, named by the fingerprint of its masks (`separ_<hash>`); the
default table stays the one that unpruned runs (and other backends) use.

`token_metrics` requests (the `separ_*_tokens` tasks) return the engine's
`metrics.TokenCounts` for a shard of a corpus's test blocks, packed exactly as
the pruning loop packs them. Other backends get an error that names the fix.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import math
import uuid
from collections import defaultdict
from dataclasses import dataclass, fields, replace

import torch
from lm_eval.api.instance import Instance
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model
from lm_eval.api.task import ConfigurableTask
from lm_eval.models.huggingface import HFLM

from . import arch, models, prune
from .data import load_corpus
from .method import CorpusBlocks, Method, Pruner
from .metrics import TokenCounts, count_predictions
from .paths import tasks_dir

log = logging.getLogger(__name__)

REQUEST_TYPE = "token_metrics"
# Model args that configure the pruning; all others go to HFLM unchanged.
METHOD_ARGS = {f.name for f in fields(Method)} - {"eval_tokens"}


class HarnessError(ValueError):
    """Bad input to the lm-eval side; the message names the fix."""


# ---------------------------------------------------------------------------- requests


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
    raise HarnessError(
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


# ---------------------------------------------------------------------------- masks


def fingerprint(masks: prune.Masks | None) -> str | None:
    """sha256 of what the masks remove (and the offsets they fold in); None when they change nothing."""
    if masks is None:
        return None
    if not any(bool(masks.pruned[u].any()) or bool(masks.offsets[u].any()) for u in masks.pruned):
        return None
    digest = hashlib.sha256(prune.MASKS_FORMAT.encode())
    for unit in sorted(masks.pruned):
        pruned = masks.pruned[unit].to(torch.uint8).contiguous()
        digest.update(f"{unit}{tuple(pruned.shape)}".encode())
        digest.update(pruned.numpy().tobytes())
        digest.update(masks.offsets[unit].float().contiguous().numpy().tobytes())
    return digest.hexdigest()


def method_from_args(args: dict) -> Method:
    """A Method from model args; `scoring` sets both unit types unless ff_/attn_scoring say otherwise."""
    values = {k: v for k, v in args.items() if k in METHOD_ARGS and v is not None}
    scoring = args.get("scoring")
    if scoring is not None:
        values.setdefault("ff_scoring", scoring)
        values.setdefault("attn_scoring", scoring)
    for key in ("ff_frac", "attn_frac"):
        if key in values:
            values[key] = float(values[key])
    for key in ("steps", "collect_tokens", "block_len", "seed"):
        if key in values:
            values[key] = int(values[key])
    if "recollect" in values:
        values["recollect"] = _as_bool(values["recollect"], "recollect")
    try:
        return Method(**values)
    except (TypeError, ValueError) as error:
        raise HarnessError(f"Bad pruning model_args: {error}") from error


def _as_bool(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1", "yes"):
        return True
    if str(value).lower() in ("false", "0", "no", "none"):
        return False
    raise HarnessError(f"{name} must be true or false, got {value!r}.")


# ---------------------------------------------------------------------------- token blocks

_BLOCKS: dict[tuple, CorpusBlocks] = {}  # packing a corpus costs seconds; models of one tokenizer share it


def _tokenizer_key(tokenizer) -> str | None:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    digest = hashlib.sha256(backend.to_str().encode())
    digest.update(repr((tokenizer("", add_special_tokens=True)["input_ids"], tokenizer.pad_token_id,
                        tokenizer.eos_token_id)).encode())
    return digest.hexdigest()


def corpus_blocks(tokenizer, corpus: str, eval_tokens: int, block_len: int) -> CorpusBlocks:
    """A corpus's test blocks and frequent tokens, prepared by `CorpusBlocks.prepare` as the loop does."""
    loaded = load_corpus(corpus)
    tokenizer_key = _tokenizer_key(tokenizer)
    key = (tokenizer_key, loaded.source, loaded.sha256, eval_tokens, block_len)
    if tokenizer_key is None or key not in _BLOCKS:
        blocks = CorpusBlocks.prepare(loaded, tokenizer, Method(eval_tokens=eval_tokens, block_len=block_len))
        if tokenizer_key is None:
            return blocks
        if len(_BLOCKS) >= 8:
            _BLOCKS.pop(next(iter(_BLOCKS)))
        _BLOCKS[key] = blocks
    return _BLOCKS[key]


# ---------------------------------------------------------------------------- the model


@register_model("separ")
class SeparLM(HFLM):
    """HFLM with selective pruning baked into the weights at load time, and the `token_metrics` request."""

    def __init__(
        self,
        pretrained,
        masks: str | None = None,
        prune_target: str | None = None,
        reverse: bool = False,
        save_masks: str | None = None,
        targets_path: str | None = None,
        scoring: str | None = None,
        eval_tokens: int | None = None,  # read by the token tasks (through lm-eval's metadata), not here
        device: str | None = None,
        **kwargs,
    ) -> None:
        method_args = {k: kwargs.pop(k) for k in list(kwargs) if k in METHOD_ARGS}
        if masks and prune_target:
            raise HarnessError("Give either masks=DIR (saved masks) or prune_target=NAME (compute them), not both.")
        pruning_only = sorted(set(method_args) - {"block_len"})  # block_len also sets the token tasks' blocks
        if (pruning_only or scoring or save_masks or _as_bool(reverse, "reverse")) and not prune_target:
            given = sorted([*pruning_only, *(["scoring"] if scoring else []), *(["save_masks"] if save_masks else [])])
            raise HarnessError(
                f"model_args {given or ['reverse']} configure pruning but no prune_target was given: "
                "add prune_target=code (or another target), or pass masks=DIR to apply saved masks."
            )
        in_memory = not isinstance(pretrained, str)
        if in_memory and (masks or prune_target):
            raise HarnessError(
                "Pruning model_args need the model by name (pretrained=NAME): an in-memory model is "
                "evaluated as it is."
            )
        # Validate the pruning request before loading a model that may take minutes.
        method = target = None
        if prune_target:
            from .targets import load_target

            method = method_from_args({**method_args, "scoring": scoring})
            target = load_target(prune_target, include_paths=[targets_path] if targets_path else ())
            if _as_bool(reverse, "reverse"):
                target = target.reversed()
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.pretrained_name = pretrained if not in_memory else getattr(pretrained, "name_or_path", "in-memory")
        super().__init__(pretrained=pretrained if in_memory else models.resolve(pretrained), device=device, **kwargs)

        self.model_map = arch.map_model(self.model)
        self.masks: prune.Masks | None = None
        self.masks_source: str | None = None
        if masks:
            self.masks = self._apply_saved(masks)
            self.masks_source = str(masks)
        elif target is not None:
            self.masks = self._compute_masks(target, method)
            self.masks_source = f"prune_target={prune_target}" + (",reverse=True" if target.is_reversed else "")
            if save_masks and self.rank == 0:
                self.masks.save(save_masks)
        # An in-memory model may carry any edits: give it a cache table of its own.
        self.fingerprint = f"in-memory-{uuid.uuid4().hex}" if in_memory else fingerprint(self.masks)

    # ------------------------------------------------------------------ loading

    def _get_config(self, pretrained: str, *, gguf_file: str | None = None, **kwargs) -> None:
        super()._get_config(pretrained, gguf_file=gguf_file, **kwargs)
        # A checkpoint converted from GGUF may keep the GGUF quantization_config; it is plain weights now.
        quantization = getattr(self._config, "quantization_config", None)
        if gguf_file is None and isinstance(quantization, dict) and quantization.get("quant_method") == "gguf":
            del self._config.quantization_config

    def _model_id(self) -> str:
        name = self.pretrained_name
        return models.EMBEDDED[name][2] if name in models.EMBEDDED else str(name)

    def _apply_saved(self, directory: str) -> prune.Masks:
        masks = prune.Masks.load(directory)
        try:
            masks.check_compatible(self.model_map, prune.model_signature(self.model))
        except prune.MaskError as error:
            raise prune.MaskError(f"masks={directory} do not fit pretrained={self.pretrained_name}: {error}") from error
        prune.apply(self.model_map, masks)
        return masks

    def _compute_masks(self, target, method: Method) -> prune.Masks:
        """Selective pruning on the target's corpora, `method.steps` steps, baked into the weights."""
        sides = {}
        for side in ("forget", "retain"):
            corpus = load_corpus(getattr(target, side).corpus)
            blocks = CorpusBlocks.prepare(corpus, self.tokenizer, method, need_eval=False)
            if self.world_size > 1:  # each process collects its share; statistics are summed across processes
                blocks = replace(blocks, collect=blocks.collect.shard(self.rank, self.world_size))
            sides[side] = blocks
        pruner = Pruner(self.model, self.model_map, method)
        pruner.masks.meta.update(
            model={"id": self._model_id(), "family": self.model_map.family, "signature": prune.model_signature(self.model)},
            target=target.as_dict(),
            data={side: blocks.corpus.identity() for side, blocks in sides.items()},
        )
        batch_size = self._int_batch_size()
        fixed = None
        for step in range(1, method.steps + 1):
            if method.recollect or fixed is None:
                fixed = (pruner.collect(sides["forget"], batch_size), pruner.collect(sides["retain"], batch_size))
            pruner.step(*fixed, step)
            log.info("separ: pruned step %d/%d (ff %.4f, attn %.4f)", step, method.steps,
                     pruner.masks.fraction("ff"), pruner.masks.fraction("attn"))
        return pruner.masks

    def _int_batch_size(self) -> int:
        size = self.batch_size_per_gpu
        return int(size) if str(size).isdigit() else 8

    # ------------------------------------------------------------------ lm-eval hooks

    def set_cache_hook(self, cache_hook) -> None:
        """Called by lm-eval's CachingLM: move a pruned model's cached responses to their own table."""
        super().set_cache_hook(cache_hook)
        db = getattr(cache_hook, "dbdict", None)
        if db is None or self.fingerprint is None:
            return
        if not (hasattr(db, "tablename") and hasattr(db, "conn")):
            raise HarnessError(
                "use_cache with a pruned `separ` model needs lm-eval's sqlite response cache, which this "
                "lm-eval version does not provide: drop --use_cache for pruned runs."
            )
        table = f"separ_{self.fingerprint[:24]}"
        db.conn.execute(f'CREATE TABLE IF NOT EXISTS "{table}" (key TEXT PRIMARY KEY, value BLOB)')
        db.conn.commit()
        db.tablename = table
        log.info("separ: cached responses of this pruned model go to table %s of %s", table, db.filename)

    def get_model_info(self) -> dict:
        info = super().get_model_info()
        info["separ"] = {
            "pretrained": str(self.pretrained_name),
            "masks": self.masks_source,
            "fingerprint": self.fingerprint,
            "pruned": {u: self.masks.fraction(u) for u in self.masks.pruned} if self.masks else {"ff": 0.0, "attn": 0.0},
            "method": self.masks.meta.get("method") if self.masks else None,
        }
        return info

    # ------------------------------------------------------------------ token_metrics

    def corpus_blocks(self, corpus: str, eval_tokens: int, block_len: int) -> CorpusBlocks:
        """The test blocks and frequent tokens of a corpus, packed as the pruning loop packs them."""
        return corpus_blocks(self.tokenizer, corpus, eval_tokens, block_len)

    def token_metrics(self, requests, disable_tqdm: bool = False) -> list[TokenCounts]:
        """TokenCounts for each request's shard of test blocks (summing shards gives `metrics.evaluate`)."""
        specs = [TokenRequest.from_args(r.args) for r in requests]
        results = [TokenCounts() for _ in specs]
        grouped = defaultdict(list)
        for i, spec in enumerate(specs):
            grouped[(spec.corpus, spec.eval_tokens, spec.block_len)].append(i)
        for key, indices in grouped.items():
            blocks = self.corpus_blocks(*key)
            wanted = defaultdict(list)  # block -> requests that include it
            for i in indices:
                for b in range(specs[i].shard, len(blocks.evaluate), specs[i].num_shards):
                    wanted[b].append(i)
            for b, counts in self._block_counts(blocks, sorted(wanted)).items():
                for i in wanted[b]:
                    results[i] = results[i] + counts
        return results

    @torch.inference_mode()
    def _block_counts(self, blocks: CorpusBlocks, block_ids: list[int], chunk: int = 512) -> dict[int, TokenCounts]:
        """Per-block counts, with the forward pass batched like `metrics.evaluate`."""
        model = self.model
        decoder = arch.base_model(model)
        device = arch.input_device(model)
        batch_size = self._int_batch_size()
        counts = {}
        for start in range(0, len(block_ids), batch_size):
            batch = block_ids[start : start + batch_size]
            input_ids = blocks.evaluate.input_ids[batch].to(device)
            attention_mask = blocks.evaluate.attention_mask[batch].to(device)
            hidden = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
            valid = (attention_mask[:, :-1] * attention_mask[:, 1:]).bool()
            for row, block in enumerate(batch):
                row_hidden = hidden[row, :-1][valid[row]]
                targets = input_ids[row, 1:][valid[row]]
                total = TokenCounts()
                for c in range(0, targets.numel(), chunk):
                    logits = arch.lm_head_logits(model, row_hidden[c : c + chunk])
                    total = total + count_predictions(logits, targets[c : c + chunk], blocks.frequent)
                counts[block] = total
        return counts


# ---------------------------------------------------------------------------- the task side

DEFAULT_SHARDS = 16  # documents of a token task: shard i holds test blocks i, i+16, i+32, ...
PPL_DOCS = 32  # test documents of a perplexity task
PPL_CHARS = 2000  # each cut to about this many characters (at a line end)


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
    test split (never used for statistics), each cut to about `ppl_chars` characters at a line end."""
    test = [doc for doc in load_corpus(corpus).split("test") if doc.strip()]
    if not test:
        raise HarnessError(f"Corpus {corpus!r} has no test documents (10% of documents, chosen by hash): give a larger corpus.")
    count = min(int(ppl_docs), len(test))
    chosen = [test[i * len(test) // count] for i in range(count)]
    return as_test_split([{"text": _cut(doc, int(ppl_chars))} for doc in chosen])


def token_process_results(doc: dict, results: list) -> dict:
    """Per shard: (numerator, denominator) of each metric; the aggregations sum them over shards."""
    counts = results[0]
    if isinstance(counts, dict):
        counts = TokenCounts(**counts)
    return {
        "top1": (counts.top1, counts.n),
        "top10": (counts.top10, counts.n),
        "skip50_top1": (counts.skip_top1, counts.skip_n),
        "skip50_top10": (counts.skip_top10, counts.skip_n),
        "loss": (counts.loss_sum, counts.n),
        "ppl": (counts.loss_sum, counts.n),
    }


def micro_mean(items) -> float:
    """Sum of numerators over sum of denominators: every token weighs the same."""
    numerator = sum(float(a) for a, _ in items)
    denominator = sum(float(b) for _, b in items)
    return numerator / denominator if denominator else float("nan")


def micro_ppl(items) -> float:
    return math.exp(micro_mean(items))


TOKEN_METRICS = [
    {"metric": name, "aggregation": micro_mean, "higher_is_better": True}
    for name in ("top1", "top10", "skip50_top1", "skip50_top10")
] + [
    {"metric": "loss", "aggregation": micro_mean, "higher_is_better": False},
    {"metric": "ppl", "aggregation": micro_ppl, "higher_is_better": False},
]


class TokenMetricsTask(ConfigurableTask):
    """The engine's next-token metrics (top1, top10, skip50_*, loss, ppl) as an lm-eval task.

    Each document asks the model for the TokenCounts of one shard of a corpus's test blocks
    through the `token_metrics` request; the aggregations sum the counts over shards, so
    scores are micro-averaged over tokens, as in `metrics.evaluate`. A YAML needs only

        task: my_tokens
        class: !function separ_eval.harness.TokenMetricsTask
        dataset_kwargs: {corpus: path/to/corpus.jsonl}
    """

    OUTPUT_TYPE = REQUEST_TYPE
    DEFAULTS = {
        "custom_dataset": token_dataset,
        "test_split": "test",
        "doc_to_text": "{{corpus}} test blocks {{shard}}::{{num_shards}}",
        "doc_to_target": "",
        "process_results": token_process_results,
        "metric_list": TOKEN_METRICS,
    }

    def __init__(self, config: dict | None = None, **kwargs):
        config = {**self.DEFAULTS, **(config or {})}
        config.pop("class", None)  # the YAML's `class:` is not a TaskConfig field
        # lm-eval accepts only its four output types: build as a loglikelihood task
        # (no generation defaults), then declare the real request type.
        config["output_type"] = "loglikelihood"
        super().__init__(config=config, **kwargs)
        self.OUTPUT_TYPE = REQUEST_TYPE
        self._config.output_type = REQUEST_TYPE

    def construct_requests(self, doc: dict, ctx, **kwargs) -> Instance:
        kwargs.pop("apply_chat_template", None)
        kwargs.pop("chat_template", None)
        spec = TokenRequest(doc["corpus"], doc["shard"], doc["num_shards"], doc["eval_tokens"], doc["block_len"])
        return Instance(request_type=REQUEST_TYPE, doc=doc, arguments=spec.args(), idx=0, **kwargs)


# ---------------------------------------------------------------------------- running tasks


def task_paths(user_paths=()) -> list[str]:
    """The package's tasks/ first, then the user's paths (later ones override earlier task names)."""
    from .targets import _split_paths

    return [str(tasks_dir()), *_split_paths(user_paths)]


def _member_names(cfg: dict) -> list:
    members = cfg.get("task", [])
    return members if isinstance(members, list) else [members]


def _resolvable(name: str, index: dict, seen: set | None = None) -> bool:
    """Whether `name` and everything it contains are in `index` (so lm-eval's own tasks are not needed)."""
    from lm_eval.tasks._index import Kind

    seen = set() if seen is None else seen
    if name in seen:
        return True
    seen.add(name)
    entry = index.get(name)
    if entry is None:
        return False
    if entry.kind == Kind.TAG:
        return all(t in index for t in entry.tags)
    if entry.kind != Kind.GROUP:
        return True
    for item in _member_names(entry.cfg or {}):
        if isinstance(item, str) and not _resolvable(item, index, seen):
            return False
        if isinstance(item, dict):
            ref = item.get("group") or item.get("task")
            if ref in index and not _resolvable(ref, index, seen):
                return False
            if "group" in item and ref not in index and not all(
                _resolvable(m, index, seen) for m in _member_names(item) if isinstance(m, str)
            ):
                return False
    return True


def unknown_task_error(names, task_manager) -> HarnessError:
    import difflib

    known = task_manager.all_tasks
    hints = []
    for name in names:
        close = difflib.get_close_matches(name, known, n=3)
        hints.append(f"{name!r}" + (f" (did you mean {', '.join(close)}?)" if close else ""))
    return HarnessError(
        f"Unknown task {', '.join(hints)}. List the package's tasks with `separ-eval tasks` and lm-eval's with "
        "`separ-eval lm-eval ls tasks`; add your own task YAML with --include_path DIR."
    )


def make_task_manager(tasks=(), include_path=(), metadata: dict | None = None, include_defaults: bool | None = None):
    """A TaskManager over the package's tasks and `include_path`, checked against `tasks`.

    lm-eval's ~15k built-in tasks are indexed only when needed (include_defaults=None: when a
    requested task or a group member is not one of the package's or the user's).
    """
    from lm_eval.tasks import TaskManager

    paths = task_paths(include_path)
    names = [t for t in tasks if isinstance(t, str) and not t.endswith(".yaml")]
    manager = None
    if include_defaults is not True:
        manager = TaskManager(include_defaults=False, include_path=paths, metadata=metadata)
        expanded = [m for n in names for m in (manager.match_tasks([n]) or [n])]
        if include_defaults is None and not all(_resolvable(n, manager.task_index) for n in expanded):
            manager = None
    if manager is None:
        manager = TaskManager(include_path=paths, metadata=metadata)
    missing = [n for n in names if not manager.match_tasks([n])]
    if missing:
        raise unknown_task_error(missing, manager)
    return manager


def simple_evaluate(model="separ", model_args=None, tasks=(), *, include_path=(), include_defaults=None,
                    metadata: dict | None = None, task_manager=None, **kwargs):
    """`lm_eval.simple_evaluate` with the package's tasks on the include path and `separ` registered.

    Task names are checked first (an unknown one is a HarnessError naming close matches).
    """
    import lm_eval
    from lm_eval.utils import simple_parse_args_string

    args = simple_parse_args_string(model_args) if isinstance(model_args, str) else dict(model_args or {})
    tasks = [tasks] if isinstance(tasks, str) else list(tasks)
    manager = task_manager or make_task_manager(tasks, include_path, args | (metadata or {}), include_defaults)
    return lm_eval.simple_evaluate(model=model, model_args=model_args, tasks=tasks, task_manager=manager, **kwargs)


def scores(results: dict) -> dict[str, dict[str, float]]:
    """{task: {"metric,filter": value}} of the numeric scores in lm-eval results (stderr left out)."""
    out = {}
    for task, values in (results or {}).get("results", {}).items():
        numeric = {
            k: float(v) for k, v in values.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and "_stderr" not in k and k != "sample_len"
        }
        if numeric:
            out[task] = numeric
    return out


def evaluate_tasks(model, tokenizer, names, *, batch_size: int = 8, limit=None, include_paths=(),
                   device: str | None = None) -> dict[str, dict[str, float]]:
    """Scores of an in-memory (already pruned) model on lm-eval tasks: {task: {"metric,filter": value}}."""
    names = list(names)
    if not names:
        return {}
    if device is None:
        device = str(arch.input_device(model))
    lm = SeparLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device=device)
    results = simple_evaluate(lm, tasks=names, include_path=include_paths, limit=limit,
                              log_samples=False, bootstrap_iters=0)
    return scores(results)


# ---------------------------------------------------------------------------- other backends

EXTERNAL_BACKENDS = ("hf", "vllm")


def split_backend_agnostic(names, include_paths=()) -> tuple[list[str], list[str]]:
    """(leaf tasks any lm-eval backend can run, `token_metrics` tasks only `separ` can) of tasks or groups."""
    names = list(names)
    if not names:
        return [], []
    loaded = make_task_manager(names, include_paths).load(names)["tasks"]
    agnostic = [n for n, task in loaded.items() if task.OUTPUT_TYPE != REQUEST_TYPE]
    token_only = [n for n, task in loaded.items() if task.OUTPUT_TYPE == REQUEST_TYPE]
    return agnostic, token_only


def backend_available(backend: str) -> None:
    """Refuse an external backend whose engine is not installed, before any work is done."""
    if backend not in ("separ", *EXTERNAL_BACKENDS):
        raise HarnessError(f"Unknown evaluation backend {backend!r}; choose separ, hf or vllm.")
    if backend == "vllm" and importlib.util.find_spec("vllm") is None:
        raise HarnessError(
            "--eval-backend vllm needs vLLM on a CUDA machine: `pip install vllm` in an environment whose torch and "
            "transformers match vLLM's pins (see README, Scaling out). --eval-backend hf evaluates the same "
            "exported checkpoints with lm-eval's hf backend."
        )


def evaluate_checkpoint(path, names, *, backend: str, dtype: str, batch_size: int = 8, device: str = "cpu",
                        backend_args: str = "", limit=None, include_paths=()) -> dict[str, dict[str, float]]:
    """Scores of an exported checkpoint on lm-eval tasks through lm-eval's own `hf` or `vllm` backend."""
    from lm_eval.utils import simple_parse_args_string

    args = {"pretrained": str(path), "dtype": dtype}
    if backend == "hf":
        args["device"] = device
    args |= simple_parse_args_string(backend_args) if backend_args else {}
    results = simple_evaluate(backend, args, tasks=list(names), include_path=include_paths, limit=limit,
                              batch_size=batch_size if backend == "hf" else "auto",
                              log_samples=False, bootstrap_iters=0)
    return scores(results)
