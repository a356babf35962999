"""Corpora: named or local text collections, a deterministic train/test split, and packing into blocks.

The split is by document hash, so it does not depend on document order or on
which other documents a corpus holds. Statistics use the train split, metrics
the test split; the two never share a document.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Iterator

import torch

TEST_PERMILLE = 100  # 10% of documents are held out for evaluation
LOCAL_SUFFIXES = (".txt", ".md", ".py", ".rst", ".jsonl", ".json", ".gz")
TEXT_FIELDS = ("text", "content", "code")


class CorpusError(ValueError):
    pass


@dataclass(frozen=True)
class HubCorpus:
    """A corpus streamed from the Hugging Face hub (needs network; not used offline)."""

    path: str
    name: str | None
    text_field: str
    exclude: tuple[str, str] | None = None  # (meta key, value) to drop, e.g. Pile's Github subset
    max_documents: int = 20000


EMBEDDED = ("code", "prose")
HUB: dict[str, HubCorpus] = {
    "github-code": HubCorpus("codeparrot/github-code-clean", "all-all", "code"),
    "pile": HubCorpus("monology/pile-uncopyrighted", None, "text"),
    "pile-codeless": HubCorpus("monology/pile-uncopyrighted", None, "text", exclude=("pile_set_name", "Github")),
}
ALIASES = {"general": "prose", "python": "code"}


@dataclass
class Corpus:
    name: str
    source: str
    documents: list[str]

    @property
    def sha256(self) -> str:
        digest = hashlib.sha256()
        for doc in self.documents:
            digest.update(hashlib.sha256(doc.encode()).digest())
        return digest.hexdigest()

    def split(self, which: str) -> list[str]:
        """'train' or 'test' documents, chosen by a hash of each document's text."""
        if which not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', not {which!r}")
        want_test = which == "test"
        return [d for d in self.documents if _is_test(d) == want_test]

    def identity(self) -> dict:
        return {"source": self.source, "sha256": self.sha256, "documents": len(self.documents)}


def _is_test(document: str) -> bool:
    return int.from_bytes(hashlib.sha256(document.encode()).digest()[:4], "big") % 1000 < TEST_PERMILLE


def available() -> dict[str, str]:
    """Corpus names and where they come from."""
    listing = {name: "embedded (offline)" for name in EMBEDDED}
    listing.update({name: f"hub: {spec.path}" for name, spec in HUB.items()})
    return listing


@lru_cache(maxsize=8)
def load_corpus(name: str) -> Corpus:
    """An embedded corpus, a hub corpus, or a local file / directory."""
    name = ALIASES.get(name, name)
    if name in EMBEDDED:
        with resources.files("separ_eval").joinpath("corpora", f"{name}.jsonl.gz").open("rb") as raw:
            docs = _read_jsonl(gzip.open(raw, "rt", encoding="utf-8"), f"embedded corpus {name}")
        corpus = Corpus(name, f"separ-eval embedded:{name}", docs)
    elif name in HUB:
        corpus = _load_hub(name, HUB[name])
    elif os.path.exists(name):
        corpus = _load_local(Path(name))
    else:
        raise CorpusError(
            f"Unknown corpus {name!r}: not one of {sorted(available())} and no such file or directory. "
            "Give a .jsonl (one {'text': ...} per line), a .txt, or a directory of text files."
        )
    if not any(doc.strip() for doc in corpus.documents):
        raise CorpusError(f"Corpus {name!r} ({corpus.source}) is empty: it holds no text.")
    return corpus


def _read_jsonl(lines, where: str) -> list[str]:
    docs = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise CorpusError(f"{where}, line {number}: not JSON ({error.msg}).") from error
        text = next((record[f] for f in TEXT_FIELDS if isinstance(record, dict) and f in record), None)
        if not isinstance(text, str):
            raise CorpusError(f"{where}, line {number}: no text field (expected one of {TEXT_FIELDS}).")
        docs.append(text)
    return docs


def _read_file(path: Path) -> list[str]:
    if path.name.endswith((".jsonl", ".jsonl.gz")):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as lines:
            return _read_jsonl(lines, str(path))
    return [path.read_text(encoding="utf-8", errors="replace")]


def _load_local(path: Path) -> Corpus:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(LOCAL_SUFFIXES))
        docs = [doc for f in files for doc in _read_file(f)]
    else:
        docs = _read_file(path)
    return Corpus(path.name, f"local:{path.resolve()}", docs)


def _load_hub(name: str, spec: HubCorpus) -> Corpus:
    import datasets

    try:
        stream = datasets.load_dataset(spec.path, spec.name, split="train", streaming=True)
    except Exception as error:  # offline, gated, renamed...
        raise CorpusError(
            f"Could not stream hub corpus {name!r} ({spec.path}): {error}. Offline, use the embedded "
            f"corpora {EMBEDDED} or a local file."
        ) from error
    docs = []
    for record in stream:
        if spec.exclude and (record.get("meta") or {}).get(spec.exclude[0]) == spec.exclude[1]:
            continue
        docs.append(record[spec.text_field])
        if len(docs) >= spec.max_documents:
            break
    return Corpus(name, f"hub:{spec.path}" + (f"/{spec.name}" if spec.name else ""), docs)


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
