"""What a pruning removed: neuron-level masks per unit type, the offsets folded into biases, and a fingerprint.

Masks are booleans of shape (n_layers, width) per unit type; pruning whole heads
sets all `d_head` neurons of a head. They are saved as safetensors + JSON and carry a
model signature, so masks computed on one checkpoint are refused by another.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate.utils import align_module_device, has_offloaded_params
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import SeparEvalError
from ..io import atomic_write
from .arch import UNIT_TYPES, ModelMap

MASKS_FORMAT = "separ-eval/masks/v1"


class MaskError(SeparEvalError, ValueError):
    pass


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

    def fingerprint(self) -> str | None:
        """sha256 of what the masks remove (and the offsets they fold in); None when they change nothing."""
        if not any(bool(self.pruned[u].any()) or bool(self.offsets[u].any()) for u in self.pruned):
            return None
        digest = hashlib.sha256(MASKS_FORMAT.encode())
        for unit in sorted(self.pruned):
            pruned = self.pruned[unit].to(torch.uint8).contiguous()
            digest.update(f"{unit}{tuple(pruned.shape)}".encode())
            digest.update(pruned.numpy().tobytes())
            digest.update(self.offsets[unit].float().contiguous().numpy().tobytes())
        return digest.hexdigest()


def model_signature(model: nn.Module, n: int = 16) -> list[float]:
    """A few embedding weights at fixed positions: tells checkpoints of one architecture apart (never pruned)."""
    embeddings = model.get_input_embeddings()
    # An embedding offloaded by accelerate holds its weights on `meta`; align_module_device loads them for the read.
    with align_module_device(embeddings, torch.device("cpu") if has_offloaded_params(embeddings) else None):
        flat = embeddings.weight.detach().reshape(-1)
        positions = torch.linspace(0, flat.numel() - 1, n, dtype=torch.float64).long()  # float32 overflows
        return [float(v) for v in flat[positions].float().cpu()]
