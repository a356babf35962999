"""Files that a killed run never leaves torn: atomic replacement, and JSON Lines logs with a commit point.

A replaced file is written beside its target and renamed over it in one step. A JSON
Lines log is appended one fsync'd record at a time; a torn last line (the process was
killed mid-write) is not a record and is cut off when the log is next read.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable

import jsonlines


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """`write(tmp_path)` into a temporary file beside `path`, then rename it over `path` in one step."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj, *, sync: bool = False) -> None:
    """`obj` as indented JSON, atomically; `sync` flushes it to disk before the rename."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(obj, handle, indent=2)
            handle.write("\n")
            if sync:
                handle.flush()
                os.fsync(handle.fileno())

    atomic_write(path, write)


def read_log(path: Path) -> list[dict]:
    """The complete records of a JSON Lines log; a torn last line is dropped from the file."""
    path = Path(path)
    if not path.exists():
        return []
    records, good_bytes = [], 0
    with open(path, "rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                break
            try:
                records.append(jsonlines.Reader([line]).read())
            except jsonlines.InvalidLineError:
                break
            good_bytes += len(line)
    if good_bytes != path.stat().st_size:
        with open(path, "r+b") as handle:
            handle.truncate(good_bytes)
    return records


def append_log(path: Path, record: dict) -> None:
    """One record, flushed to disk before returning: once this returns, the record survives a kill."""
    with open(path, "a", encoding="utf-8") as handle:
        with jsonlines.Writer(handle, compact=True, flush=True) as writer:
            writer.write(record)
        os.fsync(handle.fileno())


def write_lines(path: Path, records) -> None:
    """A whole JSON Lines file, atomically."""

    def write(tmp: str) -> None:
        with jsonlines.open(tmp, mode="w", compact=True) as writer:
            writer.write_all(records)

    atomic_write(path, write)


def writable_folder(path, what: str = "--output") -> Path:
    """`path` created if needed and probed with a real file: an OutputError now, not a traceback after the work."""
    from .errors import OutputError

    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".separ-eval-probe-"):
            pass
    except OSError as error:
        reason = error.strerror or str(error)
        raise OutputError(f"Cannot write to {what} {path}: {reason}. Choose a folder you can write to.") from None
    return path
