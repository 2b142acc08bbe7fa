"""World-model weights on disk: safetensors with the configuration inside, and manifests.

A weights file is a plain safetensors file whose metadata carries the model's
configuration as JSON, so the file alone rebuilds the model; nothing in it is
executed. Shipped weights (``assets/<game>/``) also have a ``manifest.json`` with the
sha256 of every file, how the model was trained, and its measured metrics; loading
checks the hashes, the configuration and every tensor's name and shape, and says
exactly what is wrong.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from neural_engine import schema
from neural_engine.errors import EngineError
from neural_engine.files import publish
from neural_engine.model.config import (PARAMETER_HEADROOM, WorldModelConfig, largest_config,
                                        size_problems)
from neural_engine.model.header import Header, read_header, tensor_problems
from neural_engine.model.quantize import quantize_state, read_tensors
from neural_engine.model.world import WorldModel

FORMAT = "neural-engine/world-model/1"
WEIGHTS_NAME = "world_model.safetensors"
# a world model's teacher, shipped as its training chain's checkpoint (not played)
TEACHER_NAME = "teacher.safetensors"
MANIFEST_NAME = "manifest.json"
ASSETS_ROOT = Path(__file__).resolve().parents[2] / "assets"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp),
                  metadata=metadata)
        publish(tmp, path)
    except (OSError, SafetensorError) as exc:
        tmp.unlink(missing_ok=True)
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise EngineError(f"cannot write weights: {reason}", where=str(path)) from None


def save_world_model(path: str | Path, model: WorldModel, dtype: torch.dtype = torch.float16,
                     info: dict[str, Any] | None = None, int8: bool = False) -> Path:
    """Write the model's weights (floating tensors cast to ``dtype``) with its config;
    ``int8``: its weight matrices in 8 bits with a scale per row (``model.quantize``)."""
    path = Path(path)
    state = model.state_dict()
    if int8:
        tensors = quantize_state(state, {n for n, _ in model.named_parameters()}, dtype)
    else:
        tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    metadata = {"format": FORMAT, "config": json.dumps(schema.to_dict(model.config)),
                "info": json.dumps(info or {})}
    atomic_save(tensors, path, metadata)
    return path


def _config_of(header: Header, where: str) -> tuple[WorldModelConfig, dict[str, Any]]:
    metadata = header.metadata
    if metadata.get("format") != FORMAT or "config" not in metadata:
        raise EngineError("not a neural-engine world model (no configuration inside)",
                          where=where)
    try:
        raw = json.loads(metadata["config"])
        info = json.loads(metadata.get("info", "{}"))
    except (ValueError, RecursionError) as exc:
        raise EngineError(f"corrupt configuration in weights: {exc}", where=where) from None
    if not isinstance(raw, dict) or not isinstance(info, dict):
        raise EngineError("corrupt configuration in weights (not a table)", where=where)
    return schema.fill(WorldModelConfig, raw, name=f"{where} (config)"), info


def read_config(path: str | Path) -> tuple[WorldModelConfig, dict[str, Any]]:
    """The configuration (and training info) stored in a weights file (header only)."""
    return _config_of(read_header(path), str(path))


def expected_tensors(config: WorldModelConfig) -> dict[str, tuple[tuple[int, ...], bool]]:
    """Name → (shape, floating point) of every tensor ``config`` implies, found by
    building the model on the meta device (nothing is allocated)."""
    return dict(_expected(config))


@functools.lru_cache(maxsize=16)
def _expected(config: WorldModelConfig) -> dict[str, tuple[tuple[int, ...], bool]]:
    with torch.device("meta"):
        state = WorldModel(config).state_dict()
    return {n: (tuple(t.shape), t.is_floating_point()) for n, t in state.items()}


def _parameters(config: WorldModelConfig) -> int:
    return sum(math.prod(shape) for shape, _ in _expected(config).values())


def check_weights(path: str | Path) -> tuple[WorldModelConfig, dict[str, Any]]:
    """A world-model file's configuration, once everything that can be known without
    allocating the model holds: a well-formed header, a configuration no larger than
    the registry allows, and exactly the tensors (names, shapes, float dtypes) it
    implies. Returns the configuration and the training info."""
    path = Path(path)
    header = read_header(path)
    config, info = _config_of(header, str(path))
    problems = size_problems(config)
    if not problems:
        largest = _parameters(largest_config(config))
        count = _parameters(config)
        if count > PARAMETER_HEADROOM * largest:
            problems.append(f"{count / 1e6:.1f} M parameters is more than the largest model "
                            f"size allows ({PARAMETER_HEADROOM * largest / 1e6:.1f} M)")
    if not problems:
        problems = tensor_problems(header, expected_tensors(config))
    if problems:
        raise EngineError("; ".join(problems[:5]) + (" …" if len(problems) > 5 else ""),
                          where=str(path))
    return config, info


def load_world_model(path: str | Path, device: torch.device | str = "cpu",
                     dtype: torch.dtype = torch.float32) -> WorldModel:
    """Rebuild a world model from a weights file: checked first (``check_weights``),
    then allocated, every tensor read and checked to be finite."""
    path = Path(path)
    config, _ = check_weights(path)
    model = WorldModel(config)
    try:
        with safe_open(str(path), framework="pt") as f:
            tensors = read_tensors(f, model.state_dict())
    except (SafetensorError, OSError) as exc:
        raise EngineError(f"corrupt weights file ({exc})", where=str(path)) from None
    bad = [n for n, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise EngineError(f"weights hold NaN or infinite values (e.g. {bad[0]})", where=str(path))
    model.load_state_dict(tensors)
    return model.to(device=device, dtype=dtype).eval()


# -- shipped assets ---------------------------------------------------------------
MAX_MANIFEST_BYTES = 1 << 20
MAX_ASSET_BYTES = 256 << 20


def shipped_weights(game: str) -> Path | None:
    """The shipped weights of a game, verified (``verify_manifest``); None when the game
    ships none: no ``assets/<game>/``, or one holding neither weights nor a manifest.
    A folder that keeps only a training checkpoint (the teacher of a world model still
    in training, ``neural-engine ship --teacher`` alone) ships none either.
    Weights without a manifest, or a manifest that does not hold, are an EngineError:
    the engine falls back to the simulator only when asked (``--engine sim``)."""
    folder = ASSETS_ROOT / game
    if not folder.is_dir() or (not (folder / MANIFEST_NAME).exists()
                               and not any(folder.glob("*.safetensors"))):
        return None
    listed = verify_manifest(folder)
    if WEIGHTS_NAME not in listed:
        if TEACHER_NAME in listed:
            return None
        raise EngineError(f"the manifest lists no {WEIGHTS_NAME}", where=str(folder))
    return folder / WEIGHTS_NAME


def write_manifest(folder: Path, info: dict[str, Any]) -> Path:
    """Write manifest.json listing every file in ``folder`` with its sha256."""
    files = {p.name: {"sha256": sha256(p), "bytes": p.stat().st_size}
             for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST_NAME}
    manifest = {"format": FORMAT, "files": files, **info}
    tmp = folder / (MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, folder / MANIFEST_NAME)
    return folder / MANIFEST_NAME


def _manifest_files(path: Path) -> dict[str, dict[str, Any]]:
    """The ``files`` table of a manifest, its shape checked; EngineError naming it."""
    hint = "; restore it from the repository, or play the simulator with --engine sim"
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        raise EngineError(f"the shipped weights have no {MANIFEST_NAME}{hint}",
                          where=str(path.parent)) from None
    except OSError as exc:
        raise EngineError(f"cannot read: {exc.strerror or exc}", where=str(path)) from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise EngineError(f"larger than {MAX_MANIFEST_BYTES >> 20} MiB{hint}", where=str(path))
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise EngineError(f"not JSON ({exc}){hint}", where=str(path)) from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        raise EngineError(f"a manifest needs a 'files' table{hint}", where=str(path))
    for name, entry in files.items():
        if (not name or name in (".", "..") or "/" in name or "\\" in name
                or not name.isprintable()):
            raise EngineError(f"files: {name[:80]!r} is not a file name in this folder",
                              where=str(path))
        if (not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str)
                or type(entry.get("bytes")) is not int):
            raise EngineError(f"files: {name!r} needs a sha256 (text) and bytes (an "
                              f"integer){hint}", where=str(path))
    return files


def verify_manifest(folder: Path) -> dict[str, Any]:
    """Every file in ``folder`` is listed in its manifest, stays in the folder, and has
    the size and sha256 listed; returns the manifest's ``files`` table."""
    path = folder / MANIFEST_NAME
    files = _manifest_files(path)
    real = folder.resolve()
    present = {p.name for p in folder.iterdir() if p.name != MANIFEST_NAME}
    for name in sorted(present - set(files)):
        raise EngineError("not listed in the manifest: a shipped file must be listed and "
                          "verified; remove it or list it with write_manifest",
                          where=str(folder / name))
    for name, entry in files.items():
        file = folder / name
        try:
            info = file.stat()
            inside = file.resolve().parent == real
        except OSError:
            raise EngineError("listed in the manifest but missing", where=str(file)) from None
        if not inside or not file.is_file():
            raise EngineError("listed in the manifest but not a file of this folder",
                              where=str(file))
        if info.st_size != entry["bytes"] or info.st_size > MAX_ASSET_BYTES:
            raise EngineError(f"{info.st_size} bytes, the manifest lists {entry['bytes']}: "
                              "the file is corrupt or was changed; restore it from the "
                              "repository", where=str(file))
        if sha256(file) != entry["sha256"]:
            raise EngineError("sha256 does not match the manifest: the file is corrupt or "
                              "was changed; restore it from the repository", where=str(file))
    return files


# -- a trained autoencoder on its own (between the training stages) -----------------
AE_FORMAT = "neural-engine/autoencoder/1"


def save_autoencoder(path: str | Path, autoencoder, info: dict[str, Any] | None = None) -> Path:
    path = Path(path)
    metadata = {"format": AE_FORMAT, "config": json.dumps(schema.to_dict(autoencoder.cfg)),
                "info": json.dumps(info or {})}
    atomic_save(autoencoder.state_dict(), path, metadata)
    return path


def load_autoencoder(path: str | Path, device: torch.device | str = "cpu"):
    """An autoencoder file, or the autoencoder inside a world-model file (both checked
    against their configuration before anything is allocated)."""
    from neural_engine.model.autoencoder import Autoencoder
    from neural_engine.model.config import AutoencoderConfig, autoencoder_size_problems

    path = Path(path)
    header = read_header(path)
    if header.metadata.get("format") == FORMAT:   # a whole world model: take its autoencoder
        return load_world_model(path, device=device).autoencoder
    if header.metadata.get("format") != AE_FORMAT or "config" not in header.metadata:
        raise EngineError("not a neural-engine autoencoder", where=str(path))
    try:
        raw = json.loads(header.metadata["config"])
    except (ValueError, RecursionError) as exc:
        raise EngineError(f"corrupt configuration: {exc}", where=str(path)) from None
    if not isinstance(raw, dict):
        raise EngineError("corrupt configuration (not a table)", where=str(path))
    cfg = schema.fill(AutoencoderConfig, raw, name=str(path))
    problems = autoencoder_size_problems(cfg, prefix="")
    if not problems:
        with torch.device("meta"):
            state = Autoencoder(cfg).state_dict()
        problems = tensor_problems(header, {n: (tuple(t.shape), t.is_floating_point())
                                            for n, t in state.items()})
    if problems:
        raise EngineError("; ".join(problems[:5]) + (" …" if len(problems) > 5 else ""),
                          where=str(path))
    model = Autoencoder(cfg)
    try:
        with safe_open(str(path), framework="pt") as f:
            model.load_state_dict(read_tensors(f, state))
    except (SafetensorError, OSError) as exc:
        raise EngineError(f"corrupt weights file ({exc})", where=str(path)) from None
    return model.to(device)


def load_model(game: str, weights: str | None, size: str | None, device: torch.device,
               dtype: torch.dtype):
    """Trained weights (named, or the game's shipped ones) or a random model of a size.

    Returns the model and a label saying which it is.
    """
    from neural_engine.games import load_spec
    from neural_engine.model.config import named_config

    if weights is None and size is None:
        shipped = shipped_weights(game)
        if shipped is None:
            raise EngineError(f"no trained weights for game {game!r} in assets/{game}/: "
                              "pass --weights PATH")
        model = load_world_model(shipped, device=device, dtype=dtype)
        return model, f"{shipped.relative_to(shipped.parents[2])} (shipped)"
    if weights is not None:
        model = load_world_model(weights, device=device, dtype=dtype)
        if model.config.game != game:
            raise EngineError(f"weights are for game {model.config.game!r}, not {game!r}",
                              where=weights)
        return model, weights
    spec = load_spec(game)
    config = named_config(size, game, spec.height, spec.width, spec.actions.dim)
    torch.manual_seed(0)
    return WorldModel(config).to(device=device, dtype=dtype).eval(), f"random {size}"
