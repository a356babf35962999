"""Next-token metrics in one forward pass: top1, top10, skip50_top1, skip50_top10, loss, ppl.

Logits are computed from the final hidden states in chunks of positions, so a
batch never materialises a full (batch x length x vocabulary) float32 tensor.
Counts are micro-averaged over predicted tokens: every target token weighs the same.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch

from .arch import base_model, input_device, lm_head_logits

ACCURACY_METRICS = ("top1", "top10", "skip50_top1", "skip50_top10")
ALL_METRICS = (*ACCURACY_METRICS, "loss", "ppl")


@dataclass
class TokenCounts:
    n: float = 0
    top1: float = 0
    top10: float = 0
    skip_n: float = 0
    skip_top1: float = 0
    skip_top10: float = 0
    loss_sum: float = 0.0

    def __add__(self, other: "TokenCounts") -> "TokenCounts":
        return TokenCounts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def as_tensor(self) -> torch.Tensor:
        return torch.tensor([getattr(self, f.name) for f in fields(self)], dtype=torch.float64)

    @classmethod
    def from_tensor(cls, tensor: torch.Tensor) -> "TokenCounts":
        return cls(*(float(v) for v in tensor.tolist()))

    def all_reduce(self) -> "TokenCounts":
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return self
        tensor = self.as_tensor()
        dist.all_reduce(tensor)
        return TokenCounts.from_tensor(tensor)

    def metrics(self) -> dict[str, float]:
        if self.n == 0:
            raise ValueError("No tokens were evaluated.")
        loss = self.loss_sum / self.n
        return {
            "top1": self.top1 / self.n,
            "top10": self.top10 / self.n,
            "skip50_top1": self.skip_top1 / self.skip_n if self.skip_n else float("nan"),
            "skip50_top10": self.skip_top10 / self.skip_n if self.skip_n else float("nan"),
            "loss": loss,
            "ppl": math.exp(loss),
        }

    def to_dict(self) -> dict:
        return asdict(self)


COUNT_FIELDS = tuple(f.name for f in fields(TokenCounts))  # n, top1, top10, skip_n, skip_top1, skip_top10, loss_sum


def position_counts(logits: torch.Tensor, targets: torch.Tensor, frequent: torch.Tensor) -> torch.Tensor:
    """(N, len(COUNT_FIELDS)) float64: each target's contribution to every count (loss in nats)."""
    logits = logits.float()
    top10 = logits.topk(10, dim=-1).indices
    hit1 = top10[:, 0] == targets
    hit10 = (top10 == targets[:, None]).any(dim=-1)
    rare = ~torch.isin(targets, frequent.to(targets.device))
    loss = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
    columns = (torch.ones_like(hit1), hit1, hit10, rare, hit1 & rare, hit10 & rare)
    return torch.stack([*(c.double() for c in columns), loss.double()], dim=1)


def count_predictions(logits: torch.Tensor, targets: torch.Tensor, frequent: torch.Tensor) -> TokenCounts:
    """Counts for rows of logits (N, V) against targets (N,)."""
    return TokenCounts.from_tensor(position_counts(logits, targets, frequent).sum(dim=0))


@torch.inference_mode()
def count_targets(model, blocks, frequent: torch.Tensor, *, by: str = "total", batch_size: int = 8,
                  chunk: int = 512, progress=None) -> torch.Tensor:
    """(groups, len(COUNT_FIELDS)) float64 counts over every scored target of `blocks` (see `Blocks.targets`),
    grouped `by` "total" (one row), "block" (a row per block) or "unit" (a row per document)."""
    decoder = base_model(model)
    device = input_device(model)
    groups = {"total": 1, "block": len(blocks), "unit": max(1, len(getattr(blocks, "documents", ())))}[by]
    out = torch.zeros((groups, len(COUNT_FIELDS)), dtype=torch.float64)
    for start in range(0, len(blocks), batch_size):
        end = min(start + batch_size, len(blocks))
        input_ids = blocks.input_ids[start:end].to(device)
        attention_mask = blocks.attention_mask[start:end].to(device)
        hidden = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
        scored, unit = blocks.targets(start, end)
        if by == "block":
            unit = torch.arange(start, end)[:, None].expand_as(scored)
        elif by == "total":
            unit = torch.zeros_like(unit)
        scored = scored.to(device)
        rows, targets, owner = hidden[:, :-1][scored], input_ids[:, 1:][scored], unit.to(device)[scored]
        for c in range(0, targets.numel(), chunk):
            logits = lm_head_logits(model, rows[c : c + chunk])
            counts = position_counts(logits, targets[c : c + chunk], frequent)
            out.index_add_(0, owner[c : c + chunk].cpu(), counts.cpu())
        if progress is not None:
            progress(int(attention_mask.sum()))
    return out


def evaluate_blocks(model, blocks, frequent: torch.Tensor, **kwargs) -> list[TokenCounts]:
    """TokenCounts of each block."""
    return [TokenCounts.from_tensor(row) for row in count_targets(model, blocks, frequent, by="block", **kwargs)]


def evaluate(model, blocks, frequent: torch.Tensor, **kwargs) -> TokenCounts:
    """TokenCounts over all of `blocks`."""
    return TokenCounts.from_tensor(count_targets(model, blocks, frequent, by="total", **kwargs)[0])
