"""Models: loading by hub id, local folder or embedded alias, and the embedded offline models."""

from .embedded import EMBEDDED_MODELS, EmbeddedModel, ModelLoadError, cache_dir
from .load import DTYPES, ModelInfo, check_causal_decoder, load, load_config, recorded_id, resolve

__all__ = [
    "DTYPES", "EMBEDDED_MODELS", "EmbeddedModel", "ModelInfo", "ModelLoadError", "cache_dir", "check_causal_decoder",
    "load", "load_config", "recorded_id", "resolve",
]
