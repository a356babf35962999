"""Tiny random models of every supported family and a small offline tokenizer, for tests and smoke runs."""

from __future__ import annotations

import os
from pathlib import Path

import torch

VOCAB = 384
HIDDEN, HEADS, KV_HEADS, LAYERS, MLP = 64, 4, 2, 2, 96

# family -> (config class name, extra config kwargs); widths are read back through arch.map_model.
FAMILIES: dict[str, tuple[str, dict]] = {
    "opt": ("OPTConfig", dict(hidden_size=HIDDEN, num_attention_heads=HEADS, num_hidden_layers=LAYERS,
                              ffn_dim=MLP, word_embed_proj_dim=HIDDEN, max_position_embeddings=256)),
    "gpt2": ("GPT2Config", dict(n_embd=HIDDEN, n_head=HEADS, n_layer=LAYERS, n_inner=MLP, n_positions=256)),
    "gpt_neox": ("GPTNeoXConfig", dict(hidden_size=HIDDEN, num_attention_heads=HEADS, num_hidden_layers=LAYERS,
                                       intermediate_size=MLP, max_position_embeddings=256)),
    "gptj": ("GPTJConfig", dict(n_embd=HIDDEN, n_head=HEADS, n_layer=LAYERS, n_inner=MLP, rotary_dim=8,
                                n_positions=256)),
    "gpt_neo": ("GPTNeoConfig", dict(hidden_size=HIDDEN, num_heads=HEADS, num_layers=LAYERS, intermediate_size=MLP,
                                     attention_types=[[["global", "local"], 1]], window_size=16,
                                     max_position_embeddings=256)),
    "llama": ("LlamaConfig", dict(hidden_size=HIDDEN, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
                                  num_hidden_layers=LAYERS, intermediate_size=MLP)),
    "mistral": ("MistralConfig", dict(hidden_size=HIDDEN, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
                                      num_hidden_layers=LAYERS, intermediate_size=MLP)),
    "qwen2": ("Qwen2Config", dict(hidden_size=HIDDEN, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
                                  num_hidden_layers=LAYERS, intermediate_size=MLP)),
    "qwen3": ("Qwen3Config", dict(hidden_size=HIDDEN, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
                                  num_hidden_layers=LAYERS, intermediate_size=MLP, head_dim=16)),
    "gemma": ("GemmaConfig", dict(hidden_size=HIDDEN, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
                                  num_hidden_layers=LAYERS, intermediate_size=MLP, head_dim=32)),
    "gemma2": ("Gemma2Config", dict(hidden_size=HIDDEN, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
                                    num_hidden_layers=LAYERS, intermediate_size=MLP, head_dim=32,
                                    sliding_window=16, final_logit_softcapping=30.0)),
    "gemma3_text": ("Gemma3TextConfig", dict(hidden_size=HIDDEN, num_attention_heads=HEADS,
                                             num_key_value_heads=KV_HEADS, num_hidden_layers=LAYERS,
                                             intermediate_size=MLP, head_dim=32, sliding_window=16)),
    "phi": ("PhiConfig", dict(hidden_size=HIDDEN, num_attention_heads=HEADS, num_hidden_layers=LAYERS,
                              intermediate_size=MLP, max_position_embeddings=256)),
    "phi3": ("Phi3Config", dict(hidden_size=HIDDEN, num_attention_heads=HEADS, num_key_value_heads=KV_HEADS,
                                num_hidden_layers=LAYERS, intermediate_size=MLP, max_position_embeddings=256,
                                pad_token_id=0)),
}

SPECIAL = {"bos": 1, "eos": 2, "pad": 0}


def tiny_config(family: str):
    import transformers

    class_name, kwargs = FAMILIES[family]
    config = getattr(transformers, class_name)(vocab_size=VOCAB, **kwargs)
    for name, token_id in (("bos_token_id", SPECIAL["bos"]), ("eos_token_id", SPECIAL["eos"]), ("pad_token_id", SPECIAL["pad"])):
        setattr(config, name, token_id)
    return config


def tiny_model(family: str = "llama", seed: int = 0, dtype=torch.float32):
    """A random model of `family`; activations are made non-degenerate by scaling up the init."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(family), dtype=dtype)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() >= 2:  # random init std 0.02 gives near-linear, tiny activations
                param.normal_(0.0, 0.15)
    return model.eval()


def tiny_tokenizer():
    """A byte-level BPE tokenizer trained on a few KB of the embedded corpora: offline and deterministic."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from .data import load_corpus

    sample = [doc[:2000] for name in ("code", "prose") for doc in load_corpus(name).documents[:40]]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(sample, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", bos_token="<s>", eos_token="</s>")


def save_tiny(directory: str | os.PathLike, family: str = "llama", seed: int = 0) -> Path:
    """A tiny model + tokenizer as an ordinary local checkpoint directory."""
    directory = Path(directory)
    tiny_model(family, seed).save_pretrained(directory)
    tiny_tokenizer().save_pretrained(directory)
    return directory


def make_tiny_setup(root: Path) -> dict:
    """A tiny llama checkpoint and a `tiny` target over small local slices of the embedded corpora."""
    import json

    from . import data

    model_dir = save_tiny(root / "m", "llama")
    targets = root / "targets"
    targets.mkdir()
    for name in ("code", "prose"):
        docs = data.load_corpus(name).documents[:120]
        with open(root / f"{name}.jsonl", "w", encoding="utf-8") as handle:
            for doc in docs:
                handle.write(json.dumps({"text": doc[:2500]}) + "\n")
    (targets / "tiny.yaml").write_text(
        f"target: tiny\nforget: {{corpus: {root / 'code.jsonl'}, tasks: []}}\n"
        f"retain: {{corpus: {root / 'prose.jsonl'}, tasks: []}}\n"
    )
    return {"model": str(model_dir), "include": str(targets), "root": root}
