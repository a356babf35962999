"""Per-unit activation statistics, collected by forward-pre-hooks on the output projections.

Statistics are sufficient sums in float64, so batches, steps and processes merge
by addition. Each sequence is first reduced in float32 (one fused pass per
projection) and the per-sequence partials are summed in float64: the result does
not depend on how sequences are batched, up to float64 rounding.

Two sums read gradients, for attribution scorings: `sum_grad` (of dL/da) and
`sum_act_grad` (of a * dL/da), where L is the summed next-token loss of the scored
targets (see `Blocks.targets`). They take one backward pass per batch, with the
activations as the only tensors that require a gradient: no weight gets one.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import torch

from .arch import UNIT_TYPES, ModelMap, base_model, input_device, lm_head_logits

STAT_NAMES = ("count", "sum", "sum_sq", "sum_abs", "sum_sqrt", "count_pos", "sum_grad", "sum_act_grad")
GRADIENT_STATS = ("sum_grad", "sum_act_grad")


@dataclass
class UnitStats:
    """sums[unit] has shape (len(STAT_NAMES), n_layers, width), float64."""

    sums: dict[str, torch.Tensor] = field(default_factory=dict)

    @classmethod
    def zeros(cls, shapes: dict[str, tuple[int, int]], device="cpu") -> "UnitStats":
        return cls({u: torch.zeros((len(STAT_NAMES), *s), dtype=torch.float64, device=device) for u, s in shapes.items()})

    def __add__(self, other: "UnitStats") -> "UnitStats":
        return UnitStats({u: self.sums[u] + other.sums[u].to(self.sums[u].device) for u in self.sums})

    def get(self, unit: str, name: str) -> torch.Tensor:
        row = self.sums[unit][STAT_NAMES.index(name)]
        if bool(torch.isnan(row).any()):
            raise ValueError(f"The {name!r} statistic of {unit} units was not collected (or is NaN): "
                             "collect it with names=..., or check the model for NaN activations.")
        return row

    def tokens(self, unit: str | None = None) -> int:
        return int(self.get(unit or next(iter(self.sums)), "count")[0, 0].item())

    def mean(self, unit: str, name: str) -> torch.Tensor:
        """E[stat] per unit; `name` is a sum (sum, sum_sq, sum_abs, sum_sqrt, count_pos)."""
        count = self.get(unit, "count")
        if bool((count == 0).any()):
            raise ValueError("No tokens were collected: the corpus gave no (unpadded) positions.")
        return self.get(unit, name) / count

    def std(self, unit: str) -> torch.Tensor:
        """True (population) standard deviation per unit."""
        mean = self.mean(unit, "sum")
        return (self.mean(unit, "sum_sq") - mean * mean).clamp_min(0).sqrt()

    def cpu(self) -> "UnitStats":
        return UnitStats({u: t.cpu() for u, t in self.sums.items()})

    def all_reduce(self) -> "UnitStats":
        """Sum across torch.distributed ranks (no-op when not distributed)."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            for tensor in self.sums.values():
                dist.all_reduce(tensor)
        return self


def _sequence_sums(activations: torch.Tensor, token_mask: torch.Tensor, names=STAT_NAMES) -> torch.Tensor:
    """(len(STAT_NAMES), width) float64 sums over the unmasked positions of a (B, T, W) batch.

    Only `names` are computed (count always): the rows of the others are NaN, so reading them fails loudly.
    """
    a = activations.float()
    weights = token_mask.to(a.dtype)  # (B, T)
    width = a.shape[-1]
    # Reduce over positions within each sequence in float32 (BLAS), then over sequences in float64.
    positions = lambda x: torch.einsum("bt,btw->bw", weights, x)  # noqa: E731
    rows = {"count": weights.sum(dim=1, keepdim=True).expand(-1, width)}
    if "sum" in names:
        rows["sum"] = positions(a)
    if "sum_sq" in names:
        rows["sum_sq"] = positions(a * a)
    if "sum_abs" in names or "sum_sqrt" in names:
        magnitude = a.abs()
        if "sum_abs" in names:
            rows["sum_abs"] = positions(magnitude)
        if "sum_sqrt" in names:
            rows["sum_sqrt"] = positions(magnitude.sqrt_())
    if "count_pos" in names:
        rows["count_pos"] = positions((a > 0).to(a.dtype))
    out = torch.full((len(STAT_NAMES), width), float("nan"), dtype=torch.float64, device=a.device)
    for i, name in enumerate(STAT_NAMES):
        if name in rows:
            out[i] = rows[name].double().sum(dim=0)
    return out


class StatsCollector:
    """Context manager: while open, every forward adds to `self.stats` for the positions in `token_mask`.

    Only the unit types in `units` are hooked: an FF-only run pays nothing for attention statistics.
    `names[unit]` limits the sums to those a scoring needs (NaN rows for the rest); `kept[unit][layer]`
    names the neurons a compacted layer still computes (see `compact`); the others get zero sums (they
    were removed) and the full token count.
    """

    def __init__(self, model_map: ModelMap, device="cpu", units: tuple[str, ...] = UNIT_TYPES,
                 kept: dict[str, dict[int, torch.Tensor]] | None = None,
                 names: dict[str, tuple[str, ...]] | None = None):
        unknown = set(units) - set(UNIT_TYPES)
        if unknown:
            raise ValueError(f"Unknown unit types {sorted(unknown)}; choose from {UNIT_TYPES}.")
        self.model_map = model_map
        self.units = tuple(units)
        self.stats = UnitStats.zeros({u: s for u, s in model_map.shapes().items() if u in self.units}, device=device)
        self.token_mask: torch.Tensor | None = None
        self.kept = kept or {}
        self.names = {u: tuple((names or {}).get(u, [n for n in STAT_NAMES if n not in GRADIENT_STATS]))
                      for u in self.units}
        self._pending: list[tuple[str, int, torch.Tensor]] = []  # activations whose gradient is awaited
        for unit, wanted in self.names.items():
            if set(wanted) - set(STAT_NAMES):
                raise ValueError(f"Unknown statistics {sorted(set(wanted) - set(STAT_NAMES))}; choose from {STAT_NAMES}.")
        self._handles = []

    def _hook(self, unit: str, layer: int):
        def hook(module, args):
            x = args[0]
            mask = self.token_mask
            if mask is None:
                raise RuntimeError("StatsCollector.token_mask must be set before each forward pass.")
            wants_gradient = any(n in GRADIENT_STATS for n in self.names[unit])
            if wants_gradient:
                x.retain_grad()  # read after the batch's backward pass (add_gradients)
                self._pending.append((unit, layer, x))
            with torch.no_grad():
                sums = _sequence_sums(x.detach().reshape(*mask.shape, x.shape[-1]), mask, self.names[unit])
                if wants_gradient:
                    sums[[STAT_NAMES.index(n) for n in GRADIENT_STATS]] = 0.0  # filled in by add_gradients
                self._add(unit, layer, sums)

        return hook

    def _add(self, unit: str, layer: int, sums: torch.Tensor) -> None:
        target = self.stats.sums[unit][:, layer]
        sums = sums.to(target.device)
        keep = self.kept.get(unit, {}).get(layer)
        if keep is None:
            target += sums
        else:
            target[0] += sums[0, 0]
            target[1:, keep.to(target.device)] += sums[1:]

    @torch.no_grad()
    def add_gradients(self) -> None:
        """After a batch's backward pass: the gradient sums of the activations the hooks kept."""
        mask = self.token_mask
        weights = mask.to(torch.float64)
        for unit, layer, x in self._pending:
            a = x.detach().reshape(*mask.shape, x.shape[-1]).double()
            g = torch.zeros_like(a) if x.grad is None else x.grad.reshape(a.shape).double()
            sums = torch.zeros((len(STAT_NAMES), a.shape[-1]), dtype=torch.float64, device=a.device)
            sums[STAT_NAMES.index("sum_grad")] = torch.einsum("bt,btw->w", weights, g)
            sums[STAT_NAMES.index("sum_act_grad")] = torch.einsum("bt,btw->w", weights, a * g)
            self._add(unit, layer, sums)
        self._pending.clear()

    def __enter__(self) -> "StatsCollector":
        for unit in self.units:
            for layer in range(self.model_map.n_layers):
                module = self.model_map.projection(unit, layer)
                self._handles.append(module.register_forward_pre_hook(self._hook(unit, layer)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


def collect(model, model_map: ModelMap, blocks, *, batch_size: int = 8, units: tuple[str, ...] = UNIT_TYPES,
            kept: dict[str, dict[int, torch.Tensor]] | None = None, names: dict[str, tuple[str, ...]] | None = None,
            progress=None) -> UnitStats:
    """Statistics of `units` over `blocks` (see data.Blocks). Runs the decoder only (no LM head logits) unless
    a gradient sum is asked for: then the loss of the scored targets is backpropagated to the activations."""
    with StatsCollector(model_map, device=input_device(model), units=units, kept=kept, names=names) as collector:
        gradients = any(n in GRADIENT_STATS for wanted in collector.names.values() for n in wanted)
        (_backward_passes if gradients else _forward_passes)(model, blocks, collector, batch_size, progress)
    return collector.stats.cpu()


@torch.inference_mode()
def _forward_passes(model, blocks, collector: StatsCollector, batch_size: int, progress) -> None:
    decoder, device = base_model(model), input_device(model)
    for input_ids, attention_mask in blocks.batches(batch_size):
        input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
        collector.token_mask = attention_mask.bool()
        decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        if progress is not None:
            progress(int(attention_mask.sum()))


@contextmanager
def _gradients_reach_activations_only(model):
    """Every weight frozen (none gets a gradient); the embedding output requires one, so activations do."""
    frozen = [p for p in model.parameters() if p.requires_grad]
    for parameter in frozen:
        parameter.requires_grad_(False)
    model.enable_input_require_grads()  # transformers' public switch (a hook on the input embeddings)
    try:
        with torch.enable_grad():
            yield
    finally:
        model.disable_input_require_grads()
        for parameter in frozen:
            parameter.requires_grad_(True)


def _backward_passes(model, blocks, collector: StatsCollector, batch_size: int, progress, chunk: int = 512) -> None:
    decoder, device = base_model(model), input_device(model)
    with _gradients_reach_activations_only(model):
        for start in range(0, len(blocks), batch_size):
            end = min(start + batch_size, len(blocks))
            input_ids = blocks.input_ids[start:end].to(device)
            attention_mask = blocks.attention_mask[start:end].to(device)
            collector.token_mask = attention_mask.bool()
            hidden = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
            scored, _ = blocks.targets(start, end)
            scored = scored.to(device)
            rows, targets = hidden[:, :-1][scored], input_ids[:, 1:][scored]
            if targets.numel():
                # The loss's gradient at the final hidden states, logits a chunk at a time; then one backward
                # pass through the decoder.
                leaf = rows.detach().requires_grad_(True)
                for c in range(0, targets.numel(), chunk):
                    logits = lm_head_logits(model, leaf[c : c + chunk])
                    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # bf16 -> f32; f64 stays
                    torch.nn.functional.cross_entropy(logits, targets[c : c + chunk], reduction="sum").backward()
                rows.backward(leaf.grad)
            collector.add_gradients()
            if progress is not None:
                progress(int(attention_mask.sum()))


def counts_only(model_map: ModelMap, blocks, units: tuple[str, ...], progress=None) -> UnitStats:
    """What `collect` returns when no sum is needed (random scoring): token counts, no forward pass."""
    result = UnitStats.zeros({u: s for u, s in model_map.shapes().items() if u in units})
    for tensor in result.sums.values():
        tensor[1:] = float("nan")
        tensor[0] = blocks.n_tokens
    if progress is not None:
        progress(blocks.n_tokens)
    return result


def save_stats(stats: UnitStats, path) -> None:
    """safetensors, float64: resuming a `--no-recollect` run reuses them bit for bit."""
    from safetensors.torch import save_file

    save_file({u: t.contiguous() for u, t in stats.sums.items()}, str(path))


def load_stats(path) -> UnitStats:
    from safetensors.torch import load_file

    return UnitStats(load_file(str(path)))
