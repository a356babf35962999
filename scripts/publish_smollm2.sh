#!/usr/bin/env bash
# Reproduce the published smollm2-135m results in results/ (both directions; FF abs, FF random, attention abs)
# and write results/README.md from them. Runs already finished in results/ are kept (resumed, not redone).
set -euo pipefail
cd "$(dirname "$0")/.."
SEPAR=${SEPAR:-.venv/bin/separ-eval}
for direction in "" "--reverse"; do
  $SEPAR run --prune-target code $direction --output results
  $SEPAR run --prune-target code $direction --scoring random --output results
  $SEPAR run --prune-target code $direction --ff-frac 0 --attn-frac 0.05 --output results
done
{
  echo "# Published results"
  echo
  echo "Written by \`scripts/publish_smollm2.sh\` (the package defaults: 5 steps of 5%, 5000 collection /"
  echo "2500 evaluation tokens per corpus, block 512, float32, CPU); the table is"
  echo "\`separ-eval leaderboard results --format md\`. Not edited by hand."
  echo "\`random\` is the baseline: it removes the same number of units, chosen at random."
  echo
  $SEPAR leaderboard results --format md
} > results/README.md.tmp
mv results/README.md.tmp results/README.md
