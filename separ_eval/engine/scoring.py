"""Importance scores: how specific each unit is to the forget data. Highest is pruned first.

Two kinds, one registry (each entry declares the sums it reads, so collection computes
only those):
- ratios of a per-unit statistic, forget over retain + eps (`abs`, `freq`, `sqrt`, `std`,
  `rms`: the paper's, taker's); eps is relative (1e-6 x the mean retain statistic) so scores
  do not depend on a model's activation scale. Unlike `taker`, `std` is a true standard
  deviation (taker's is a variance ratio) and `rms` is sqrt(E[a^2]) (taker squares the variance);
- scores that weigh what removing a unit costs (`attrib`, `wanda-diff`, `centred`).
`random` is the baseline every table needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .stats import UnitStats

EPS_RELATIVE = 1e-6


@dataclass(frozen=True)
class Context:
    """What a scoring may need beyond the statistics."""

    unit: str
    weight_norms: torch.Tensor | None = None  # (L, W) ||W_out[:, i]||: each unit's output weight norm
    mean_ablation: bool = False  # a removed unit keeps its retain mean (offset mean) instead of 0
    retain_weight: float = 1.0  # lambda of the difference scorings


# name -> statistic per unit from a UnitStats; the score is stat(F) / (stat(R) + eps)
Statistic = Callable[[UnitStats, str], torch.Tensor]
STATISTICS: dict[str, Statistic] = {}
# name -> (forget, retain, context) -> per-neuron scores (L, W)
Scorer = Callable[[UnitStats, UnitStats, Context], torch.Tensor]
SCORERS: dict[str, Scorer] = {}
NEEDS: dict[str, tuple[str, ...]] = {"random": ()}  # scoring -> the sums it reads (collection computes only these)
HEADS_BY_SUM: set[str] = set()  # scorings whose head score is the sum of its neurons' (additive costs)


def register_score(name: str, needs: tuple[str, ...]):
    """A ratio scoring from a per-unit statistic."""

    def decorate(fn: Statistic) -> Statistic:
        STATISTICS[name] = fn
        NEEDS[name] = needs
        return fn

    return decorate


def register_scorer(name: str, needs: tuple[str, ...], *, additive: bool = True):
    """A scoring that combines forget and retain itself."""

    def decorate(fn: Scorer) -> Scorer:
        SCORERS[name] = fn
        NEEDS[name] = needs
        if additive:
            HEADS_BY_SUM.add(name)
        return fn

    return decorate


@register_score("abs", needs=("sum_abs",))
def _mean_abs(stats: UnitStats, unit: str) -> torch.Tensor:
    return stats.mean(unit, "sum_abs")


@register_score("freq", needs=("count_pos",))
def _frequency_positive(stats: UnitStats, unit: str) -> torch.Tensor:
    """P(a > 0). On gated MLPs (act(gate) * up) a unit is positive about half the time whatever the text,
    so this measures little there."""
    return stats.mean(unit, "count_pos")


@register_score("sqrt", needs=("sum_sqrt",))
def _mean_sqrt_abs(stats: UnitStats, unit: str) -> torch.Tensor:
    return stats.mean(unit, "sum_sqrt")


@register_score("std", needs=("sum", "sum_sq"))
def _std(stats: UnitStats, unit: str) -> torch.Tensor:
    return stats.std(unit)


@register_score("rms", needs=("sum_sq",))
def _rms(stats: UnitStats, unit: str) -> torch.Tensor:
    return stats.mean(unit, "sum_sq").sqrt()


def attribution(stats: UnitStats, ablated: torch.Tensor | float, unit: str) -> torch.Tensor:
    """E_t[(ablated - a_t) dL/da_t]: the first-order change of the mean loss when the unit is replaced."""
    count = stats.get(unit, "count")
    return (ablated * stats.get(unit, "sum_grad") - stats.get(unit, "sum_act_grad")) / count


@register_scorer("attrib", needs=("sum", "sum_grad", "sum_act_grad"))
def _attribution(forget: UnitStats, retain: UnitStats, ctx: Context) -> torch.Tensor:
    """A_F - lambda * max(A_R, 0), A_D = E_D[(v - a) dL/da] with v the value a removed unit takes (0, or the retain
    mean with offset mean). Attribution patching (Nanda 2023; Kramar et al. 2024, AtP*, arXiv 2403.00745)."""
    ablated = retain.mean(ctx.unit, "sum") if ctx.mean_ablation else 0.0
    a_forget = attribution(forget, ablated, ctx.unit)
    a_retain = attribution(retain, ablated, ctx.unit)
    return a_forget - ctx.retain_weight * a_retain.clamp_min(0)


@register_scorer("wanda-diff", needs=("sum_abs",))
def _wanda_difference(forget: UnitStats, retain: UnitStats, ctx: Context) -> torch.Tensor:
    """I_F / sum I_F - lambda I_R / sum I_R with I_D = E_D|a| * ||W_out[:, i]|| (decoupled Wanda importance; Sun et
    al. 2023, arXiv 2306.11695): in a difference the weight norm no longer cancels as it does in a ratio."""
    if ctx.weight_norms is None:
        raise ValueError("wanda-diff needs the output weight norms of the units (Context.weight_norms).")
    i_forget = forget.mean(ctx.unit, "sum_abs") * ctx.weight_norms
    i_retain = retain.mean(ctx.unit, "sum_abs") * ctx.weight_norms
    return i_forget / i_forget.sum() - ctx.retain_weight * i_retain / i_retain.sum()


@register_scorer("centred", needs=("sum", "sum_sq"), additive=False)
def _centred(forget: UnitStats, retain: UnitStats, ctx: Context) -> torch.Tensor:
    """sqrt(var_F + (mu_F - mu_R)^2) / (std_R + eps): the RMS change of the unit's output on forget text when it is
    replaced by its retain mean, over its spread on retain text; use it with --offset mean."""
    mu_forget, mu_retain = forget.mean(ctx.unit, "sum"), retain.mean(ctx.unit, "sum")
    change = (forget.std(ctx.unit) ** 2 + (mu_forget - mu_retain) ** 2).sqrt()
    spread = retain.std(ctx.unit)
    return change / (spread + EPS_RELATIVE * spread.mean().clamp_min(torch.finfo(torch.float64).tiny))


SCORINGS = (*STATISTICS, *SCORERS, "random")
CLASSICAL = ("abs", "std", "rms", "sqrt")  # the seed's ratio scorings that new ones are compared against


def _per_head(values: torch.Tensor, d_head: int, reduce: str = "mean") -> torch.Tensor:
    """A per-neuron value over each head's neurons: (L, H*D) -> (L, H)."""
    grouped = values.reshape(values.shape[0], -1, d_head)
    return grouped.sum(dim=-1) if reduce == "sum" else grouped.mean(dim=-1)


def score(
    name: str,
    forget: UnitStats,
    retain: UnitStats,
    unit: str,
    *,
    d_head: int | None = None,
    seed: int = 0,
    context: Context | None = None,
) -> torch.Tensor:
    """Scores of shape (n_layers, width), or (n_layers, n_heads) when `d_head` is given (whole heads)."""
    if name == "random":
        shape = forget.get(unit, "count").shape
        if d_head is not None:
            shape = (shape[0], shape[1] // d_head)
        generator = torch.Generator().manual_seed(seed)
        return torch.rand(shape, generator=generator, dtype=torch.float64)
    if name in SCORERS:
        scores = SCORERS[name](forget, retain, context or Context(unit))
        if d_head is not None:
            scores = _per_head(scores, d_head, "sum" if name in HEADS_BY_SUM else "mean")
        return scores
    if name not in STATISTICS:
        raise ValueError(f"Unknown scoring {name!r}; choose one of {', '.join(SCORINGS)}.")
    stat_forget = STATISTICS[name](forget, unit)
    stat_retain = STATISTICS[name](retain, unit)
    if d_head is not None:
        stat_forget, stat_retain = _per_head(stat_forget, d_head), _per_head(stat_retain, d_head)
    eps = EPS_RELATIVE * stat_retain.mean().clamp_min(torch.finfo(torch.float64).tiny)
    return stat_forget / (stat_retain + eps)
