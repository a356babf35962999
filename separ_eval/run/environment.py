"""Where a run ran: package versions, the device, and when; recorded in every results file."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version

import torch

from .. import __version__


def device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"{device} ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def environment(device: str) -> dict:
    import transformers

    try:
        lm_eval_version = version("lm_eval")
    except PackageNotFoundError:
        lm_eval_version = "unknown"
    return {
        "separ_eval": __version__,
        "lm_eval": lm_eval_version,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": device_name(device),
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
