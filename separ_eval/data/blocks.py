"""Token blocks: documents tokenized and packed into fixed-length sequences, and the frequent-token set.

Blocks keep the tokenizer's own prefix (e.g. BOS) at the start of every sequence;
padding is marked 0 in the attention mask and never counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch

from .corpora import Corpus, CorpusError


@dataclass(frozen=True)
class Budget:
    """How much text a run reads per corpus: tokens for statistics (train split) and metrics (test split)."""

    collect_tokens: int
    eval_tokens: int
    block_len: int


@dataclass
class Blocks:
    """Packed token blocks: `input_ids` (N, T) and `attention_mask` (N, T); 0 marks padding."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    @property
    def n_tokens(self) -> int:
        return int(self.attention_mask.sum())

    def batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, len(self), batch_size):
            yield self.input_ids[start : start + batch_size], self.attention_mask[start : start + batch_size]

    def shard(self, rank: int, world_size: int) -> "Blocks":
        """Every world_size-th block, for data parallelism."""
        return Blocks(self.input_ids[rank::world_size], self.attention_mask[rank::world_size])


def token_stream(tokenizer, documents: list[str], limit: int | None = None) -> list[int]:
    """Documents tokenized and joined with the EOS token, stopping once `limit` tokens are reached."""
    stream: list[int] = []
    separator = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    for start in range(0, len(documents), 64):
        encoded = tokenizer(documents[start : start + 64], add_special_tokens=False)["input_ids"]
        for ids in encoded:
            stream.extend(ids + separator)
        if limit is not None and len(stream) >= limit:
            break
    return stream


def pack(tokenizer, documents: list[str], n_tokens: int, block_len: int, *, what: str = "corpus") -> Blocks:
    """`n_tokens` tokens packed into blocks of `block_len`, each led by the tokenizer's own prefix (e.g. BOS).

    The last block is padded (attention_mask 0) when `n_tokens` does not fill it.
    """
    if n_tokens <= 0:
        raise ValueError(f"The number of tokens must be positive, got {n_tokens}.")
    prefix = tokenizer("", add_special_tokens=True)["input_ids"]  # what the model expects to start with
    room = block_len - len(prefix)
    if room <= 1:
        raise ValueError(f"block_len {block_len} is too short.")
    stream = token_stream(tokenizer, documents, limit=n_tokens)
    if len(stream) < n_tokens:
        raise CorpusError(
            f"The {what} has only {len(stream)} tokens but {n_tokens} were requested: "
            "lower the token budget or give a larger corpus."
        )
    stream = stream[:n_tokens]
    n_blocks = -(-n_tokens // room)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    input_ids = torch.full((n_blocks, block_len), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((n_blocks, block_len), dtype=torch.long)
    for b in range(n_blocks):
        chunk = prefix + stream[b * room : (b + 1) * room]
        input_ids[b, : len(chunk)] = torch.tensor(chunk)
        attention_mask[b, : len(chunk)] = 1
    return Blocks(input_ids, attention_mask)


def frequent_tokens(tokenizer, documents: list[str], k: int = 50, max_tokens: int = 1_000_000) -> torch.Tensor:
    """Ids of the `k` most frequent tokens of the (train) documents, counted on up to `max_tokens` tokens."""
    stream = torch.tensor(token_stream(tokenizer, documents, limit=max_tokens)[:max_tokens], dtype=torch.long)
    if stream.numel() == 0:
        raise CorpusError("Cannot count frequent tokens of an empty corpus.")
    counts = torch.bincount(stream)
    return torch.sort(torch.topk(counts, min(k, int((counts > 0).sum()))).indices).values


@dataclass
class CorpusBlocks:
    """One corpus, tokenized once per run: train blocks for statistics, test blocks for metrics."""

    corpus: Corpus
    collect: Blocks
    evaluate: Blocks | None
    frequent: torch.Tensor | None

    @classmethod
    def prepare(cls, corpus: Corpus, tokenizer, budget: Budget, *, need_eval: bool = True) -> "CorpusBlocks":
        train = corpus.split("train")
        if not train:
            raise CorpusError(f"Corpus {corpus.name!r} has no training documents.")
        collect = pack(tokenizer, train, budget.collect_tokens, budget.block_len, what=f"{corpus.name} train split")
        evaluate = frequent = None  # statistics alone need neither (counting frequent tokens takes seconds)
        if need_eval:
            frequent = frequent_tokens(tokenizer, train)
            test = corpus.split("test")
            evaluate = pack(tokenizer, test, budget.eval_tokens, budget.block_len, what=f"{corpus.name} test split")
        return cls(corpus, collect, evaluate, frequent)
