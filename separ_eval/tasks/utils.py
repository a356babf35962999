"""`!function` hooks of the separ-eval tasks.

The package's own data files are read here; the corpus-backed hooks and the token-metrics
task class live in `separ_eval.lm_eval_ext.tasks`, so a user's YAML in another include path
can name them too (`!function separ_eval.lm_eval_ext.tasks.TokenMetricsTask`).
"""

from __future__ import annotations

import json
from pathlib import Path

from separ_eval.lm_eval_ext.tasks import (  # noqa: F401  (named by the YAML files)
    TokenMetricsTask,
    as_test_split,
    ppl_dataset,
    token_dataset,
    token_process_results,
)

DATA = Path(__file__).resolve().parent / "data"


def jsonl_dataset(file: str, **_metadata):
    """Rows of `data/<file>` (JSON Lines) as the test split."""
    path = DATA / file
    if not path.exists():
        raise FileNotFoundError(f"Task data {path} is missing: rebuild it with scripts/build_task_data.py.")
    with open(path, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return as_test_split(rows)
