"""What a run is: its settings, the lm-eval task plan, and the names it is known by before anything loads."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from .. import models
from ..errors import SeparEvalError
from ..engine.method import Method
from ..report.naming import run_name


class RunError(SeparEvalError, RuntimeError):
    pass


@dataclass
class RunConfig:
    model: str = "smollm2-135m"
    model_id: str | None = None  # the name results record the model under (default: see models.recorded_id)
    target: str = "code"
    reverse: bool = False
    method: Method = field(default_factory=Method)
    device: str = "cpu"
    dtype: str = "float32"
    batch_size: int | None = None  # None: default_batch_size(device)
    revision: str | None = None
    trust_remote_code: bool = False
    output: str = "results"
    include_paths: tuple[str, ...] = ()
    tasks: str = "none"  # "none", "target", or "forget=a+b,retain=c"
    task_steps: str = "ends"  # "ends", "all", or "0,2,5"
    task_limit: int | None = None
    eval_backend: str = "separ"  # separ (in process) | hf | vllm (lm-eval backends on an exported checkpoint)
    backend_args: str = ""  # e.g. "tensor_parallel_size=2,data_parallel_size=2,gpu_memory_utilization=0.8"
    device_map: str | None = None  # accelerate sharding: "auto", "balanced", "sequential"
    max_memory: dict | None = None  # with device_map: {0: "20GiB", "cpu": "60GiB"}

    def identity(self) -> dict:
        """What must match for a run directory to be resumed."""
        return {
            "model": self.model,
            "revision": self.revision,
            "target": self.target,
            "reverse": self.reverse,
            "method": self.method.as_dict(),
            "dtype": self.dtype,
            "tasks": self.tasks,
            "task_steps": self.task_steps,
            "task_limit": self.task_limit,
            **({"eval_backend": self.eval_backend} if self.eval_backend != "separ" else {}),
        }

    def load_target(self):
        """The target, reversed when the run asks for it."""
        from ..targets import load_target

        target = load_target(self.target, include_paths=self.include_paths)
        return target.reversed() if self.reverse else target

    def name(self, target=None) -> str:
        """The run's name (results file stem, run folder), known without loading the model."""
        target = target or self.load_target()
        return run_name(models.recorded_id(self.model, self.model_id), target.name, self.reverse, self.method.as_dict())


def seeded(config: RunConfig, seed: int) -> RunConfig:
    """The same run under another seed: for a `random` scoring the seed of the units it picks, otherwise the
    seed of the data (which documents and windows are read)."""
    method = config.method
    uses_random = any(method.scoring_for(u) == "random" and method.fraction(u) > 0 for u in ("ff", "attn"))
    field_name = "seed" if uses_random else "data_seed"
    return replace(config, method=Method.from_dict({**method.model_dump(), field_name: seed}))


def task_plan(spec: str, target) -> dict[str, list[str]]:
    """{side: lm-eval task names} from --tasks: none, the target's own, or 'forget=a+b,retain=c'."""
    if spec in ("", "none", None):
        return {}
    if spec == "target":
        return {"forget": list(target.forget.tasks), "retain": list(target.retain.tasks)}
    from lm_eval.utils import simple_parse_args_string

    sides = simple_parse_args_string(spec)
    if not set(sides) <= {"forget", "retain"} or not all(isinstance(v, str) and v for v in sides.values()):
        raise RunError(f"--tasks expects 'none', 'target' or 'forget=a+b,retain=c', got {spec!r}.")
    return {side: [n for n in names.split("+") if n] for side, names in sides.items()}


def task_steps(spec: str, steps: int) -> set[int]:
    """The steps at which tasks run, from --task-steps: ends, all, or '0,2,5'."""
    if spec == "ends":
        return {0, steps}
    if spec == "all":
        return set(range(steps + 1))
    try:
        return {int(s) for s in spec.split(",")}
    except ValueError as error:
        raise RunError(f"--task-steps expects 'ends', 'all' or a list like '0,2,5', got {spec!r}.") from error


def default_batch_size(device) -> int:
    """Sequences per forward when the user names none. On CPU, 2 x 512 tokens ran no slower per token than
    8 x 512 in A/B runs (bench/README.md) with a lower memory peak; accelerators want bigger batches."""
    return 2 if torch.device(device).type == "cpu" else 16
