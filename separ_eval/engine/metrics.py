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


def count_predictions(logits: torch.Tensor, targets: torch.Tensor, frequent: torch.Tensor) -> TokenCounts:
    """Counts for rows of logits (N, V) against targets (N,)."""
    logits = logits.float()
    top10 = logits.topk(10, dim=-1).indices
    hit1 = top10[:, 0] == targets
    hit10 = (top10 == targets[:, None]).any(dim=-1)
    rare = ~torch.isin(targets, frequent.to(targets.device))
    loss = torch.nn.functional.cross_entropy(logits, targets, reduction="sum")
    return TokenCounts(
        n=targets.numel(),
        top1=int(hit1.sum()),
        top10=int(hit10.sum()),
        skip_n=int(rare.sum()),
        skip_top1=int((hit1 & rare).sum()),
        skip_top10=int((hit10 & rare).sum()),
        loss_sum=float(loss),
    )


@torch.inference_mode()
def evaluate_blocks(model, blocks, frequent: torch.Tensor, *, batch_size: int = 8, chunk: int = 512,
                    progress=None) -> list[TokenCounts]:
    """TokenCounts of each block: every predicted position whose target and context are both unpadded."""
    decoder = base_model(model)
    device = input_device(model)
    per_block = []
    for input_ids, attention_mask in blocks.batches(batch_size):
        input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
        hidden = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
        valid = (attention_mask[:, :-1] * attention_mask[:, 1:]).bool()
        for row in range(input_ids.shape[0]):
            row_hidden = hidden[row, :-1][valid[row]]
            targets = input_ids[row, 1:][valid[row]]
            total = TokenCounts()
            for start in range(0, targets.numel(), chunk):
                logits = lm_head_logits(model, row_hidden[start : start + chunk])
                total = total + count_predictions(logits, targets[start : start + chunk], frequent)
            per_block.append(total)
        if progress is not None:
            progress(int(attention_mask.sum()))
    return per_block


def evaluate(model, blocks, frequent: torch.Tensor, *, batch_size: int = 8, chunk: int = 512, progress=None) -> TokenCounts:
    """TokenCounts over all of `blocks` (the sum of `evaluate_blocks`)."""
    per_block = evaluate_blocks(model, blocks, frequent, batch_size=batch_size, chunk=chunk, progress=progress)
    return sum(per_block, TokenCounts())
