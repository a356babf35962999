"""Token blocks: sampled windows packed into fixed-length sequences, and the frequent-token set.

A block is the tokenizer's own prefix (e.g. BOS) followed by windows joined with EOS;
a window may continue into the next block. `units` names, for every token, the
document its window came from (-1 for the prefix, separators and padding), so metrics
can be counted per document and a target counts only when its context position holds
the same document's previous token. Padding is marked 0 in the attention mask.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import torch

from .corpora import Corpus, CorpusError
from .sampling import Window, document_id, sample_windows


@dataclass(frozen=True)
class Budget:
    """How much text a run reads per corpus, and how it is drawn (see `sampling`)."""

    collect_tokens: int
    eval_tokens: int
    block_len: int
    window: int = 128
    data_seed: int = 0


@dataclass
class Blocks:
    """Packed token blocks: `input_ids` (N, T), `attention_mask` (N, T) with 0 for padding, and optionally
    `units` (N, T): index into `documents` of each token's document, -1 where no document's text is."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    units: torch.Tensor | None = None
    documents: list[str] = field(default_factory=list)  # document ids; units index into it
    layout: list[list[dict]] = field(default_factory=list)  # per block: {"document", "offset", "tokens"}

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    @property
    def n_tokens(self) -> int:
        return int(self.attention_mask.sum())

    def batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, len(self), batch_size):
            yield self.input_ids[start : start + batch_size], self.attention_mask[start : start + batch_size]

    def targets(self, start: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
        """For blocks start..end: (scored (n, T-1) bool, unit (n, T-1) long) of each next-token target.

        Position t predicts token t+1; it counts when both are unpadded and, with units, when both hold
        the same document (so neither a separator nor a window's first token, whose context is another
        document, is scored). `unit` is the target's document, or 0 without units.
        """
        mask = self.attention_mask[start:end].bool()
        scored = mask[:, :-1] & mask[:, 1:]
        if self.units is None:
            return scored, torch.zeros_like(scored, dtype=torch.long)
        units = self.units[start:end]
        scored &= (units[:, :-1] == units[:, 1:]) & (units[:, 1:] >= 0)
        return scored, units[:, 1:].clamp_min(0)

    def select(self, rows) -> "Blocks":
        """The blocks at `rows` (a slice or a list of indices), keeping the document list."""
        rows = list(range(len(self)))[rows] if isinstance(rows, slice) else list(rows)
        return Blocks(self.input_ids[rows], self.attention_mask[rows],
                      None if self.units is None else self.units[rows], self.documents,
                      [self.layout[r] for r in rows] if self.layout else [])

    def shard(self, rank: int, world_size: int) -> "Blocks":
        """Every world_size-th block, for data parallelism (units stay global document indices)."""
        return self.select(slice(rank, None, world_size))


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


def pack_windows(tokenizer, windows: list[Window], block_len: int) -> Blocks:
    """Windows joined with EOS into blocks of `block_len`, each led by the tokenizer's own prefix."""
    prefix = tokenizer("", add_special_tokens=True)["input_ids"]  # what the model expects to start with
    room = block_len - len(prefix)
    if room <= 1:
        raise CorpusError(f"block_len {block_len} is too short for the tokenizer's prefix of {len(prefix)} tokens.")
    documents = list(dict.fromkeys(w.document for w in windows))
    index = {doc: i for i, doc in enumerate(documents)}
    separator = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    stream, owner, pieces = [], [], []  # token ids; their unit (-1: separator); (window, offset in stream)
    for w in windows:
        pieces.append((w, len(stream)))
        stream += [*w.tokens, *separator]
        owner += [index[w.document]] * len(w.tokens) + [-1] * len(separator)
    n_blocks = -(-len(stream) // room)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    input_ids = torch.full((n_blocks, block_len), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((n_blocks, block_len), dtype=torch.long)
    units = torch.full((n_blocks, block_len), -1, dtype=torch.long)
    for b in range(n_blocks):
        chunk = stream[b * room : (b + 1) * room]
        input_ids[b, : len(prefix) + len(chunk)] = torch.tensor(prefix + chunk)
        attention_mask[b, : len(prefix) + len(chunk)] = 1
        units[b, len(prefix) : len(prefix) + len(chunk)] = torch.tensor(owner[b * room : (b + 1) * room])
    layout = [[] for _ in range(n_blocks)]
    for w, at in pieces:  # which part of which window each block holds
        for b in range(at // room, (at + len(w.tokens) - 1) // room + 1):
            first, last = max(at, b * room), min(at + len(w.tokens), (b + 1) * room)
            layout[b].append({"document": w.document, "offset": w.offset + first - at, "tokens": last - first})
    return Blocks(input_ids, attention_mask, units, documents, layout)


def pack(tokenizer, documents: list[str], n_tokens: int, block_len: int, *, window: int = 128, seed: int = 0,
         what: str = "corpus") -> Blocks:
    """`n_tokens` tokens sampled from `documents` in windows (see `sampling`) and packed into blocks."""
    return pack_windows(tokenizer, sample_windows(tokenizer, documents, n_tokens, window, seed, what=what), block_len)


def frequent_tokens(tokenizer, documents: list[str], k: int = 50, max_tokens: int = 1_000_000) -> torch.Tensor:
    """Ids of the `k` most frequent tokens of the (train) documents, counted on up to `max_tokens` tokens
    taken in content-hash order (so the set does not depend on the order of the corpus file)."""
    ordered = sorted(documents, key=document_id)
    stream = torch.tensor(token_stream(tokenizer, ordered, limit=max_tokens)[:max_tokens], dtype=torch.long)
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
        sampled = dict(window=budget.window, seed=budget.data_seed)
        collect = pack(tokenizer, train, budget.collect_tokens, budget.block_len, **sampled,
                       what=f"{corpus.name} train split")
        evaluate = frequent = None  # statistics alone need neither (counting frequent tokens takes seconds)
        if need_eval:
            frequent = frequent_tokens(tokenizer, train)
            test = corpus.split("test")
            if not test:
                raise CorpusError(f"Corpus {corpus.name!r} has no test documents: give a larger corpus.")
            evaluate = pack(tokenizer, test, budget.eval_tokens, budget.block_len, **sampled,
                            what=f"{corpus.name} test split")
        return cls(corpus, collect, evaluate, frequent)

    def identity(self) -> dict:
        """The corpus's identity and how many distinct documents this run's blocks came from."""
        counts = {"collect_documents": len(self.collect.documents)}
        if self.evaluate is not None:
            counts["eval_documents"] = len(self.evaluate.documents)
        return {**self.corpus.identity(), **counts}
