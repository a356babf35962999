"""Names of runs: readable, file-name-safe tags for a model x target x method."""

from __future__ import annotations

import re
from collections.abc import Mapping


def slug(text: str) -> str:
    """Lowercase file-name-safe text; '/' becomes '--' so org/name stays readable and unique."""
    text = text.strip().lower().replace("/", "--")
    text = re.sub(r"[^a-z0-9._-]+", "-", text)
    return text.strip("-.") or "unnamed"


def _fraction(value: float) -> str:
    return format(value, "g")


def method_tag(method: Mapping) -> str:
    """Short readable tag for the settings that distinguish runs, e.g. 'ff-abs-0.05x5'."""
    steps = method["steps"]
    units = []
    if method["ff_frac"]:
        units.append(f"ff-{slug(method['scoring']['ff'])}-{_fraction(method['ff_frac'])}x{steps}")
    if method["attn_frac"]:
        head = "head-" if method["attn_unit"] == "head" else ""
        scoring = slug(method["scoring"]["attn"])
        units.append(f"attn-{head}{scoring}-{_fraction(method['attn_frac'])}x{steps}")
    parts = ["+".join(units) or "noprune"]
    if method.get("joint"):
        parts.append("joint")
    if method.get("retain_weight", 1.0) != 1.0:
        parts.append(f"rw{_fraction(method['retain_weight'])}")
    if method["offset"] == "mean":
        parts.append("mean")
    if not method["recollect"]:
        parts.append("norecollect")
    if method["seed"]:
        parts.append(f"seed{method['seed']}")
    if method.get("data_seed"):
        parts.append(f"data{method['data_seed']}")
    return "-".join(parts)


def target_tag(target: str, reversed: bool) -> str:
    return slug(target) + ("-reversed" if reversed else "")


def run_name(model_id: str, target: str, reversed: bool, method: Mapping) -> str:
    """File stem for one model x target x method, e.g. 'smollm2-135m__code__ff-abs-0.05x5'."""
    return f"{slug(model_id)}__{target_tag(target, reversed)}__{method_tag(method)}"


def seed_family(method: Mapping) -> str:
    """The tag of a method with its seeds left out: runs that differ only by seed share it."""
    return method_tag({**method, "seed": 0, "data_seed": 0})


def results_name(results) -> str:
    """The file stem of a results object."""
    return run_name(results.model.id, results.target.name, results.target.reversed, results.method.model_dump())
