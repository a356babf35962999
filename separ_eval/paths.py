"""Where the package's task YAML lives: `tasks/` in a checkout, `separ_eval/_tasks` in an installed wheel."""

from __future__ import annotations

from pathlib import Path


def tasks_dir() -> Path:
    checkout = Path(__file__).resolve().parent.parent / "tasks"
    if checkout.is_dir():
        return checkout
    return Path(__file__).resolve().parent / "_tasks"
