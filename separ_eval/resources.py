"""Where the package's own files live: the lm-eval task YAML and the targets."""

from __future__ import annotations

from pathlib import Path


def tasks_dir() -> Path:
    """`tasks/` in a checkout, `separ_eval/_tasks` in an installed wheel."""
    checkout = Path(__file__).resolve().parent.parent / "tasks"
    if checkout.is_dir():
        return checkout
    return Path(__file__).resolve().parent / "_tasks"
