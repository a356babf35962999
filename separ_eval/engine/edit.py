"""Selection of the units to prune, their removal baked into the weights, and the export of a pruned model.

Selection is a global top-k over all layers of a unit type. Removal zeroes the matching
input columns of the output projection (rows of GPT-2's Conv1D), so a pruned
model is an ordinary checkpoint. The optional mean offset keeps the retain mean
of a removed unit by adding `W[:, u] * mean_R[u]` to the projection's bias.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import torch
from accelerate.utils import has_offloaded_params
from torch import nn

from .arch import ModelMap
from .masks import Masks, MaskError

OFFSETS = ("zero", "mean")


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


def select_joint(scores: dict[str, torch.Tensor], already: dict[str, torch.Tensor], k: int) -> dict[str, torch.Tensor]:
    """The `k` best units of all types together, each type's scores z-scored over its unpruned units first
    (so neither type wins by the scale of its statistic)."""
    standard = {}
    for unit, values in scores.items():
        free = values[~already[unit]].double()
        spread = free.std() if free.numel() > 1 else torch.tensor(1.0, dtype=torch.float64)
        standard[unit] = (values.double() - free.mean()) / spread.clamp_min(torch.finfo(torch.float64).tiny)
    units = list(standard)
    flat = torch.cat([standard[u].flatten() for u in units])
    pruned = torch.cat([already[u].flatten() for u in units])
    chosen = select(flat, pruned, k)
    out, at = {}, 0
    for unit in units:
        size = standard[unit].numel()
        out[unit] = chosen[at : at + size].reshape(standard[unit].shape)
        at += size
    return out


def output_weight_norms(model_map: ModelMap, unit: str) -> torch.Tensor:
    """(L, width) float64: the norm of each unit's column of the output projection (what it writes)."""
    norms = []
    for layer in range(model_map.n_layers):
        projection = model_map.projection(unit, layer)
        with _readable(projection) as module:
            weight = module.weight.detach()
            columns = weight.t() if not isinstance(projection, nn.Linear) else weight  # Conv1D: (in, out)
            norms.append(columns.double().norm(dim=0).cpu())
    return torch.stack(norms)


@contextmanager
def _readable(module: nn.Module):
    """The module with its real weights in place, also when accelerate offloaded them (meta device)."""
    from accelerate.utils import align_module_device

    with align_module_device(module, torch.device("cpu") if has_offloaded_params(module) else None):
        yield module


@contextmanager
def _editable(module: nn.Module):
    """The module itself, or, when accelerate offloaded its weights (meta device), a stand-in holding real
    copies of them that are written back to the offload map, which accelerate reads at every forward."""
    if not has_offloaded_params(module):
        yield module
        return
    # accelerate has no public API to change an offloaded weight for good (align_module_device's edits are
    # dropped on exit): the hook's weights map, read at every forward, is written directly.
    weights_map = module._hf_hook.weights_map
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
