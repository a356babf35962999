"""Load models by hub id, local folder or embedded alias; refuse what is not a causal decoder."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from . import embedded
from .embedded import EMBEDDED_MODELS, ModelLoadError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def recorded_id(name: str, model_id: str | None = None) -> str:
    """The id a model is recorded under in results, known before loading it: `model_id` if given, an embedded
    model's own id, a local checkpoint folder's name (never its absolute path), or the hub id as given."""
    if model_id:
        return model_id
    if name in EMBEDDED_MODELS:
        return EMBEDDED_MODELS[name].id
    if os.path.isdir(name):
        return Path(name).resolve().name
    return name


def resolve(name: str) -> str:
    """A path or hub id that `from_pretrained` accepts; embedded aliases are converted once and cached."""
    return embedded.resolve(name) if name in EMBEDDED_MODELS else name


def _not_found(name: str, error: Exception) -> ModelLoadError:
    return ModelLoadError(
        f"Could not load {name!r}: {error}. Give a local directory, a hub id reachable from this machine, "
        f"or the embedded alias {sorted(EMBEDDED_MODELS)}."
    )


def load_config(name: str, path: str, *, revision: str | None = None, trust_remote_code: bool = False):
    """The model's config alone (no weights): enough to refuse a model before any work."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(path, revision=revision, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise _not_found(name, error) from error


def check_causal_decoder(config, name: str) -> None:
    """Refuse what selective pruning cannot measure: next-token accuracy means something only for a causal
    (decoder-only) language model."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    family = getattr(config, "model_type", None) or type(config).__name__
    architectures = ", ".join(getattr(config, "architectures", None) or []) or "no architecture named"
    remote_causal = "AutoModelForCausalLM" in (getattr(config, "auto_map", None) or {})
    if getattr(config, "is_encoder_decoder", False):
        why = "it is an encoder-decoder model (is_encoder_decoder is true)"
    elif family in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(config, "is_decoder", False):
        why = "it is a bidirectional encoder (is_decoder is false): every position sees the token it would predict"
    elif family not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and not remote_causal:
        why = "transformers has no causal language-model head for it"
    else:
        return
    raise ModelLoadError(
        f"{name} is a {family} model ({architectures}), not a causal decoder: {why}. separ-eval measures "
        "next-token prediction; give a decoder-only language model (e.g. Llama, Qwen2, Gemma, GPT-2, OPT)."
    )


@dataclass
class ModelInfo:
    id: str
    path: str
    revision: str | None
    family: str
    n_params: int
    dtype: str

    def as_dict(self) -> dict:
        return {"id": self.id, "revision": self.revision, "family": self.family, "n_params": self.n_params, "dtype": self.dtype}


def load(
    name: str,
    *,
    device: str = "cpu",
    dtype: str = "float32",
    revision: str | None = None,
    trust_remote_code: bool = False,
    device_map: str | dict | None = None,
    max_memory: dict | None = None,
    offload_folder: str | os.PathLike | None = None,
    model_id: str | None = None,
):
    """(model, tokenizer, info) in eval mode on `device`, or sharded by accelerate when `device_map` is given
    (e.g. "auto" with `max_memory={0: "20GiB", "cpu": "60GiB"}`): hooks and baked masks work on every shard.
    What fits nowhere is offloaded to `offload_folder` on disk."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if dtype not in DTYPES:
        raise ModelLoadError(f"Unknown dtype {dtype!r}; choose one of {sorted(DTYPES)}.")
    path = resolve(name)
    check_causal_decoder(load_config(name, path, revision=revision, trust_remote_code=trust_remote_code), name)
    try:
        sharding = {}
        if device_map is not None:
            sharding = {"device_map": device_map, "max_memory": max_memory}
            if offload_folder is not None:
                sharding["offload_folder"] = str(offload_folder)
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=DTYPES[dtype], revision=revision, trust_remote_code=trust_remote_code, **sharding
        )
        tokenizer = AutoTokenizer.from_pretrained(path, revision=revision, trust_remote_code=trust_remote_code)
    except OSError as error:
        raise _not_found(name, error) from error
    if device_map is None:
        model.to(device)
    model.eval()
    info = ModelInfo(
        id=recorded_id(name, model_id),
        path=path,
        revision=revision,
        family=model.config.model_type,
        n_params=sum(p.numel() for p in model.parameters()),
        dtype=dtype,
    )
    return model, tokenizer, info
