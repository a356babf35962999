"""The results file (schema `separ-eval/results/v1`), defined once as a typed model.

Every reader and writer goes through `Results`: the loop builds one, `store` writes
and reads them, the leaderboard, plots and `validate` read their fields. Validation
is strict (a number written as a string is an error, not a conversion) and names the
exact field. The cross-field rules (`consistency`) run as its validator, so a published
number can always be traced back to the per-step, per-document measurements.
`results/schema/results-v1.schema.json` is this model's JSON Schema, exported by
`python -m separ_eval.report.schema`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import SeparEvalError
from . import consistency

SCHEMA = "separ-eval/results/v1"

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
Interval = Annotated[list[float], Field(min_length=2, max_length=2)]
Name = Annotated[str, Field(min_length=1)]
Count = Annotated[int, Field(ge=0)]


class ResultsError(SeparEvalError):
    """A results file that cannot be read or breaks the schema."""

    def __init__(self, path, problems: list[str]):
        self.path = Path(path)
        self.problems = list(problems)
        listing = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"{self.path}: invalid {SCHEMA} results:\n{listing}")


class _Record(BaseModel):
    """Strict: JSON types are checked, not converted. Unknown keys are extensions and are kept."""

    model_config = ConfigDict(strict=True, extra="allow", populate_by_name=True)


class ModelRecord(_Record):
    id: Name
    revision: str | None = None
    family: str | None = None
    n_params: int = Field(ge=1)
    dtype: str | None = None


class TargetRecord(_Record):
    name: Name
    forget: Name
    retain: Name
    reversed: bool


class Scorings(_Record):
    ff: Name
    attn: Name


class MethodRecord(_Record):
    ff_frac: Fraction
    attn_frac: Fraction
    attn_unit: Name
    steps: Count
    scoring: Scorings
    offset: Name
    recollect: bool
    collect_tokens: Count
    eval_tokens: Count
    seed: Count


class CorpusRecord(_Record):
    source: Name
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    collect_documents: Count | None = None  # distinct documents the statistics were collected on
    eval_documents: Count | None = None  # distinct documents the metrics were measured on


class DataRecord(_Record):
    forget: CorpusRecord
    retain: CorpusRecord


class Pruned(_Record):
    ff: Fraction
    attn: Fraction


class SideMetrics(_Record):
    """Next-token metrics of one corpus at one step; more metrics (ppl, ...) may follow, all numbers."""

    __pydantic_extra__: dict[str, float]
    top1: Fraction
    top10: Fraction
    skip50_top1: Fraction
    skip50_top10: Fraction
    loss: float

    def value(self, metric: str) -> float | None:
        return getattr(self, metric, None)


class StepErrors(_Record):
    """Bootstrap standard error of each accuracy metric at one step (None where it is undefined)."""

    forget: dict[str, float | None]
    retain: dict[str, float | None]


class Step(_Record):
    step: Count
    pruned: Pruned
    forget: SideMetrics
    retain: SideMetrics
    tasks: dict[str, dict[str, dict[str, float]]] | None = None  # {side: {task: {"metric,filter": value}}}
    stderr: StepErrors | None = None


class Separability(_Record):
    sa: float | None  # None (with `undefined` saying why) when the metric's step-0 value is 0
    mdd: float | None
    f_at_r5: float | None
    sa_ci: Interval | None = None  # 95% bootstrap interval over evaluation documents (see report.intervals)
    mdd_ci: Interval | None = None
    f_at_r5_ci: Interval | None = None


class Bootstrap(_Record):
    iterations: int = Field(ge=1)
    seed: Count
    level: float = Field(gt=0.0, lt=1.0)


class SideSamples(_Record):
    documents: list[str]  # document ids (content hashes)
    counts: list[list[list[float]]]  # steps x documents x fields


class Samples(_Record):
    """Per-document token counts of every step: what the intervals are recomputed from."""

    unit: Literal["document"]
    fields: list[str]
    bootstrap: Bootstrap
    forget: SideSamples
    retain: SideSamples


class Results(_Record):
    schema_id: Literal["separ-eval/results/v1"] = Field(alias="schema")
    model: ModelRecord
    target: TargetRecord
    method: MethodRecord
    data: DataRecord
    trajectory: list[Step]
    summary: dict[str, Separability]
    environment: dict | None = None
    timing: dict | None = None
    samples: Samples | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "Results":
        problems = consistency.trajectory_problems(self.trajectory)
        if self.trajectory:
            problems += consistency.summary_problems(self.summary, self.trajectory_dicts())
            problems += consistency.sample_problems(self)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def trajectory_dicts(self) -> list[dict]:
        return [step.model_dump(exclude_unset=True) for step in self.trajectory]

    def to_dict(self) -> dict:
        """The JSON object, exactly as read (unset optional fields stay absent)."""
        return self.model_dump(by_alias=True, exclude_unset=True)


# ---------------------------------------------------------------- readable problems

_EXPECTED = {
    "float_type": "expected a number", "int_type": "expected an integer", "bool_type": "expected true or false",
    "string_type": "expected a string", "dict_type": "expected an object", "model_type": "expected an object",
    "model_attributes_type": "expected an object", "list_type": "expected a list",
    "string_too_short": "expected a non-empty string", "string_pattern_mismatch": "expected 64 lowercase hex digits",
}


def _where(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _type_name(value) -> str:
    return "null" if value is None else type(value).__name__


def _problem(error: dict) -> list[str]:
    where, kind, given = _where(error["loc"]), error["type"], error.get("input")
    if kind == "value_error":  # the cross-field validator: one problem per line, each naming its field
        return str(error["msg"]).removeprefix("Value error, ").splitlines()
    if kind == "missing":  # a file without `schema` is most likely another program's JSON: say what we expect
        return [f"schema: expected {SCHEMA!r}, got None" if where == "schema" else f"{where}: missing"]
    if kind == "literal_error":
        return [f"{where}: expected {error['ctx']['expected']}, got {given!r}"]
    context = error.get("ctx") or {}
    if kind in ("greater_than_equal", "less_than_equal"):
        expected = f"expected a number {'>=' if 'ge' in context else '<='} {context.get('ge', context.get('le'))}"
    else:
        expected = _EXPECTED.get(kind, str(error["msg"]))
    shown = f" ({given!r:.60})" if isinstance(given, (int, float, str)) and not isinstance(given, bool) else ""
    return [f"{where}: {expected}, got {_type_name(given)}{shown}"]


class SchemaProblems(ValueError):
    """What is wrong with a results object, one 'field.path: what' line each."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


def parse(obj) -> Results:
    """The typed results of a JSON object, or SchemaProblems naming every bad field."""
    if not isinstance(obj, dict):
        raise SchemaProblems([f"results must be a JSON object, got {_type_name(obj)}"])
    try:
        return Results.model_validate(obj)
    except ValidationError as error:
        raise SchemaProblems([line for item in error.errors() for line in _problem(item)]) from None


def validate(obj) -> list[str]:
    """Problems with a results object, one readable line each; empty when valid."""
    try:
        parse(obj)
    except SchemaProblems as problems:
        return problems.problems
    return []


def json_schema() -> dict:
    """The JSON Schema of `Results` (the cross-field rules live in the model, not in JSON Schema)."""
    schema = Results.model_json_schema(by_alias=True)
    schema["$id"] = SCHEMA
    return schema


if __name__ == "__main__":  # python -m separ_eval.report.schema > results/schema/results-v1.schema.json
    print(json.dumps(json_schema(), indent=2))
