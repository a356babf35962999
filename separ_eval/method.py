"""The selective-pruning method: its settings, and one prune step (collect, score, select, bake).

Shared by the lm-eval wrapper (which only needs masks) and the evaluation loop.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from . import data as data_mod
from . import distributed
from . import compact, prune, scoring, stats
from .arch import ModelMap

ATTN_UNITS = ("neuron", "head")


@dataclass
class Method:
    """Everything that decides which units get pruned. Defaults follow the paper where they fit."""

    ff_frac: float = 0.05
    attn_frac: float = 0.0
    attn_unit: str = "neuron"
    steps: int = 5
    ff_scoring: str = "abs"
    attn_scoring: str = "abs"
    offset: str = "zero"
    recollect: bool = True
    collect_tokens: int = 5000  # sized so the default run on smollm2-135m takes under 5 minutes on 2 CPU cores
    eval_tokens: int = 2500
    block_len: int = 512
    seed: int = 0

    def __post_init__(self):
        prune.check_fraction("ff_frac", self.ff_frac)
        prune.check_fraction("attn_frac", self.attn_frac)
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}.")
        if self.steps * max(self.ff_frac, self.attn_frac) > 1.0 + 1e-9:
            raise ValueError(
                f"steps x fraction exceeds 1 ({self.steps} x {max(self.ff_frac, self.attn_frac)}): "
                "lower --steps or the fraction."
            )
        for name in (self.ff_scoring, self.attn_scoring):
            if name not in scoring.SCORINGS:
                raise ValueError(f"Unknown scoring {name!r}; choose one of {', '.join(scoring.SCORINGS)}.")
        if self.attn_unit not in ATTN_UNITS:
            raise ValueError(f"attn_unit must be one of {ATTN_UNITS}, got {self.attn_unit!r}.")
        if self.offset not in prune.OFFSETS:
            raise ValueError(f"offset must be one of {prune.OFFSETS}, got {self.offset!r}.")
        for name in ("collect_tokens", "eval_tokens"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}.")

    def fraction(self, unit: str) -> float:
        return self.ff_frac if unit == "ff" else self.attn_frac

    def scoring_for(self, unit: str) -> str:
        return self.ff_scoring if unit == "ff" else self.attn_scoring

    def as_dict(self) -> dict:
        d = asdict(self)
        d["scoring"] = {"ff": d.pop("ff_scoring"), "attn": d.pop("attn_scoring")}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Method":
        d = dict(d)
        scorings = d.pop("scoring", {})
        return cls(**d, ff_scoring=scorings.get("ff", "abs"), attn_scoring=scorings.get("attn", "abs"))


@dataclass
class CorpusBlocks:
    """One corpus, tokenized once per run: train blocks for statistics, test blocks for metrics."""

    corpus: data_mod.Corpus
    collect: data_mod.Blocks
    evaluate: data_mod.Blocks
    frequent: torch.Tensor

    @classmethod
    def prepare(cls, corpus: data_mod.Corpus, tokenizer, method: Method, *, need_eval: bool = True) -> "CorpusBlocks":
        train = corpus.split("train")
        if not train:
            raise data_mod.CorpusError(f"Corpus {corpus.name!r} has no training documents.")
        collect = data_mod.pack(tokenizer, train, method.collect_tokens, method.block_len, what=f"{corpus.name} train split")
        evaluate = frequent = None  # statistics alone need neither (counting frequent tokens takes seconds)
        if need_eval:
            frequent = data_mod.frequent_tokens(tokenizer, train)
            test = corpus.split("test")
            evaluate = data_mod.pack(tokenizer, test, method.eval_tokens, method.block_len, what=f"{corpus.name} test split")
        return cls(corpus, collect, evaluate, frequent)


@dataclass
class Pruner:
    """Holds the model's pruning state across steps; the model's weights are edited in place."""

    model: torch.nn.Module
    model_map: ModelMap
    method: Method
    masks: prune.Masks = None

    def __post_init__(self):
        if self.masks is None:
            self.masks = prune.Masks.empty(self.model_map, {"method": self.method.as_dict(), "step": 0})

    def units(self) -> list[str]:
        return [u for u in ("ff", "attn") if self.method.fraction(u) > 0]

    def collect(self, blocks: CorpusBlocks, batch_size: int, progress=None) -> stats.UnitStats:
        """Statistics of the pruned unit types over this rank's share of the train blocks, summed over all ranks."""
        shard = distributed.shard(blocks.collect)
        needed = self.statistics_needed()
        if not any(needed.values()):  # random scoring, zero offset: no activation is read, so no forward pass
            return stats.counts_only(self.model_map, shard, tuple(self.units()), progress=progress).all_reduce()
        with self.fast_forward() as kept:
            return stats.collect(
                self.model, self.model_map, shard, batch_size=batch_size, units=tuple(self.units()),
                kept={"ff": kept}, names=needed, progress=progress,
            ).all_reduce()

    def statistics_needed(self) -> dict[str, tuple[str, ...]]:
        """Per unit type, the sums its scoring reads, plus the mean for a mean offset."""
        extra = ("sum",) if self.method.offset == "mean" else ()
        return {u: tuple(dict.fromkeys(scoring.NEEDS[self.method.scoring_for(u)] + extra)) for u in self.units()}

    def fast_forward(self):
        """Context: the model skips its removed FF neurons and masked attention (same outputs, fewer FLOPs)."""
        return compact.fast_forward(self.model, self.model_map, self.masks.pruned["ff"])

    def step(self, forget: stats.UnitStats, retain: stats.UnitStats, step: int) -> dict[str, torch.Tensor]:
        """Prune one more `frac` of each unit type (step is 1-based). Returns the newly pruned masks."""
        new = {}
        for unit in self.units():
            frac = self.method.fraction(unit)
            total = self.masks.pruned[unit].numel()
            if self.method.recollect:
                k = round(frac * total)
            else:  # statistics from the unpruned model, cumulative fractions
                k = round(frac * step * total) - self.masks.count(unit)
            heads = unit == "attn" and self.method.attn_unit == "head"
            d_head = self.model_map.d_head if heads else None
            scores = scoring.score(
                self.method.scoring_for(unit), forget, retain, unit, d_head=d_head, seed=self.method.seed
            )
            if heads:
                already = self.masks.pruned[unit].reshape(scores.shape[0], -1, d_head).all(dim=-1)
                k_heads = round(k / d_head)
                chosen = prune.expand_heads(prune.select(scores, already, k_heads), d_head)
            else:
                chosen = prune.select(scores, self.masks.pruned[unit], k)
            new[unit] = chosen & ~self.masks.pruned[unit]
        offsets = None
        if self.method.offset == "mean":
            offsets = {u: retain.mean(u, "sum").float() * new[u] for u in new}
        prune.bake(self.model_map, new, offsets)
        for unit, mask in new.items():
            self.masks.pruned[unit] |= mask
            if offsets is not None:
                self.masks.offsets[unit] += offsets[unit]
        self.masks.meta["step"] = step
        return new
