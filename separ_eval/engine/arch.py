"""Find, in any Hugging Face decoder, the two projections whose inputs are the pruned units.

Architecture differences are data, not branches: decoder blocks are found
generically (the model's `_no_split_modules` / its longest ModuleList), and the
two output projections by their *role* — the MLP projection is the only linear
map outside attention that writes back to the residual stream; the attention
projection is the one named like an output projection inside the attention
module. `OVERRIDES` takes the odd family that breaks those rules.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import SeparEvalError

try:  # GPT-2 style models store projections as Conv1D (weight is in x out).
    from transformers.pytorch_utils import Conv1D
except ImportError:  # pragma: no cover - very old transformers
    Conv1D = ()  # type: ignore[assignment]

UNIT_TYPES = ("ff", "attn")

# Last path component of an attention output projection, across families:
# o_proj (Llama, Mistral, Qwen, Gemma, Phi-3), out_proj (OPT, GPT-J, GPT-Neo),
# c_proj (GPT-2), dense (GPT-NeoX, Phi), wo (T5-style decoders).
ATTN_OUT_NAMES = ("o_proj", "out_proj", "c_proj", "dense", "wo")

# family (config.model_type) -> {"layers": path, "ff": path in layer, "attn": path in layer,
# "d_model": int, "n_heads": int}; every key optional.
# Only for models the generic rules get wrong; add yours here.
OVERRIDES: dict[str, dict[str, str]] = {}


class ArchitectureError(SeparEvalError, ValueError):
    """The model could not be mapped; the message says what is missing and how to override."""


@dataclass
class LayerProjections:
    index: int
    ff_out: nn.Module  # input = feed-forward neurons
    attn_out: nn.Module  # input = concatenated per-head value outputs


@dataclass
class ModelMap:
    family: str
    layers: list[LayerProjections]
    d_model: int
    d_mlp: int
    n_heads: int
    d_head: int

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def width(self, unit: str) -> int:
        return self.d_mlp if unit == "ff" else self.n_heads * self.d_head

    def projection(self, unit: str, layer: int) -> nn.Module:
        return self.layers[layer].ff_out if unit == "ff" else self.layers[layer].attn_out

    def shapes(self) -> dict[str, tuple[int, int]]:
        return {u: (self.n_layers, self.width(u)) for u in UNIT_TYPES}


def is_projection(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or (bool(Conv1D) and isinstance(module, Conv1D))


def in_out_features(module: nn.Module) -> tuple[int, int]:
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    return module.weight.shape[0], module.weight.shape[1]  # Conv1D: (in, out)


def _config_value(config, *names):
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    return None


def text_config(model: nn.Module):
    config = model.config
    get_text = getattr(config, "get_text_config", None)
    return get_text() if callable(get_text) else config


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder blocks: the ModuleList of `_no_split_modules` blocks, else the longest ModuleList."""
    family = getattr(model.config, "model_type", "?")
    override = OVERRIDES.get(family, {}).get("layers")
    if override:
        return model.get_submodule(override)
    # `_no_split_modules` is how transformers names a model's blocks for accelerate (no public accessor).
    block_names = set(getattr(model, "_no_split_modules", None) or [])
    candidates = []
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > 0:
            is_blocks = type(module[0]).__name__ in block_names
            candidates.append((is_blocks, len(module), name, module))
    if not candidates:
        raise ArchitectureError(
            f"No decoder layer list found in {type(model).__name__} (family {family!r}). "
            f"Add OVERRIDES[{family!r}] = {{'layers': '<path.to.layers>', 'ff': ..., 'attn': ...}} in separ_eval.arch."
        )
    candidates.sort(key=lambda c: (c[0], c[1]), reverse=True)
    return candidates[0][3]


def _attention_prefixes(layer: nn.Module) -> list[str]:
    return [
        name
        for name, module in layer.named_modules()
        if name and "attention" in type(module).__name__.lower()
    ]


def _find_projections(layer: nn.Module, d_model: int, family: str, index: int) -> LayerProjections:
    override = OVERRIDES.get(family, {})
    attn_prefixes = _attention_prefixes(layer)

    def inside_attention(name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in attn_prefixes)

    projections = [(n, m) for n, m in layer.named_modules() if is_projection(m)]

    if "attn" in override:
        attn_out = layer.get_submodule(override["attn"])
    else:
        attn = [
            (n, m)
            for n, m in projections
            if inside_attention(n) and n.rsplit(".", 1)[-1] in ATTN_OUT_NAMES and in_out_features(m)[1] == d_model
        ]
        if len(attn) != 1:
            found = [n for n, _ in projections]
            raise ArchitectureError(
                f"Layer {index} of family {family!r}: expected one attention output projection "
                f"(named one of {ATTN_OUT_NAMES}, inside a module whose class name contains 'Attention', "
                f"writing {d_model} features), found {[n for n, _ in attn]} among {found}. "
                f"Fix: OVERRIDES[{family!r}] = {{'attn': '<path in layer>'}} in separ_eval.arch."
            )
        attn_out = attn[0][1]

    if "ff" in override:
        ff_out = layer.get_submodule(override["ff"])
    else:
        ff = [(n, m) for n, m in projections if not inside_attention(n) and in_out_features(m)[1] == d_model]
        if len(ff) != 1:
            raise ArchitectureError(
                f"Layer {index} of family {family!r}: expected one MLP output projection "
                f"(a linear map outside attention writing {d_model} features), found {[n for n, _ in ff]}. "
                f"Mixture-of-experts MLPs are not supported. "
                f"Fix: OVERRIDES[{family!r}] = {{'ff': '<path in layer>'}} in separ_eval.arch."
            )
        ff_out = ff[0][1]
    return LayerProjections(index=index, ff_out=ff_out, attn_out=attn_out)


def map_model(model: nn.Module) -> ModelMap:
    """Map every decoder layer of `model` to its two output projections, and read the unit widths."""
    config = text_config(model)
    family = getattr(model.config, "model_type", type(model).__name__)
    override = OVERRIDES.get(family, {})
    d_model = override.get("d_model") or _config_value(config, "hidden_size", "n_embd", "d_model")
    n_heads = override.get("n_heads") or _config_value(config, "num_attention_heads", "n_head", "num_heads")
    if d_model is None or n_heads is None:
        raise ArchitectureError(
            f"Config of family {family!r} has no hidden size / attention head count "
            "(looked for hidden_size, n_embd, d_model / num_attention_heads, n_head, num_heads): "
            "selective pruning needs decoder layers with attention and an MLP. If this model has them, add "
            f"OVERRIDES[{family!r}] = {{'d_model': ..., 'n_heads': ..., 'layers': ..., 'ff': ..., 'attn': ...}} "
            "in separ_eval.arch."
        )
    layers = decoder_layers(model)
    mapped = [_find_projections(layer, d_model, family, i) for i, layer in enumerate(layers)]
    d_mlp = in_out_features(mapped[0].ff_out)[0]
    d_attn = in_out_features(mapped[0].attn_out)[0]
    if d_attn % n_heads:
        raise ArchitectureError(f"Attention width {d_attn} of family {family!r} is not a multiple of {n_heads} heads.")
    for lp in mapped:
        if in_out_features(lp.ff_out)[0] != d_mlp or in_out_features(lp.attn_out)[0] != d_attn:
            raise ArchitectureError(f"Layer {lp.index} of family {family!r} has widths that differ from layer 0.")
    return ModelMap(family=family, layers=mapped, d_model=d_model, d_mlp=d_mlp, n_heads=n_heads, d_head=d_attn // n_heads)


def input_device(model) -> torch.device:
    """Where input ids go: the embedding's execution device under accelerate sharding (its weights may be
    offloaded to meta/disk), else the device of the model's parameters."""
    # accelerate keeps a module's execution device on its hook only (no public accessor).
    hook = getattr(model.get_input_embeddings(), "_hf_hook", None)
    if getattr(hook, "execution_device", None) is not None:
        return torch.device(hook.execution_device)
    device = next(model.parameters()).device
    return torch.device("cpu") if device.type == "meta" else device


def base_model(model: nn.Module) -> nn.Module:
    """The decoder without the LM head: statistics passes need hidden states, not logits."""
    base = getattr(model, "base_model", None)
    return base if isinstance(base, nn.Module) and base is not model else model


def lm_head_logits(model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """Logits from final hidden states, as the model's own forward computes them (incl. soft-capping)."""
    logits = model.get_output_embeddings()(hidden)
    cap = getattr(text_config(model), "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits
