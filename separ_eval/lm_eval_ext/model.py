"""The registered lm-eval model `separ`: an HFLM whose weights carry a selective pruning, baked in at load time.

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
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections import defaultdict
from dataclasses import replace

import torch
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

from .. import data, models
from ..errors import SeparEvalError
from ..engine import arch, edit
from ..engine.masks import Masks, MaskError, model_signature
from ..engine.method import Method, MethodError
from ..engine.metrics import TokenCounts, evaluate_blocks
from .tasks import TokenRequest

log = logging.getLogger(__name__)

# Model args that configure the pruning (eval_tokens configures the token tasks); all others go to HFLM.
PRUNING_ARGS = set(Method.model_fields) - {"eval_tokens"}


class SeparModelError(SeparEvalError, ValueError):
    """Bad `separ` model_args; the message names the fix."""


def _as_bool(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1", "yes"):
        return True
    if str(value).lower() in ("false", "0", "no", "none"):
        return False
    raise SeparModelError(f"{name} must be true or false, got {value!r}.")


# ---------------------------------------------------------------------------- token blocks

_BLOCKS: dict[tuple, data.CorpusBlocks] = {}  # packing a corpus costs seconds; models of one tokenizer share it


def _tokenizer_key(tokenizer) -> str | None:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    digest = hashlib.sha256(backend.to_str().encode())
    digest.update(repr((tokenizer("", add_special_tokens=True)["input_ids"], tokenizer.pad_token_id,
                        tokenizer.eos_token_id)).encode())
    return digest.hexdigest()


def corpus_blocks(tokenizer, corpus: str, eval_tokens: int, block_len: int) -> data.CorpusBlocks:
    """A corpus's test blocks and frequent tokens, prepared by `CorpusBlocks.prepare` as the loop does."""
    loaded = data.load_corpus(corpus)
    tokenizer_key = _tokenizer_key(tokenizer)
    key = (tokenizer_key, loaded.source, loaded.sha256, eval_tokens, block_len)
    if tokenizer_key is None or key not in _BLOCKS:
        blocks = data.CorpusBlocks.prepare(loaded, tokenizer, Method(eval_tokens=eval_tokens, block_len=block_len).budget)
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
        method_args = {k: kwargs.pop(k) for k in list(kwargs) if k in PRUNING_ARGS}
        reverse = _as_bool(reverse, "reverse")
        if masks and prune_target:
            raise SeparModelError("Give either masks=DIR (saved masks) or prune_target=NAME (compute them), not both.")
        pruning_only = sorted(set(method_args) - {"block_len"})  # block_len also sets the token tasks' blocks
        if (pruning_only or scoring or save_masks or reverse) and not prune_target:
            given = sorted([*pruning_only, *(["scoring"] if scoring else []), *(["save_masks"] if save_masks else [])])
            raise SeparModelError(
                f"model_args {given or ['reverse']} configure pruning but no prune_target was given: "
                "add prune_target=code (or another target), or pass masks=DIR to apply saved masks."
            )
        in_memory = not isinstance(pretrained, str)
        if in_memory and (masks or prune_target):
            raise SeparModelError(
                "Pruning model_args need the model by name (pretrained=NAME): an in-memory model is "
                "evaluated as it is."
            )
        # Validate the pruning request before loading a model that may take minutes.
        method = target = None
        if prune_target:
            from ..targets import load_target

            try:
                method = Method.from_dict({**method_args, "scoring": scoring})
            except MethodError as error:
                raise SeparModelError(f"Bad pruning model_args: {error}") from error
            target = load_target(prune_target, include_paths=[targets_path] if targets_path else ())
            if reverse:
                target = target.reversed()
        if not in_memory:  # an encoder or encoder-decoder is refused before its weights load
            path = models.resolve(pretrained)
            models.check_causal_decoder(models.load_config(pretrained, path, revision=kwargs.get("revision"),
                                                           trust_remote_code=bool(kwargs.get("trust_remote_code"))),
                                        pretrained)
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.pretrained_name = pretrained if not in_memory else getattr(pretrained, "name_or_path", "in-memory")
        super().__init__(pretrained=pretrained if in_memory else models.resolve(pretrained), device=device, **kwargs)

        self.model_map = arch.map_model(self.model)
        self.masks: Masks | None = None
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
        self.fingerprint = f"in-memory-{uuid.uuid4().hex}" if in_memory else (self.masks.fingerprint() if self.masks else None)

    # ------------------------------------------------------------------ loading

    def _get_config(self, pretrained: str, *, gguf_file: str | None = None, **kwargs) -> None:
        super()._get_config(pretrained, gguf_file=gguf_file, **kwargs)
        # A checkpoint converted from GGUF may keep the GGUF quantization_config; it is plain weights now.
        quantization = getattr(self.config, "quantization_config", None)
        if gguf_file is None and isinstance(quantization, dict) and quantization.get("quant_method") == "gguf":
            del self.config.quantization_config

    def _apply_saved(self, directory: str) -> Masks:
        masks = Masks.load(directory)
        try:
            masks.check_compatible(self.model_map, model_signature(self.model))
        except MaskError as error:
            raise MaskError(f"masks={directory} do not fit pretrained={self.pretrained_name}: {error}") from error
        edit.apply(self.model_map, masks)
        return masks

    def _compute_masks(self, target, method: Method) -> Masks:
        """Selective pruning on the target's corpora, `method.steps` steps, baked into the weights."""
        from ..engine.method import Pruner

        sides = {}
        for side in ("forget", "retain"):
            corpus = data.load_corpus(getattr(target, side).corpus)
            blocks = data.CorpusBlocks.prepare(corpus, self.tokenizer, method.budget, need_eval=False)
            if self.world_size > 1:  # each process collects its share; statistics are summed across processes
                blocks = replace(blocks, collect=blocks.collect.shard(self.rank, self.world_size))
            sides[side] = blocks
        pruner = Pruner(self.model, self.model_map, method)
        pruner.masks.meta.update(
            model={"id": models.recorded_id(str(self.pretrained_name)), "family": self.model_map.family,
                   "signature": model_signature(self.model)},
            target=target.as_dict(),
            data={side: blocks.corpus.identity() for side, blocks in sides.items()},
        )
        batch_size = self._int_batch_size()
        statistics = lambda step: (pruner.collect(sides["forget"], batch_size), pruner.collect(sides["retain"], batch_size))  # noqa: E731
        for step in pruner.prune_steps(statistics):
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
        # lm-eval's cache has no public way to pick a table: SqliteDict's `tablename` and `conn` are set directly.
        if not (hasattr(db, "tablename") and hasattr(db, "conn")):
            raise SeparModelError(
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

    def corpus_blocks(self, corpus: str, eval_tokens: int, block_len: int) -> data.CorpusBlocks:
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
            block_ids = sorted(wanted)
            counts = evaluate_blocks(self.model, blocks.evaluate.select(block_ids), blocks.frequent,
                                     batch_size=self._int_batch_size())
            for b, block_counts in zip(block_ids, counts):
                for i in wanted[b]:
                    results[i] = results[i] + block_counts
        return results

