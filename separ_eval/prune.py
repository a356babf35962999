"""Selection of the units to prune, and their removal baked into the weights.

Masks are neuron-level booleans per unit type, shape (n_layers, width); pruning
whole heads sets all `d_head` neurons of a head. Removal zeroes the matching
input columns of the output projection (rows of GPT-2's Conv1D), so a pruned
model is an ordinary checkpoint. The optional mean offset keeps the retain mean
of a removed unit by adding `W[:, u] * mean_R[u]` to the projection's bias.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .arch import UNIT_TYPES, ModelMap
from .paths import atomic_write

MASKS_FORMAT = "separ-eval/masks/v1"
OFFSETS = ("zero", "mean")


class MaskError(ValueError):
    pass


def check_fraction(name: str, value: float) -> float:
    if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a fraction in [0, 1], got {value!r}.")
    return float(value)


def select(scores: torch.Tensor, already: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean mask of the `k` highest-scoring units over all layers, never one already pruned."""
    if k <= 0:
        return torch.zeros_like(already)
    available = int((~already).sum())
    k = min(k, available)
    ranked = scores.double().masked_fill(already, float("-inf")).flatten()
    chosen = torch.zeros(ranked.numel(), dtype=torch.bool)
    # stable tie-break by index keeps runs reproducible
    order = torch.sort(ranked, descending=True, stable=True).indices[:k]
    chosen[order] = True
    return chosen.reshape(already.shape)


@dataclass
class Masks:
    """What has been pruned (neuron level) and the offsets folded into the biases."""

    pruned: dict[str, torch.Tensor]  # unit -> bool (n_layers, width)
    offsets: dict[str, torch.Tensor]  # unit -> float32 (n_layers, width): mean used for the bias offset (0 if none)
    meta: dict = field(default_factory=dict)

    @classmethod
    def empty(cls, model_map: ModelMap, meta: dict | None = None) -> "Masks":
        shapes = model_map.shapes()
        return cls(
            pruned={u: torch.zeros(s, dtype=torch.bool) for u, s in shapes.items()},
            offsets={u: torch.zeros(s, dtype=torch.float32) for u, s in shapes.items()},
            meta=dict(meta or {}),
        )

    def fraction(self, unit: str) -> float:
        return self.count(unit) / self.pruned[unit].numel()

    def count(self, unit: str) -> int:
        return int(self.pruned[unit].sum())

    def save(self, directory: str | os.PathLike) -> Path:
        """`masks.safetensors` + `masks.json`, each written atomically."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {}
        for unit in UNIT_TYPES:
            tensors[f"{unit}.pruned"] = self.pruned[unit].to(torch.uint8).contiguous()
            tensors[f"{unit}.offset"] = self.offsets[unit].float().contiguous()
        meta = {"format": MASKS_FORMAT, **self.meta, "pruned": {u: self.fraction(u) for u in UNIT_TYPES}}
        atomic_write(directory / "masks.safetensors", lambda p: save_file(tensors, p))
        atomic_write(directory / "masks.json", lambda p: Path(p).write_text(json.dumps(meta, indent=2)))
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "Masks":
        directory = Path(directory)
        tensors_path, meta_path = directory / "masks.safetensors", directory / "masks.json"
        if not tensors_path.exists() or not meta_path.exists():
            raise MaskError(f"{directory} holds no masks (expected masks.safetensors and masks.json).")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != MASKS_FORMAT:
            raise MaskError(f"{meta_path} is not a separ-eval mask file (format {meta.get('format')!r}).")
        tensors = load_file(str(tensors_path))
        return cls(
            pruned={u: tensors[f"{u}.pruned"].bool() for u in UNIT_TYPES},
            offsets={u: tensors[f"{u}.offset"] for u in UNIT_TYPES},
            meta=meta,
        )

    def check_compatible(self, model_map: ModelMap, signature: list[float] | None = None) -> None:
        """Refuse masks made for another model: other family, other shapes, or other weights."""
        for unit, shape in model_map.shapes().items():
            if tuple(self.pruned[unit].shape) != shape:
                raise MaskError(
                    f"These masks are for {self.meta.get('model', {}).get('id', 'another model')} "
                    f"({unit} shape {tuple(self.pruned[unit].shape)}), not this {model_map.family} model "
                    f"({unit} shape {shape}). Recompute them for this model."
                )
        saved = self.meta.get("model", {}).get("signature")
        if signature is not None and saved is not None:
            if not torch.allclose(torch.tensor(saved), torch.tensor(signature), rtol=2e-2, atol=1e-4):
                raise MaskError(
                    f"These masks were computed on {self.meta.get('model', {}).get('id', 'another model')}, "
                    "whose embedding weights differ from this model's: same architecture, other checkpoint. "
                    "Recompute the masks for this model."
                )


def model_signature(model: nn.Module, n: int = 16) -> list[float]:
    """A few embedding weights at fixed positions: tells checkpoints of one architecture apart (never pruned)."""
    embeddings = model.get_input_embeddings()
    offloaded = _offload_map(embeddings)
    weight = offloaded["weight"] if offloaded is not None else embeddings.weight.detach()
    flat = weight.reshape(-1)
    positions = torch.linspace(0, flat.numel() - 1, n, dtype=torch.float64).long()  # float32 overflows
    return [float(v) for v in flat[positions].float().cpu()]


def _offload_map(module: nn.Module):
    """accelerate's map of the module's real weights when they were offloaded (weights on meta), else None."""
    weights_map = getattr(getattr(module, "_hf_hook", None), "weights_map", None)
    return weights_map if module.weight.device.type == "meta" else None


@contextmanager
def _editable(module: nn.Module):
    """The module itself, or, when accelerate offloaded its weights (meta device), a stand-in holding real
    copies of them that are written back to the offload map, which accelerate reads at every forward."""
    weights_map = _offload_map(module)
    if weights_map is None:
        yield module
        return
    loader, prefix = weights_map.dataset, weights_map.prefix
    stand_in = nn.Module()
    stand_in.weight = nn.Parameter(weights_map["weight"].clone(), requires_grad=False)
    stand_in.bias = None
    if module.bias is not None:
        stand_in.bias = nn.Parameter(weights_map["bias"].clone(), requires_grad=False)
    yield stand_in
    loader.state_dict[prefix + "weight"] = stand_in.weight.data
    if stand_in.bias is not None:
        loader.state_dict[prefix + "bias"] = stand_in.bias.data
        if module.bias is None:
            module.bias = nn.Parameter(torch.empty_like(stand_in.bias, device="meta"), requires_grad=False)


@torch.no_grad()
def bake(model_map: ModelMap, new: dict[str, torch.Tensor], offsets: dict[str, torch.Tensor] | None = None) -> None:
    """Remove the units in `new` from the weights, optionally folding `offsets[unit]` into the bias first."""
    for unit, mask in new.items():
        for layer in range(model_map.n_layers):
            units = mask[layer].nonzero().flatten()
            if units.numel() == 0:
                continue
            with _editable(model_map.projection(unit, layer)) as module:
                transposed = not isinstance(model_map.projection(unit, layer), nn.Linear)
                columns = module.weight.t() if transposed else module.weight
                units = units.to(columns.device)
                if offsets is not None:
                    mean = offsets[unit][layer].to(columns.device)[units]
                    if bool((mean != 0).any()):
                        shift = columns[:, units].double() @ mean.double()
                        if module.bias is None:
                            module.bias = nn.Parameter(torch.zeros(columns.shape[0], dtype=columns.dtype, device=columns.device))
                        module.bias.add_(shift.to(module.bias.dtype))
                columns[:, units] = 0


def apply(model_map: ModelMap, masks: Masks) -> None:
    """Bake saved masks (with their offsets) into an unpruned model."""
    masks.check_compatible(model_map)
    bake(model_map, masks.pruned, masks.offsets)


@contextmanager
def ablate_with_hooks(model_map: ModelMap, pruned: dict[str, torch.Tensor]):
    """Reference removal: zero the units' activations with hooks instead of editing weights."""
    handles = []

    def hook_for(keep: torch.Tensor):
        def hook(module, args):
            return (args[0] * keep.to(args[0].device, args[0].dtype),) + tuple(args[1:])

        return hook

    for unit, mask in pruned.items():
        for layer in range(model_map.n_layers):
            if bool(mask[layer].any()):
                module = model_map.projection(unit, layer)
                handles.append(module.register_forward_pre_hook(hook_for(~mask[layer])))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def expand_heads(head_mask: torch.Tensor, d_head: int) -> torch.Tensor:
    """(L, H) head mask -> (L, H*D) neuron mask."""
    return head_mask.repeat_interleave(d_head, dim=1)


@torch.no_grad()
def export(model, tokenizer, masks: Masks | None, out_dir: str | os.PathLike) -> Path:
    """Write an ordinary checkpoint of the (already baked) model; biases created by offsets are kept."""
    out_dir = Path(out_dir)
    config = model.config
    # Biases created by the mean offset are unknown to the config: the plain checkpoint must declare them.
    missing = _undeclared_biases(model)
    if missing:
        flags = [flag for flag in ("mlp_bias", "attention_bias") if hasattr(config, flag)]
        if not flags:
            raise MaskError(
                f"The {config.model_type} architecture has no bias on {missing[0]} and no config flag to add one: "
                "a mean-offset pruning cannot be written as a plain checkpoint. Use offset=zero, or evaluate "
                "through the `separ` lm-eval model with masks=DIR."
            )
        raise MaskError(
            f"Exporting mean offsets for {config.model_type} needs {flags} biases on every projection; "
            "use offset=zero for a plain checkpoint, or the `separ` lm-eval model with masks=DIR."
        )
    model.save_pretrained(out_dir)
    if tokenizer is not None:
        tokenizer.save_pretrained(out_dir)
    if masks is not None:
        masks.save(out_dir / "separ_masks")
    return out_dir


def _undeclared_biases(model) -> list[str]:
    """Bias parameters that a freshly built model of this config would not have."""
    with torch.device("meta"):
        fresh = type(model)(model.config)
    fresh_names = {n for n, _ in fresh.named_parameters()}
    return [n for n, _ in model.named_parameters() if n.endswith(".bias") and n not in fresh_names]
