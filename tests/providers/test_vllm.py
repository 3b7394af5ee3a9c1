"""`provider: vllm`: one line where vLLM or a GPU is missing; on a GPU, the same greedy answers
and the same likelihood ranking as `provider: transformers` on the same model and suite."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from ..conftest import Repo

HAS_GPU = False
if importlib.util.find_spec("torch") is not None:
    import torch

    HAS_GPU = torch.cuda.is_available()
ON_GPU = HAS_GPU and importlib.util.find_spec("vllm") is not None
needs_gpu = pytest.mark.skipif(not ON_GPU, reason="vLLM needs an NVIDIA GPU and `pip install 'promptci-gate[vllm]'`")


def promptci(repo: Repo, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "promptci", "-C", str(repo.path), *args]
    return subprocess.run(command, capture_output=True, text=True, env=dict(os.environ), timeout=900)


@pytest.mark.skipif(ON_GPU, reason="this machine runs vLLM")
def test_without_vllm_or_a_gpu_the_provider_says_so_in_one_line(repo: Repo) -> None:
    config = repo.path / "promptci.yaml"
    config.write_text(config.read_text().replace("model:\n", "model:\n  provider: vllm\n", 1))
    done = promptci(repo, "eval", "sentiment", "--no-cache")
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "provider: vllm needs" in errors[0] and ("vLLM" in errors[0] or "CUDA GPU" in errors[0])


def outputs(repo: Repo) -> dict[str, list[str]]:
    with duckdb.connect(str(repo.path / ".promptci/results.duckdb"), read_only=True) as db:
        rows = db.execute("SELECT model_id, list(output ORDER BY case_id) FROM results GROUP BY model_id").fetchall()
    return {str(m): list(o) for m, o in rows}


@needs_gpu
def test_vllm_gives_the_greedy_answers_the_transformers_provider_gives(repo: Repo) -> None:
    local = promptci(repo, "eval", "sentiment", "--no-cache", "--model", "transformers:")
    config = repo.path / "promptci.yaml"
    config.write_text(config.read_text().replace("model:\n", "model:\n  provider: vllm\n", 1))
    served = promptci(repo, "eval", "sentiment", "--no-cache", "-o", "vllm.json")
    assert served.returncode == local.returncode, served.stderr
    found = outputs(repo)
    (vllm_id,) = [m for m in found if m.startswith("vllm:")]
    (local_id,) = [m for m in found if not m.startswith("vllm:")]
    same = sum(a == b for a, b in zip(found[vllm_id], found[local_id], strict=True))
    assert same == len(found[local_id]), f"{same} of {len(found[local_id])} answers agree"
    assert json.loads(Path(repo.path / "vllm.json").read_text())["results"]
