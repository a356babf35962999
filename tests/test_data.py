"""Corpora, the train/test split, packing and the frequent-token set."""

import gzip
import json
import random

import pytest
import torch

from separ_eval import data


def test_embedded_corpora_split_deterministically_without_overlap():
    for name in ("code", "prose"):
        corpus = data.load_corpus(name)
        train, test = corpus.split("train"), corpus.split("test")
        assert len(train) + len(test) == len(corpus.documents)
        assert 0.05 < len(test) / len(corpus.documents) < 0.15
        assert not set(train) & set(test)
        assert len(corpus.sha256) == 64
    assert "def " in "".join(data.load_corpus("code").split("test")[:20])
    assert data.load_corpus("general").name == "prose"


def test_split_depends_on_the_document_not_its_position():
    docs = [f"document number {i}" for i in range(200)]
    forward = data.Corpus("a", "x", docs).split("test")
    backward = data.Corpus("b", "x", list(reversed(docs))).split("test")
    assert sorted(forward) == sorted(backward) and forward


def _window_texts(tokenizer, blocks, documents):
    """Each layout entry's tokens as the block holds them, and as the document holds them at that offset."""
    by_id = {data.document_id(doc): doc for doc in documents}
    held, expected = [], []
    for b, entries in enumerate(blocks.layout):
        row = blocks.input_ids[b][blocks.units[b] >= 0].tolist()
        at = 0
        for entry in entries:
            held.append(row[at : at + entry["tokens"]])
            ids = tokenizer(by_id[entry["document"]], add_special_tokens=False)["input_ids"]
            expected.append(ids[entry["offset"] : entry["offset"] + entry["tokens"]])
            at += entry["tokens"]
    return held, expected


def test_pack_draws_windows_from_many_documents_and_records_where_they_came_from(tiny_tokenizer):
    docs = data.load_corpus("prose").split("train")
    blocks = data.pack(tiny_tokenizer, docs, n_tokens=1000, block_len=64, window=32)
    assert int((blocks.units >= 0).sum()) == 1000  # the budget counts document tokens, not separators or padding
    assert len(blocks.documents) == len(set(blocks.documents)) == 32  # ceil(1000 / 32) windows, one document each
    held, expected = _window_texts(tiny_tokenizer, blocks, docs)
    assert held == expected and sum(map(len, held)) == 1000  # every window is the document's text at its offset
    offsets = {e["offset"] for entries in blocks.layout for e in entries}
    assert len(offsets) > 5  # windows start inside documents, not only at their beginning
    assert int(blocks.attention_mask[-1].sum()) < 64 and bool((blocks.units[blocks.attention_mask == 0] == -1).all())


def test_blocks_do_not_depend_on_document_order(tiny_tokenizer):
    docs = data.load_corpus("code").split("test")
    shuffled = list(docs)
    random.Random(3).shuffle(shuffled)
    first = data.pack(tiny_tokenizer, docs, n_tokens=2000, block_len=128, window=64)
    second = data.pack(tiny_tokenizer, shuffled, n_tokens=2000, block_len=128, window=64)
    assert torch.equal(first.input_ids, second.input_ids) and torch.equal(first.units, second.units)
    assert first.documents == second.documents and first.layout == second.layout
    other_seed = data.pack(tiny_tokenizer, docs, n_tokens=2000, block_len=128, window=64, seed=1)
    assert set(other_seed.documents) != set(first.documents)


def test_no_document_gives_a_second_window_before_all_gave_one(tiny_tokenizer):
    docs = data.load_corpus("code").split("test")[:6]  # a few long documents
    lengths = {data.document_id(d): len(tiny_tokenizer(d, add_special_tokens=False)["input_ids"]) for d in docs}
    budget = 6 * 16 + 20  # one pass of 16-token windows, and a little more
    blocks = data.pack(tiny_tokenizer, docs, n_tokens=budget, block_len=512, window=16)
    windows = [e["document"] for entries in blocks.layout for e in entries]
    assert set(windows[:6]) == set(lengths) and len(set(windows[6:])) == len(windows[6:])  # pass 1, then pass 2
    held, expected = _window_texts(tiny_tokenizer, blocks, docs)
    assert held == expected
    spans = {}
    for entries in blocks.layout:
        for e in entries:
            spans.setdefault(e["document"], []).append((e["offset"], e["offset"] + e["tokens"]))
    for intervals in spans.values():  # a document's windows never overlap
        intervals.sort()
        assert all(a[1] <= b[0] for a, b in zip(intervals, intervals[1:]))


def test_targets_skip_separators_and_window_starts(tiny_tokenizer):
    docs = data.load_corpus("prose").split("train")[:40]
    blocks = data.pack(tiny_tokenizer, docs, n_tokens=300, block_len=128, window=50)
    scored, unit = blocks.targets(0, len(blocks))
    units = blocks.units
    # a target counts only when it and its context hold the same document's text
    assert bool((scored == ((units[:, :-1] == units[:, 1:]) & (units[:, 1:] >= 0))).all())
    assert int(scored.sum()) == 300 - sum(len(entries) for entries in blocks.layout)  # each window piece's first token
    assert bool((unit[scored] == units[:, 1:][scored]).all())


def test_default_budget_reaches_twenty_documents_per_side(tiny_tokenizer):
    from separ_eval.engine.method import Method

    for name in ("code", "prose"):
        blocks = data.CorpusBlocks.prepare(data.load_corpus(name), tiny_tokenizer, Method().budget)
        identity = blocks.identity()
        assert identity["collect_documents"] >= 20 and identity["eval_documents"] >= 20, (name, identity)


def test_frequent_tokens_are_the_most_common(tiny_tokenizer):
    docs = ["aaaa bbbb aaaa cccc aaaa"] * 10
    top = data.frequent_tokens(tiny_tokenizer, docs, k=2)
    stream = torch.tensor(data.token_stream(tiny_tokenizer, docs))
    counts = torch.bincount(stream)
    assert set(top.tolist()) == set(torch.topk(counts, 2).indices.tolist())


def test_local_corpora_jsonl_txt_and_directory(tmp_path):
    (tmp_path / "c.jsonl").write_text(json.dumps({"text": "one"}) + "\n" + json.dumps({"content": "two"}) + "\n")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_text("alpha")
    (tmp_path / "d" / "b.py").write_text("print(1)")
    with gzip.open(tmp_path / "e.jsonl.gz", "wt") as handle:
        handle.write(json.dumps({"code": "x = 1"}) + "\n")
    assert data.load_corpus(str(tmp_path / "c.jsonl")).documents == ["one", "two"]
    assert data.load_corpus(str(tmp_path / "d")).documents == ["alpha", "print(1)"]
    assert data.load_corpus(str(tmp_path / "e.jsonl.gz")).documents == ["x = 1"]


def test_bad_corpora_get_actionable_errors(tmp_path, tiny_tokenizer):
    (tmp_path / "empty.jsonl").write_text(json.dumps({"text": "  "}) + "\n")
    with pytest.raises(data.CorpusError, match="is empty"):
        data.load_corpus(str(tmp_path / "empty.jsonl"))
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(data.CorpusError, match="line 1: not JSON"):
        data.load_corpus(str(tmp_path / "bad.jsonl"))
    with pytest.raises(data.CorpusError, match="Unknown corpus 'nowhere'"):
        data.load_corpus("nowhere")
    with pytest.raises(data.CorpusError, match="only 9 tokens in distinct windows but 100000 were requested"):
        data.pack(tiny_tokenizer, ["a short text"], n_tokens=100000, block_len=64)


def test_a_dataset_with_named_splits_is_used_as_given(tmp_path):
    """{hub: ..., train: SPLIT, test: SPLIT}: the datasets library's own splits (here a local dataset folder)."""
    folder = tmp_path / "my-dataset"
    folder.mkdir()
    (folder / "train.jsonl").write_text("".join(json.dumps({"body": f"train document {i}"}) + "\n" for i in range(5)))
    (folder / "validation.jsonl").write_text("".join(json.dumps({"body": f"held out {i}"}) + "\n" for i in range(3)))
    corpus = data.load_corpus({"hub": str(folder), "text_field": "body", "train": "train", "test": "validation"})
    assert corpus.split("train") == [f"train document {i}" for i in range(5)]
    assert corpus.split("test") == [f"held out {i}" for i in range(3)]
    assert corpus.source == "hub:my-dataset [train, validation]" and str(tmp_path) not in corpus.source
    with pytest.raises(data.CorpusError, match="split 'nope'"):
        data.load_corpus({"hub": str(folder), "text_field": "body", "train": "train", "test": "nope"})
