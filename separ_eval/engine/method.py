"""The selective-pruning method: its settings (defined once), and the prune steps (collect, score, select, bake).

`Method` is the one definition of the settings: its fields carry their defaults and help
text, and the CLI options, the `separ` model_args and results files are all read through
it. `Pruner.prune_steps` is the one loop over steps, shared by the lm-eval wrapper (which
only needs masks) and the evaluation loop (which evaluates after every step).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterator, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .. import distributed
from ..errors import SeparEvalError
from ..data import Budget, CorpusBlocks
from . import edit, forward, scoring, stats
from .arch import ModelMap
from .masks import Masks

ATTN_UNITS = ("neuron", "head")


class MethodError(SeparEvalError, ValueError):
    """Settings that do not make a method; the message names the setting."""


def _one_line(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        field = Method.model_fields.get(where)
        fraction = field is not None and field.annotation is float and _le(field) == 1.0
        if fraction and item["type"] != "missing":
            parts.append(f"{where} must be a fraction in [0, 1], got {item['input']!r}.")
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
            parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


def _le(field):
    return next((m.le for m in field.metadata if hasattr(m, "le")), None)


class Method(BaseModel):
    """Everything that decides which units get pruned. Defaults follow the paper where they fit."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)  # "0.1" is not a fraction

    ff_frac: float = Field(0.05, ge=0.0, le=1.0, description="Fraction of feed-forward neurons pruned per step.")
    attn_frac: float = Field(0.0, ge=0.0, le=1.0, description="Fraction of attention neurons (or heads) pruned per step.")
    attn_unit: Literal["neuron", "head"] = Field("neuron", description="Prune attention value neurons or whole heads.")
    steps: int = Field(5, ge=1, description="Number of prune-then-evaluate steps.")
    ff_scoring: str = Field("abs", description="Score of feed-forward neurons.")
    attn_scoring: str = Field("abs", description="Score of attention neurons / heads.")
    offset: Literal["zero", "mean"] = Field("zero", description="zero: remove units; mean: keep their retain mean in the bias.")
    recollect: bool = Field(True, description="Recollect statistics on the pruned model every step, or once (cumulative fractions).")
    # Sized on an idle 2-core CPU (smollm2-135m, forget code): the default run took 241-256 s and gave
    # SA(top1) 0.733 / 0.731 / 0.759 with 95% intervals of +-0.032 / 0.026 / 0.025 for data seeds 0 / 1 / 2.
    collect_tokens: int = Field(5000, ge=1, description="Tokens per corpus for the statistics (train split; "
                                "about 40 documents at the default window).")
    eval_tokens: int = Field(10000, ge=1, description="Tokens per corpus for the metrics (test split; about 79 "
                             "documents). Measured on smollm2-135m, idle 2-core CPU: the default run takes ~4 min and "
                             "SA(top1)'s 95% interval is about +-0.03; more tokens narrow it as 1/sqrt(documents).")
    block_len: int = Field(512, ge=2, description="Tokens per packed sequence.")
    window: int = Field(128, ge=2, description="Tokens taken from one document at a time: a budget spans about "
                        "budget / window documents.")
    data_seed: int = Field(0, ge=0, description="Seed of which documents and windows are read (the order is keyed "
                           "by content, never by file order).")
    seed: int = Field(0, ge=0, description="Seed of the random scoring.")
    retain_weight: float = Field(1.0, ge=0.0, description="Lambda of the difference scorings (attrib, wanda-diff): "
                                 "how much a unit's importance to the retain side counts against pruning it.")
    joint: bool = Field(False, description="Rank FF and attention neurons in one pool (each type's scores z-scored) "
                        "and prune the two fractions' total from it, instead of each type's fraction apart.")

    def __init__(self, **values):
        try:
            super().__init__(**values)
        except ValidationError as error:
            raise MethodError(_one_line(error)) from None

    @model_validator(mode="before")
    @classmethod
    def _one_scoring_for_both(cls, values):
        """`scoring` sets both unit types (a name), or each ({"ff": ..., "attn": ...} as results files hold it)."""
        if not isinstance(values, dict) or "scoring" not in values:
            return values
        values = dict(values)
        given = values.pop("scoring")
        per_unit = given if isinstance(given, dict) else {"ff": given, "attn": given}
        for unit in ("ff", "attn"):
            if per_unit.get(unit) is not None and values.get(f"{unit}_scoring") is None:
                values[f"{unit}_scoring"] = per_unit[unit]
        return {k: v for k, v in values.items() if v is not None}

    @field_validator("ff_scoring", "attn_scoring")
    @classmethod
    def _known_scoring(cls, name: str) -> str:
        if name not in scoring.SCORINGS:
            raise ValueError(f"Unknown scoring {name!r}; choose one of {', '.join(scoring.SCORINGS)}.")
        return name

    @model_validator(mode="after")
    def _fractions_fit_the_steps(self) -> "Method":
        if self.steps * max(self.ff_frac, self.attn_frac) > 1.0 + 1e-9:
            raise ValueError(
                f"steps x fraction exceeds 1 ({self.steps} x {max(self.ff_frac, self.attn_frac)}): "
                "lower --steps or the fraction."
            )
        if self.joint and (self.attn_unit == "head" or not (self.ff_frac and self.attn_frac)):
            raise ValueError("joint ranks FF and attention neurons together: give both --ff-frac and --attn-frac "
                             "above 0, with --attn-unit neuron.")
        return self

    @classmethod
    def from_dict(cls, values: dict) -> "Method":
        """From CLI options, `separ` model_args (strings are converted) or a results file's `method` block."""
        return cls(**values)

    def fraction(self, unit: str) -> float:
        return self.ff_frac if unit == "ff" else self.attn_frac

    def scoring_for(self, unit: str) -> str:
        return self.ff_scoring if unit == "ff" else self.attn_scoring

    @property
    def budget(self) -> Budget:
        return Budget(collect_tokens=self.collect_tokens, eval_tokens=self.eval_tokens, block_len=self.block_len,
                      window=self.window, data_seed=self.data_seed)

    def as_dict(self) -> dict:
        """The `method` block of a results file (scorings as {"ff": ..., "attn": ...})."""
        values = self.model_dump()
        values["scoring"] = {"ff": values.pop("ff_scoring"), "attn": values.pop("attn_scoring")}
        return values


# The statistics of one step: (forget, retain), collected on the model as pruned so far.
Statistics = Callable[[int], "tuple[stats.UnitStats, stats.UnitStats]"]


@dataclass
class Pruner:
    """Holds the model's pruning state across steps; the model's weights are edited in place."""

    model: torch.nn.Module
    model_map: ModelMap
    method: Method
    masks: Masks = None

    def __post_init__(self):
        if self.masks is None:
            self.masks = Masks.empty(self.model_map, {"method": self.method.as_dict(), "step": 0})
        self.prune_seconds = 0.0

    def units(self) -> list[str]:
        return [u for u in ("ff", "attn") if self.method.fraction(u) > 0]

    def collect(self, blocks: CorpusBlocks, batch_size: int, progress=None,
                names: dict[str, tuple[str, ...]] | None = None) -> stats.UnitStats:
        """Statistics of the pruned unit types over this rank's share of the train blocks, summed over all ranks:
        the sums this method reads, or `names` (e.g. the union that several scorings read)."""
        shard = distributed.shard(blocks.collect)
        needed = names or self.statistics_needed()
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
        return forward.fast_forward(self.model, self.model_map, self.masks.pruned["ff"])

    def prune_steps(self, statistics: Statistics, first: int = 1) -> Iterator[int]:
        """Prune steps `first`..`method.steps`, yielding each step once its units are baked in.

        `statistics(step)` is asked every step, or only once when the method does not recollect.
        """
        fixed = None
        for step in range(first, self.method.steps + 1):
            if self.method.recollect or fixed is None:
                fixed = statistics(step)
            self.step(*fixed, step)
            yield step

    def _quota(self, unit: str, step: int) -> int:
        """How many more units of a type this step prunes."""
        frac, total = self.method.fraction(unit), self.masks.pruned[unit].numel()
        if self.method.recollect:
            return round(frac * total)
        return round(frac * step * total) - self.masks.count(unit)  # statistics of the unpruned model: cumulative

    def scores(self, forget: stats.UnitStats, retain: stats.UnitStats, unit: str) -> torch.Tensor:
        """This unit type's scores: (L, width), or (L, heads) when whole heads are pruned."""
        heads = unit == "attn" and self.method.attn_unit == "head"
        name = self.method.scoring_for(unit)
        context = scoring.Context(
            unit, mean_ablation=self.method.offset == "mean", retain_weight=self.method.retain_weight,
            weight_norms=edit.output_weight_norms(self.model_map, unit) if name == "wanda-diff" else None,
        )
        return scoring.score(name, forget, retain, unit, d_head=self.model_map.d_head if heads else None,
                             seed=self.method.seed, context=context)

    def step(self, forget: stats.UnitStats, retain: stats.UnitStats, step: int) -> dict[str, torch.Tensor]:
        """Prune one more `frac` of each unit type (step is 1-based). Returns the newly pruned masks."""
        started = time.perf_counter()
        scores = {unit: self.scores(forget, retain, unit) for unit in self.units()}
        if self.method.joint:
            chosen = edit.select_joint(scores, self.masks.pruned, sum(self._quota(u, step) for u in scores))
        else:
            chosen = {}
            for unit, unit_scores in scores.items():
                if unit == "attn" and self.method.attn_unit == "head":
                    d_head = self.model_map.d_head
                    already = self.masks.pruned[unit].reshape(unit_scores.shape[0], -1, d_head).all(dim=-1)
                    heads = edit.select(unit_scores, already, round(self._quota(unit, step) / d_head))
                    chosen[unit] = edit.expand_heads(heads, d_head)
                else:
                    chosen[unit] = edit.select(unit_scores, self.masks.pruned[unit], self._quota(unit, step))
        new = {unit: mask & ~self.masks.pruned[unit] for unit, mask in chosen.items()}
        offsets = None
        if self.method.offset == "mean":
            offsets = {u: retain.mean(u, "sum").float() * new[u] for u in new}
        edit.bake(self.model_map, new, offsets)
        for unit, mask in new.items():
            self.masks.pruned[unit] |= mask
            if offsets is not None:
                self.masks.offsets[unit] += offsets[unit]
        self.masks.meta["step"] = step
        self.prune_seconds += time.perf_counter() - started
        return new
