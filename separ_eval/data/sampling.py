"""Which text a run reads: windows drawn across many documents in a seeded, content-keyed order.

A split's documents are visited in an order set by a hash of (data seed, document
content), never by their position in the file. Each document offers disjoint windows
of `window` tokens at a seeded phase (a short document is one whole window); the first
pass takes one window from every document in order, the next pass a second window
from those long enough, and so on, until the budget is filled. So a budget of B tokens
reaches about B / window documents, and a document never gives a second window
before every document has given one. The same seed gives the same windows, whatever
the file order and whichever other corpora exist.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .corpora import CorpusError

TOKENIZE_CHUNK = 64  # documents tokenized per call, in visiting order, only as far as the budget reaches


def document_id(text: str) -> str:
    """A document's name in run folders and results: its content hash (16 hex digits)."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _key(*parts) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "big")


@dataclass(frozen=True)
class Window:
    document: str  # document_id
    offset: int  # first token, in the document's own tokenization
    tokens: tuple[int, ...]


def _slots(length: int, window: int, seed: int, doc: str) -> list[int]:
    """Start offsets of a document's disjoint windows, in the seeded order the passes take them."""
    if length <= window:
        return [0]
    count = length // window
    phase = _key(seed, doc, "phase") % (length - count * window + 1)
    starts = [phase + k * window for k in range(count)]
    return sorted(starts, key=lambda start: _key(seed, doc, start))


def sample_windows(tokenizer, documents: list[str], n_tokens: int, window: int, seed: int, *,
                   what: str = "corpus") -> list[Window]:
    """Windows holding `n_tokens` tokens in all (the last one cut to fit), drawn as the module docstring says."""
    if n_tokens <= 0:
        raise CorpusError(f"The number of tokens must be positive, got {n_tokens}.")
    if window < 2:
        raise CorpusError(f"A window must hold at least 2 tokens, got {window}.")
    unique = {document_id(text): text for text in documents}  # an exact duplicate is one document
    order = sorted(unique, key=lambda doc: (_key(seed, doc), doc))
    tokens: dict[str, list[int]] = {}

    def tokenized(position: int) -> list[int]:
        doc = order[position]
        if doc not in tokens:
            batch = order[position : position + TOKENIZE_CHUNK]
            encoded = tokenizer([unique[d] for d in batch], add_special_tokens=False)["input_ids"]
            tokens.update(zip(batch, encoded))
        return tokens[doc]

    windows, total, pass_number = [], 0, 0
    while total < n_tokens:
        taken_this_pass = 0
        for position, doc in enumerate(order):
            ids = tokenized(position)
            if len(ids) < 2:
                continue
            slots = _slots(len(ids), window, seed, doc)
            if pass_number >= len(slots):
                continue
            start = slots[pass_number]
            piece = ids[start : start + min(window, n_tokens - total)]
            windows.append(Window(doc, start, tuple(piece)))
            total += len(piece)
            taken_this_pass += 1
            if total >= n_tokens:
                break
        if taken_this_pass == 0:
            raise CorpusError(
                f"The {what} has only {total} tokens in distinct windows but {n_tokens} were requested: "
                "lower the token budget or give a larger corpus."
            )
        pass_number += 1
    return windows
