"""Targets: which capability to forget, which to retain, and the lm-eval tasks that measure each.

A target is a small YAML file, found in `tasks/targets/` or in any include path:

    target: code
    description: Forget code, retain general English prose.
    forget: {corpus: code, tasks: [separ_code]}
    retain: {corpus: prose, tasks: [separ_general]}

`corpus` is anything `data.load_corpus` accepts; `tasks` are lm-eval task or
group names. Optional `aliases: [...]` gives other names. A file is a target
when its top level has a `target` key, so target YAML may live next to task
YAML in one include path (lm-eval's task index skips it).
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from .data.corpora import corpus_label
from .errors import SeparEvalError
from .resources import tasks_dir

SIDES = ("forget", "retain")


class TargetError(SeparEvalError, ValueError):
    pass


@dataclass(frozen=True)
class Side:
    corpus: str | dict  # anything data.load_corpus takes: a name, a path, or {train: ..., test: ...}
    tasks: list[str]

    @property
    def label(self) -> str:
        """The corpus as results name it (local files by file name, never by absolute path)."""
        return corpus_label(self.corpus)

    def as_dict(self) -> dict:
        return {"corpus": self.label, "tasks": list(self.tasks)}


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    forget: Side
    retain: Side
    is_reversed: bool = False
    aliases: tuple[str, ...] = ()
    source: str | None = None  # the YAML file it came from

    def reversed(self) -> "Target":
        """Forget what was retained and retain what was forgotten; the name stays, the flag flips."""
        return replace(self, forget=self.retain, retain=self.forget, is_reversed=not self.is_reversed)

    def as_dict(self) -> dict:
        """The `target` block of a results file."""
        return {
            "name": self.name,
            "forget": self.forget.label,
            "retain": self.retain.label,
            "reversed": self.is_reversed,
        }


def target_dirs(include_paths=()) -> list[Path]:
    """Where targets are looked for: the package's `tasks/targets/`, then each include path (later wins)."""
    dirs = [tasks_dir() / "targets"]
    for path in split_paths(include_paths):
        dirs.append(Path(path).expanduser())
    return dirs


def split_paths(include_paths) -> list[str]:
    if include_paths is None:
        return []
    if isinstance(include_paths, (str, os.PathLike)):
        include_paths = [include_paths]
    out = []
    for item in include_paths:
        out.extend(p for p in str(item).split(os.pathsep) if p)
    return out


def _side(raw: dict, key: str, path: Path) -> Side:
    value = raw.get(key)
    if value is None:
        raise TargetError(f"Target file {path} has no `{key}` side: add `{key}: {{corpus: ..., tasks: [...]}}`.")
    if not isinstance(value, dict):
        raise TargetError(f"Target file {path}: `{key}` must be a mapping with `corpus` and `tasks`, not {value!r}.")
    corpus = value.get("corpus")
    if isinstance(corpus, dict):
        corpus = {split: _beside(where, path) for split, where in corpus.items()} if "hub" not in corpus else corpus
    elif isinstance(corpus, str) and corpus:
        corpus = _beside(corpus, path)
    else:
        raise TargetError(f"Target file {path}: `{key}.corpus` is missing; name a corpus (e.g. code, prose, a file, "
                          "or {train: FILE, test: FILE}).")
    tasks = value.get("tasks", [])
    if isinstance(tasks, str):
        tasks = [tasks]
    if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
        raise TargetError(f"Target file {path}: `{key}.tasks` must be a list of lm-eval task or group names.")
    return Side(corpus=corpus, tasks=list(tasks))


def _beside(where, path: Path):
    """A relative corpus path is read next to the target file when it exists there (else as given)."""
    if not isinstance(where, str) or os.path.isabs(where):
        return where
    candidate = path.parent / where
    return str(candidate.resolve()) if candidate.exists() else where


def parse_target(raw: dict, path: Path) -> Target:
    """A Target from one YAML mapping; errors name the file and the missing key."""
    name = raw.get("target")
    if not isinstance(name, str) or not name:
        raise TargetError(f"Target file {path}: `target` must be a non-empty name.")
    aliases = raw.get("aliases") or []
    if isinstance(aliases, str):
        aliases = [aliases]
    return Target(
        name=name,
        description=str(raw.get("description", "")).strip(),
        forget=_side(raw, "forget", path),
        retain=_side(raw, "retain", path),
        aliases=tuple(aliases),
        source=str(path),
    )


_TARGET_KEY = re.compile(r"^target\s*:", re.MULTILINE)


def _read(path: Path) -> dict | None:
    """The YAML mapping of a target file, or None when the file is not a target (no top-level `target`).

    A file that does not parse is a task file's business (lm-eval's `!function` tags are not plain YAML),
    unless it has a top-level `target:` key: then it is a broken target, and the error names its line.
    """
    text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        if not _TARGET_KEY.search(text):
            return None
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise TargetError(f"Target file {path}{where}: not valid YAML ({problem}). Fix the file, or move it out of "
                          "the include path.") from None
    if isinstance(raw, dict) and "target" in raw:
        return raw
    return None


def available_targets(include_paths=()) -> dict[str, Target]:
    """Every target by name (aliases not repeated); a later include path overrides an earlier one."""
    found: dict[str, Target] = {}
    for directory in target_dirs(include_paths):
        if not directory.exists():
            raise TargetError(f"Target include path {directory} does not exist.")
        files = [directory] if directory.is_file() else sorted(directory.rglob("*.yaml"))
        for path in files:
            raw = _read(path)
            if raw is not None:
                target = parse_target(raw, path)
                found[target.name] = target
    return found


def load_target(name: str, include_paths=()) -> Target:
    """The target called `name` (or one of its aliases)."""
    targets = available_targets(include_paths)
    if name in targets:
        return targets[name]
    for target in targets.values():
        if name in target.aliases:
            return target
    names = sorted({*targets, *(a for t in targets.values() for a in t.aliases)})
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise TargetError(
        f"Unknown target {name!r}.{hint} Available: {', '.join(sorted(targets))}. "
        "Add your own as a YAML file (target, forget, retain) in an include path."
    )
