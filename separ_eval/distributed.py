"""Data parallelism through torch.distributed, as started by `torchrun` or `accelerate launch`.

Each rank takes every world_size-th block; statistics and metric counts are
sums, so one all-reduce makes them identical on every rank, and every rank
then prunes the same units. Only rank 0 writes files.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def launched() -> bool:
    """True under torchrun / accelerate launch (they set WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(device: str) -> str:
    """Join the process group if launched; returns the device this rank should use."""
    if not launched() or (dist.is_available() and dist.is_initialized()):
        return device
    use_cuda = device.startswith("cuda") and torch.cuda.is_available()
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if use_cuda:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        return f"cuda:{local_rank}"
    return device


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    return rank() == 0


def shard(blocks):
    """This rank's share of a data.Blocks."""
    return blocks.shard(rank(), world_size()) if active() else blocks


def barrier() -> None:
    if active():
        dist.barrier()


def all_reduce(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of `tensor` over all ranks (itself when not distributed)."""
    if active():
        dist.all_reduce(tensor)
    return tensor
