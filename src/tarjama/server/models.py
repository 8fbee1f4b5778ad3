"""Finding model weights: a hub id (downloaded once) or a local HF directory; CTranslate2 conversions.

Every failure here becomes a `ModelUnavailable` with one line a user can act on, so `tarjama serve`
can exit with that line instead of a traceback.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResolvedModel:
    """A model's weights on local disk, and where they came from."""

    id: str  # as the user named it
    revision: str  # hub commit hash, or "local-<hash of the files>"
    path: str
    role: str


def resolve_model(ref: str, revision: str | None, cache_dir: str, role: str, offline: bool = False) -> ResolvedModel:
    """Local directory as is; otherwise the hub snapshot, downloaded into `cache_dir` if needed
    (with `offline`, only from the cache: a missing model is named, and nothing is fetched)."""
    flag = f"--{role}-model"
    local = Path(ref).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise ModelUnavailable(
                f"{role} model directory {ref} has no config.json: it must be a checkpoint in HF format"
            )
        return ResolvedModel(ref, "local-" + _fingerprint(local), str(local.resolve()), role)
    if ref.startswith((".", "/", "~")) or local.exists():
        raise ModelUnavailable(f"{role} model directory {ref} does not exist; give {flag} an existing directory")
    try:
        from huggingface_hub import snapshot_download

        path = snapshot_download(
            repo_id=ref,
            revision=revision,
            cache_dir=str(Path(cache_dir) / "hub"),
            allow_patterns=["*.json", "*.spm", "*.model", "*.txt", "*.safetensors", "*.bin"],
            local_files_only=offline,
        )
    except Exception as exc:  # network, missing repo, bad revision: all one message
        if offline:
            raise ModelUnavailable(
                f"{role} model '{ref}' is not in the cache {cache_dir}, and --offline forbids fetching it: "
                f"run `tarjama models download {flag} {ref} --cache-dir {cache_dir}` where the hub is reachable"
            ) from None
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelUnavailable(
            f"cannot load {role} model '{ref}' from the Hugging Face hub ({type(exc).__name__}: {reason}). "
            f"Download it where the hub is reachable (hf download {ref} --local-dir ./model) "
            f"and start with {flag} ./model"
        ) from None
    snapshot = Path(path)
    return ResolvedModel(ref, snapshot.name, str(snapshot), role)


def public_model_id(ref: str) -> str:
    """A model as those without a token may see it (GetInfo, responses, metrics labels): a hub id as
    it is, a local directory by its name only, never where it lies on the server."""
    local = Path(ref).expanduser()
    if local.is_dir() or ref.startswith((".", "/", "~")):  # as resolve_model tells a directory from a hub id
        return local.resolve().name or ref
    return ref


def stay_offline() -> None:
    """Keep huggingface_hub and transformers off the network (`--offline`). Call it before they are
    imported: they read these variables once."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"


def check_marian_layout(model_path: str) -> None:
    """Refuse a Marian checkpoint that CTranslate2's converter would get wrong without a word: it drops
    the last vocabulary row as <pad> and starts the decoder from a zero embedding, which is right when
    pad = decoder start = the last id (opus-mt-ar-en: 62833; opus-mt-tc-big-ar-en: 61108, its </s> at
    25894). </s> itself is read by name from the tokenizer, wherever vocab.json puts it."""
    config = json.loads((Path(model_path) / "config.json").read_text())
    if config.get("model_type") != "marian":
        return
    last = int(config["vocab_size"]) - 1
    pad, start = config.get("pad_token_id"), config.get("decoder_start_token_id", config.get("pad_token_id"))
    if not pad == start == last:
        raise ValueError(
            f"CTranslate2 reads Marian checkpoints whose pad and decoder start are the last id ({last}); "
            f"this one has pad {pad} and decoder start {start}"
        )


def _convert(model_path: str, output_dir: str, quantization: str) -> None:
    import ctranslate2
    import transformers

    # CTranslate2's BART loader reads config.normalize_before, which transformers 5 no longer sets on
    # BART configs; BART is post-norm, so False is its value. Supplied here rather than pinning.
    if not hasattr(transformers.BartConfig, "normalize_before"):
        transformers.BartConfig.normalize_before = False
    check_marian_layout(model_path)
    ctranslate2.converters.TransformersConverter(model_path).convert(output_dir, quantization=quantization, force=True)


_children: set[subprocess.Popen[str]] = set()
_children_lock = threading.Lock()


def _convert_in_child(model_path: str, output_dir: str, quantization: str) -> None:
    """`python -m tarjama.server.models` in a child process; its last stderr line is the error."""
    command = [sys.executable, "-m", "tarjama.server.models", model_path, output_dir, quantization]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    with _children_lock:
        _children.add(child)
    try:
        _, errors = child.communicate()
    finally:
        with _children_lock:
            _children.discard(child)
    if child.returncode != 0:
        lines = [line for line in errors.strip().splitlines() if line.strip()]
        raise RuntimeError(lines[-1] if lines else f"the converter exited with code {child.returncode}")


def stop_conversions(timeout: float = 3.0) -> None:
    """End any conversion in progress (the server was told to stop while loading), and reap it."""
    with _children_lock:
        children = list(_children)
    for child in children:
        child.terminate()
    for child in children:
        try:
            child.wait(timeout)  # reaped, not left as a zombie: not every container's init reaps orphans
        except subprocess.TimeoutExpired:
            child.kill()


def _fingerprint(directory: Path) -> str:
    """A short hash of a local checkpoint's file names, sizes and times: changes when the files do."""
    digest = hashlib.sha256()
    for file in sorted(p for p in directory.rglob("*") if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.relative_to(directory)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:12]


def ctranslate2_model_dir(model: ResolvedModel, quantization: str, cache_dir: str) -> Path:
    """The CTranslate2 conversion of `model`, converted once and cached by id, revision and quantization."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "--", model.id.strip("/")).strip("-") or "model"
    target = Path(cache_dir) / "ctranslate2" / f"{slug}--{model.revision}--{quantization}"
    if (target / "model.bin").is_file():
        log.info("using the cached CTranslate2 conversion %s", target)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("converting %s to CTranslate2 (%s) into %s", model.id, quantization, target)
    work = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        # The converter loads the whole float32 checkpoint in torch; doing that in a child process
        # gives the memory back, so the server's peak RSS is the int8 model's, not the converter's,
        # and a server told to stop can end the conversion instead of waiting for it.
        _convert_in_child(model.path, str(work / "model"), quantization)
        # Another process may have finished the same conversion meanwhile; either copy is good.
        try:
            os.replace(work / "model", target)
        except OSError:
            if not (target / "model.bin").is_file():
                raise
    except ModelUnavailable:
        raise
    except Exception as exc:
        raise ModelUnavailable(
            f"cannot convert {model.role} model '{model.id}' to CTranslate2 ({type(exc).__name__}: {exc}); "
            "try --engine torch"
        ) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


if __name__ == "__main__":  # the conversion child: python -m tarjama.server.models SOURCE OUTPUT QUANTIZATION
    try:
        _convert(*sys.argv[1:4])
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
