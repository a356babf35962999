"""Where the package's files live, and how they are written so that a killed run never leaves a torn one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """`write(tmp_path)` into a temporary file beside `path`, then rename it over `path` in one step."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def tasks_dir() -> Path:
    """`tasks/` in a checkout, `separ_eval/_tasks` in an installed wheel."""
    checkout = Path(__file__).resolve().parent.parent / "tasks"
    if checkout.is_dir():
        return checkout
    return Path(__file__).resolve().parent / "_tasks"
