"""The package as users get it: a wheel built from the checkout, installed into a fresh virtual environment,
used from a folder outside the checkout (tasks, targets and corpora must come from the wheel itself)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TORCH = os.environ.get("SEPAR_EVAL_TORCH", "2.13.0")  # the CPU wheel; an unpinned torch is a multi-GB CUDA build


def _run(*args, cwd, timeout=1800, env=None):
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **(env or {})})
    assert done.returncode == 0, f"{' '.join(map(str, args))}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(bin folder of a fresh venv holding only the built wheel and its dependencies, a folder outside the checkout)."""
    work = tmp_path_factory.mktemp("wheel")
    _run(sys.executable, "-m", "pip", "wheel", ROOT, "--no-deps", "--quiet", "-w", work / "dist", cwd=work)
    [wheel] = (work / "dist").glob("separ_eval-*.whl")
    _run(sys.executable, "-m", "venv", work / "venv", cwd=work)
    python = work / "venv" / "bin" / "python"
    _run(python, "-m", "pip", "install", "--quiet", f"torch=={TORCH}", cwd=work)
    _run(python, "-m", "pip", "install", "--quiet", wheel, cwd=work)
    outside = work / "elsewhere"
    outside.mkdir()
    return work / "venv" / "bin", outside


@pytest.mark.slow
def test_the_wheel_ships_tasks_targets_and_corpora(installed):
    bin_dir, outside = installed
    where = _run(bin_dir / "python", "-c", "import separ_eval.resources as r; print(r.tasks_dir())", cwd=outside)
    assert where.strip().startswith(str(bin_dir.parent)) and str(ROOT) not in where  # from the wheel, not the checkout
    targets = _run(bin_dir / "separ-eval", "targets", cwd=outside, env={"COLUMNS": "200"})
    assert "code" in targets and "prose" in targets and "github-code" in targets
    checked = _run(bin_dir / "separ-eval", "tasks", "--check", cwd=outside, env={"COLUMNS": "250"})
    assert "separ_code_tokens" in checked and "error" not in checked and checked.count("OK") >= 8


@pytest.mark.slow
def test_a_one_step_run_on_a_tiny_model_from_the_wheel(installed, tiny_dir):
    bin_dir, outside = installed
    output = _run(bin_dir / "separ-eval", "--model", tiny_dir, "--prune-target", "code", "--steps", 1,
                  "--collect-tokens", 1000, "--eval-tokens", 600, "--block-len", 128, "--output", "out",
                  cwd=outside, env={"COLUMNS": "200", "OMP_NUM_THREADS": "1"})
    assert "Separability" in output
    [results] = (outside / "out").glob("*.json")
    checked = _run(bin_dir / "separ-eval", "validate", results, cwd=outside)
    assert checked.startswith("ok: ")
