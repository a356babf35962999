#!/usr/bin/env bash
# Reproduce the published smollm2-135m results in results/ (both directions; FF abs, FF random, attention abs).
set -euo pipefail
cd "$(dirname "$0")/.."
SEPAR=${SEPAR:-.venv/bin/separ-eval}
for direction in "" "--reverse"; do
  $SEPAR run --prune-target code $direction --ff-frac 0.05 --steps 5 --output results
  $SEPAR run --prune-target code $direction --ff-frac 0.05 --steps 5 --scoring random --output results
  $SEPAR run --prune-target code $direction --ff-frac 0 --attn-frac 0.05 --steps 5 --output results
done
$SEPAR leaderboard results --format md --out results/README.md.table
