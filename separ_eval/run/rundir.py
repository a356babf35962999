"""The run folder: what a run is (`config.json`), what it finished (`log.jsonl`), and its masks after every step.

Masks are written atomically before their log record: the log record is the commit
point, so a run killed at any moment resumes from its last record. Resuming replays
the saved masks step by step onto the fresh model, which reproduces the weights bit
for bit (biases included).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..engine import edit, stats
from ..engine.arch import ModelMap
from ..engine.masks import Masks
from ..io import append_log, atomic_write, read_log, write_json, write_lines
from .config import RunError

LOG_NAME = "log.jsonl"
CONFIG_NAME = "config.json"
BLOCKS_NAME = "blocks.jsonl"


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


class RunDir:
    """`<output>/runs/<name>/`: config.json, log.jsonl, masks/step-NNN/, stats/, offload/, checkpoints/."""

    def __init__(self, root: Path):
        self.root = Path(root)

    @property
    def log_path(self) -> Path:
        return self.root / LOG_NAME

    @property
    def offload_dir(self) -> Path:
        return self.root / "offload"

    def masks_dir(self, step: int) -> Path:
        return self.root / "masks" / f"step-{step:03d}"

    def checkpoint_dir(self, step: int) -> Path:
        return self.root / "checkpoints" / f"step-{step:03d}"

    def check_identity(self, identity: dict) -> None:
        """Refuse a run folder that holds another run (same name, other settings)."""
        config_path = self.root / CONFIG_NAME
        if not config_path.exists():
            return
        saved, wanted = _flatten(json.loads(config_path.read_text())), _flatten(identity)
        differ = [f"{k}: {saved.get(k)!r} there, {wanted.get(k)!r} now" for k in sorted({*saved, *wanted})
                  if saved.get(k) != wanted.get(k)]
        if differ:
            raise RunError(
                f"{self.root} holds a different run ({'; '.join(differ)}). "
                "Use another --output, or delete that directory to start over."
            )

    def open(self, identity: dict, *, write: bool) -> list[dict]:
        """Create or reopen the folder for this run; returns the finished step records."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.check_identity(identity)
        if write and not (self.root / CONFIG_NAME).exists():
            write_json(self.root / CONFIG_NAME, identity)
        return read_log(self.log_path)

    def commit(self, record: dict) -> None:
        append_log(self.log_path, record)

    def write_layout(self, layout: dict) -> None:
        """`blocks.jsonl`: for every block of every side and phase, the documents and offsets of its windows."""
        write_lines(self.root / BLOCKS_NAME, (
            {"side": side, "phase": phase, "block": b, "windows": windows}
            for side, phases in layout.items() for phase, blocks in phases.items()
            for b, windows in enumerate(blocks)
        ))

    def restore(self, model_map: ModelMap, signature: list[float], *, mean_offset: bool, last_step: int) -> Masks:
        """Replay saved masks step by step onto an unpruned model: reproduces the incremental baking exactly."""
        previous = Masks.empty(model_map)
        for step in range(1, last_step + 1):
            saved = Masks.load(self.masks_dir(step))
            saved.check_compatible(model_map, signature)
            new = {u: saved.pruned[u] & ~previous.pruned[u] for u in saved.pruned}
            offsets = {u: saved.offsets[u] - previous.offsets[u] for u in saved.offsets}
            edit.bake(model_map, new, offsets if mean_offset else None)
            previous = saved
        return previous

    # -------------------------------------------------------------- statistics of a --no-recollect run

    def _stats_paths(self) -> list[Path]:
        return [self.root / "stats" / f"{side}.safetensors" for side in ("forget", "retain")]

    def load_fixed_stats(self) -> tuple[stats.UnitStats, stats.UnitStats] | None:
        paths = self._stats_paths()
        if not all(p.exists() for p in paths):
            return None
        return stats.load_stats(paths[0]), stats.load_stats(paths[1])

    def save_fixed_stats(self, forget: stats.UnitStats, retain: stats.UnitStats) -> None:
        paths = self._stats_paths()
        paths[0].parent.mkdir(exist_ok=True)
        for path, value in zip(paths, (forget, retain)):  # atomic: a torn file would poison resumes
            atomic_write(path, lambda tmp, value=value: stats.save_stats(value, tmp))

    def missing_stats_error(self) -> RunError:
        return RunError(
            f"{self._stats_paths()[0].parent} is missing: a --no-recollect run cannot resume without the statistics "
            f"of the unpruned model. Delete {self.root} to start over."
        )


def masks_location(path: Path) -> Path:
    """A masks folder as given, or a run folder's last saved step."""
    path = Path(path)
    if (path / "masks.safetensors").exists():
        return path
    steps = sorted((path / "masks").glob("step-*")) if (path / "masks").is_dir() else []
    return steps[-1] if steps else path


__all__ = ["CONFIG_NAME", "LOG_NAME", "RunDir", "masks_location", "read_log"]
