"""Corpora: named or local text collections and a deterministic train/test split.

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


EMBEDDED_CORPORA = ("code", "prose")
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
        """The hash of the set of documents: the same corpus in another file order has the same hash."""
        digest = hashlib.sha256()
        for doc_hash in sorted(hashlib.sha256(doc.encode()).digest() for doc in self.documents):
            digest.update(doc_hash)
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
    listing = {name: "embedded (offline)" for name in EMBEDDED_CORPORA}
    listing.update({name: f"hub: {spec.path}" for name, spec in HUB.items()})
    return listing


@lru_cache(maxsize=8)
def load_corpus(name: str) -> Corpus:
    """An embedded corpus, a hub corpus, or a local file / directory."""
    name = ALIASES.get(name, name)
    if name in EMBEDDED_CORPORA:
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
            f"corpora {EMBEDDED_CORPORA} or a local file."
        ) from error
    docs = []
    for record in stream:
        if spec.exclude and (record.get("meta") or {}).get(spec.exclude[0]) == spec.exclude[1]:
            continue
        docs.append(record[spec.text_field])
        if len(docs) >= spec.max_documents:
            break
    return Corpus(name, f"hub:{spec.path}" + (f"/{spec.name}" if spec.name else ""), docs)
