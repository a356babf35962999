"""A pruned checkpoint from saved masks: load the unpruned model, check the masks fit, bake, save."""

from __future__ import annotations

from pathlib import Path

from .. import models
from ..engine import arch, edit
from ..engine.masks import Masks, model_signature
from .rundir import masks_location


def export_pruned(model: str, masks_path, out_dir, *, dtype: str = "float32", revision: str | None = None,
                  trust_remote_code: bool = False) -> Masks:
    """Write `model` with the masks at `masks_path` (a masks folder, or a run folder's last step) baked in."""
    loaded, tokenizer, _ = models.load(model, dtype=dtype, revision=revision, trust_remote_code=trust_remote_code)
    model_map = arch.map_model(loaded)
    masks = Masks.load(masks_location(Path(masks_path)))
    masks.check_compatible(model_map, model_signature(loaded))
    edit.apply(model_map, masks)
    edit.export(loaded, tokenizer, masks, Path(out_dir))
    return masks
