"""Importance scores: how specific each unit is to the forget data. Highest is pruned first.

Every score is a ratio forget-statistic / (retain-statistic + eps). eps is relative
(1e-6 x the mean retain statistic of the unit type) so the scores do not depend on
the activation scale of a model. Unlike `taker`, `std` is a true standard deviation
(taker's is a variance ratio) and `rms` is sqrt(E[a^2]) (taker squares the variance).
"""

from __future__ import annotations

from typing import Callable

import torch

from .stats import UnitStats

EPS_RELATIVE = 1e-6

# name -> statistic per unit from a UnitStats; the score is stat(F) / (stat(R) + eps)
Statistic = Callable[[UnitStats, str], torch.Tensor]
STATISTICS: dict[str, Statistic] = {}
NEEDS: dict[str, tuple[str, ...]] = {"random": ()}  # scoring -> the sums it reads (collection computes only these)


def register_score(name: str, needs: tuple[str, ...]):
    def decorate(fn: Statistic) -> Statistic:
        STATISTICS[name] = fn
        NEEDS[name] = needs
        return fn

    return decorate


@register_score("abs", needs=("sum_abs",))
def _mean_abs(stats: UnitStats, unit: str) -> torch.Tensor:
    return stats.mean(unit, "sum_abs")


@register_score("freq", needs=("count_pos",))
def _frequency_positive(stats: UnitStats, unit: str) -> torch.Tensor:
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


SCORINGS = (*STATISTICS, "random")


def _per_head(values: torch.Tensor, d_head: int) -> torch.Tensor:
    """Mean of a per-neuron statistic over each head's neurons: (L, H*D) -> (L, H)."""
    return values.reshape(values.shape[0], -1, d_head).mean(dim=-1)


def score(
    name: str,
    forget: UnitStats,
    retain: UnitStats,
    unit: str,
    *,
    d_head: int | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Scores of shape (n_layers, width), or (n_layers, n_heads) when `d_head` is given (whole heads)."""
    if name == "random":
        shape = forget.get(unit, "count").shape
        if d_head is not None:
            shape = (shape[0], shape[1] // d_head)
        generator = torch.Generator().manual_seed(seed)
        return torch.rand(shape, generator=generator, dtype=torch.float64)
    if name not in STATISTICS:
        raise ValueError(f"Unknown scoring {name!r}; choose one of {', '.join(SCORINGS)}.")
    stat_forget = STATISTICS[name](forget, unit)
    stat_retain = STATISTICS[name](retain, unit)
    if d_head is not None:
        stat_forget, stat_retain = _per_head(stat_forget, d_head), _per_head(stat_retain, d_head)
    eps = EPS_RELATIVE * stat_retain.mean().clamp_min(torch.finfo(torch.float64).tiny)
    return stat_forget / (stat_retain + eps)
