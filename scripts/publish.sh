#!/usr/bin/env bash
# Reproduce the published results in results/ at the package defaults, then write results/README.md from them.
#   scripts/publish.sh                      # every embedded model
#   scripts/publish.sh smollm2-135m         # one model
# Per model, both directions (forget code; forget prose): FF abs, attention abs, and FF random under 3 seeds.
# A run already finished in results/ is resumed (nothing recomputed but its results file).
set -euo pipefail
cd "$(dirname "$0")/.."
SEPAR=${SEPAR:-.venv/bin/separ-eval}
PYTHON=${PYTHON:-.venv/bin/python}
if [ $# -eq 0 ]; then set -- smollm2-135m gemma3-270m qwen2.5-coder-0.5b; fi
for model in "$@"; do
  for direction in "" "--reverse"; do
    $SEPAR run --model "$model" --prune-target code $direction --output results
    $SEPAR run --model "$model" --prune-target code $direction --ff-frac 0 --attn-frac 0.05 --output results
    $SEPAR run --model "$model" --prune-target code $direction --scoring random --seeds 0,1,2 --output results
  done
done
$SEPAR validate results
$PYTHON scripts/results_readme.py results > results/README.md.tmp
mv results/README.md.tmp results/README.md
