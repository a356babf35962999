"""Shared helpers for the benchmarks: machine facts, peak memory, child processes, the taker venv."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
TAKER_VENV = BENCH / ".venv-taker"
TAKER_VERSION = "1.2.3"
TORCH_VERSION = "2.13.0"  # the CPU wheel; an unpinned torch would pull a multi-GB CUDA build

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "WANDB_MODE": "disabled", "WANDB_SILENT": "true", "TQDM_DISABLE": "1",
               "TOKENIZERS_PARALLELISM": "false"}


def offline_env() -> dict:
    env = dict(os.environ)
    env.update(OFFLINE_ENV)
    return env


def rss_peak_mib() -> float:
    """High-water mark of this process's resident set (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_now_mib() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    mem = float("nan")
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) / 2**20
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_gib": round(mem, 1), "load_1min": round(load, 2),
            "python": platform.python_version()}


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for p in ("separ-eval", "torch", "transformers", "datasets", "lm_eval"):
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            pass
    return out


def run_child(argv: list[str], out_json: Path, *, log: Path, python: str | None = None) -> dict:
    """Run one measured phase in its own process (so peaks are separate); returns its JSON."""
    cmd = [python or sys.executable, *argv]
    started = time.perf_counter()
    with open(log, "w") as handle:
        proc = subprocess.run(cmd, stdout=handle, stderr=subprocess.STDOUT, env=offline_env(), cwd=ROOT)
    if proc.returncode != 0:
        tail = "".join(open(log, errors="replace").readlines()[-30:])
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}); log {log}:\n{tail}")
    result = json.loads(Path(out_json).read_text())
    result["process_wall_s"] = round(time.perf_counter() - started, 3)
    return result


def ensure_taker_venv(log=print) -> Path:
    """bench/.venv-taker with taker from PyPI; torch pinned first, transformers/datasets as separ-eval's."""
    python = TAKER_VENV / "bin" / "python"
    marker = TAKER_VENV / ".installed"
    from importlib.metadata import version

    want = f"taker=={TAKER_VERSION} torch=={TORCH_VERSION} transformers=={version('transformers')} datasets=={version('datasets')}"
    if marker.exists() and marker.read_text() == want:
        return python
    log(f"Installing taker into {TAKER_VENV} ({want}); takes a few minutes the first time.")
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(TAKER_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, f"torch=={TORCH_VERSION}"], check=True)
    # taker asks for transformers>=4.45.2 and datasets>=2.9: the same releases separ-eval runs on
    # keep the modelling code identical, so the comparison measures the two tools, not transformers.
    subprocess.run([*pip, f"taker=={TAKER_VERSION}", f"torch=={TORCH_VERSION}",
                    f"transformers=={version('transformers')}", f"datasets=={version('datasets')}"], check=True)
    marker.write_text(want)
    return python
