"""Corpora: named, hub or local text collections, and their train / test splits.

A corpus is either one collection, split 90/10 by a hash of each document's text (so
the split depends neither on document order nor on which other documents it holds),
or given with its own splits, used as given: `{train: FILE, test: FILE}`, a folder
holding `train/` and `test/`, or a hub dataset with named splits
(`{hub: org/name, train: train, test: validation}`). Statistics use the train split,
metrics the test split. A corpus is recorded by name (local ones by file name, never
an absolute path) and by the hash of its set of documents.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import jsonlines

from ..errors import SeparEvalError

TEST_PERMILLE = 100  # 10% of documents are held out for evaluation
LOCAL_SUFFIXES = (".txt", ".md", ".py", ".rst", ".jsonl", ".json", ".gz")
TEXT_FIELDS = ("text", "content", "code")
SPLITS = ("train", "test")


class CorpusError(SeparEvalError, ValueError):
    pass


@dataclass(frozen=True)
class HubCorpus:
    """A corpus streamed from the Hugging Face hub (needs network; not used offline)."""

    path: str
    name: str | None
    text_field: str
    exclude: tuple[str, str] | None = None  # (meta key, value) to drop, e.g. Pile's Github subset
    max_documents: int = 20000
    splits: tuple[str, str] | None = None  # (train split, test split) to use as given; None: hash-split "train"


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
    splits: dict[str, list[str]] | None = None  # given train / test documents; None: the hash split

    @property
    def sha256(self) -> str:
        """The hash of the set of documents (and of the given splits): file order does not change it."""
        digest = hashlib.sha256()
        for doc_hash in sorted(hashlib.sha256(doc.encode()).digest() for doc in self.documents):
            digest.update(doc_hash)
        if self.splits is not None:
            digest.update(hashlib.sha256("".join(sorted(self.splits["test"])).encode()).digest())
        return digest.hexdigest()

    def split(self, which: str) -> list[str]:
        """'train' or 'test' documents: the given split, or chosen by a hash of each document's text."""
        if which not in SPLITS:
            raise ValueError(f"split must be 'train' or 'test', not {which!r}")
        if self.splits is not None:
            return self.splits[which]
        want_test = which == "test"
        return [d for d in self.documents if _is_test(d) == want_test]

    def identity(self) -> dict:
        split = "given" if self.splits is not None else f"hash {1000 - TEST_PERMILLE}/{TEST_PERMILLE} permille"
        return {"source": self.source, "sha256": self.sha256, "documents": len(self.documents), "split": split}


def _is_test(document: str) -> bool:
    return int.from_bytes(hashlib.sha256(document.encode()).digest()[:4], "big") % 1000 < TEST_PERMILLE


def available() -> dict[str, str]:
    """Corpus names and where they come from."""
    listing = {name: "embedded (offline)" for name in EMBEDDED_CORPORA}
    listing.update({name: f"hub: {spec.path}" for name, spec in HUB.items()})
    return listing


def corpus_label(spec) -> str:
    """How a corpus is named in results: embedded and hub names as they are, local paths by file name."""
    if isinstance(spec, Mapping):
        if "hub" in spec:
            hub = str(spec["hub"])
            return f"hub:{Path(hub).name if os.path.isdir(hub) else hub}"
        return ",".join(f"{split}={Path(str(spec[split])).name}" for split in SPLITS if split in spec)
    spec = str(spec)
    if spec in EMBEDDED_CORPORA or spec in HUB or spec in ALIASES:
        return ALIASES.get(spec, spec)
    return Path(spec).name or spec


def _freeze(spec):
    return tuple(sorted((str(k), v) for k, v in spec.items())) if isinstance(spec, Mapping) else str(spec)


def load_corpus(spec) -> Corpus:
    """An embedded corpus, a hub corpus, a local file or folder, or a {train: ..., test: ...} mapping."""
    return _load(_freeze(spec))


@lru_cache(maxsize=8)
def _load(spec) -> Corpus:
    corpus = _load_splits(dict(spec)) if isinstance(spec, tuple) else _load_named(spec)
    if not any(doc.strip() for doc in corpus.documents):
        raise CorpusError(f"Corpus {corpus.name!r} ({corpus.source}) is empty: it holds no text.")
    for split in SPLITS if corpus.splits is not None else ():
        if not any(doc.strip() for doc in corpus.splits[split]):
            raise CorpusError(f"Corpus {corpus.name!r} ({corpus.source}): its {split} split holds no text.")
    return corpus


def _load_named(name: str) -> Corpus:
    name = ALIASES.get(name, name)
    if name in EMBEDDED_CORPORA:
        with resources.files("separ_eval").joinpath("corpora", f"{name}.jsonl.gz").open("rb") as raw:
            docs = _read_jsonl(gzip.open(raw, "rt", encoding="utf-8"), f"embedded corpus {name}")
        return Corpus(name, f"separ-eval embedded:{name}", docs)
    if name in HUB:
        return _load_hub(name, HUB[name])
    if os.path.exists(name):
        return _load_local(Path(name))
    raise CorpusError(
        f"Unknown corpus {name!r}: not one of {sorted(available())} and no such file or directory. "
        "Give a .jsonl (one {'text': ...} per line), a .txt, a directory of text files, or {train: FILE, test: FILE}."
    )


def _load_splits(spec: dict) -> Corpus:
    """{train: FILE, test: FILE}, or {hub: path, name: ..., text_field: ..., train: split, test: split}."""
    if "hub" in spec:
        hub = HubCorpus(str(spec["hub"]), spec.get("name"), str(spec.get("text_field", "text")),
                        max_documents=int(spec.get("max_documents", 20000)),
                        splits=(str(spec.get("train", "train")), str(spec.get("test", "test"))))
        return _load_hub(corpus_label(spec), hub)
    missing = [split for split in SPLITS if not spec.get(split)]
    if missing or set(spec) - set(SPLITS):
        raise CorpusError(f"A corpus with its own splits needs exactly `train` and `test` files (or `hub` and split "
                          f"names), got keys {sorted(spec)}.")
    parts = {}
    for split in SPLITS:
        path = Path(str(spec[split]))
        if not path.exists():
            raise CorpusError(f"The {split} split {path} does not exist: give a .jsonl, .txt or a folder of text files.")
        parts[split] = _read_path(path)
    label = corpus_label(spec)
    return Corpus(label, f"local:{label}", parts["train"] + parts["test"], parts)


def _read_jsonl(lines, where: str) -> list[str]:
    """The text of every record of a JSON Lines stream (blank lines skipped); errors name the line."""
    docs = []
    reader = jsonlines.Reader(lines)
    try:
        for number, record in enumerate(reader.iter(skip_empty=True, allow_none=True), 1):
            text = next((record[f] for f in TEXT_FIELDS if isinstance(record, dict) and f in record), None)
            if not isinstance(text, str):
                raise CorpusError(f"{where}, record {number}: no text field (expected one of {TEXT_FIELDS}).")
            docs.append(text)
    except jsonlines.InvalidLineError as error:
        reason = error.__cause__ or error
        raise CorpusError(f"{where}, line {error.lineno}: not JSON ({reason}).") from None
    return docs


def _read_file(path: Path) -> list[str]:
    if path.name.endswith((".jsonl", ".jsonl.gz")):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as lines:
            return _read_jsonl(lines, path.name)
    return [path.read_text(encoding="utf-8", errors="replace")]


def _read_path(path: Path) -> list[str]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(LOCAL_SUFFIXES))
        return [doc for f in files for doc in _read_file(f)]
    return _read_file(path)


def _load_local(path: Path) -> Corpus:
    if path.is_dir() and all((path / split).is_dir() for split in SPLITS):  # a folder with its own splits
        parts = {split: _read_path(path / split) for split in SPLITS}
        return Corpus(path.name, f"local:{path.name} (train/, test/)", parts["train"] + parts["test"], parts)
    return Corpus(path.name, f"local:{path.name}", _read_path(path))


def _stream(spec: HubCorpus, split: str) -> list[str]:
    import datasets

    try:
        stream = datasets.load_dataset(spec.path, spec.name, split=split, streaming=True)
    except Exception as error:  # offline, gated, renamed, no such split...
        raise CorpusError(
            f"Could not stream hub corpus {spec.path!r} (split {split!r}): {error}. Offline, use the embedded "
            f"corpora {EMBEDDED_CORPORA} or local files."
        ) from error
    docs = []
    for record in stream:
        if spec.exclude and (record.get("meta") or {}).get(spec.exclude[0]) == spec.exclude[1]:
            continue
        docs.append(record[spec.text_field])
        if len(docs) >= spec.max_documents:
            break
    return docs


def _load_hub(name: str, spec: HubCorpus) -> Corpus:
    where = Path(spec.path).name if os.path.isdir(spec.path) else spec.path  # a local dataset folder: its name
    source = f"hub:{where}" + (f"/{spec.name}" if spec.name else "")
    if spec.splits is None:
        return Corpus(name, source, _stream(spec, "train"))
    parts = dict(zip(SPLITS, (_stream(spec, split) for split in spec.splits)))
    return Corpus(name, f"{source} [{spec.splits[0]}, {spec.splits[1]}]", parts["train"] + parts["test"], parts)
