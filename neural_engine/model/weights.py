"""World-model weights on disk: safetensors with the configuration inside, and manifests.

A weights file is a plain safetensors file whose metadata carries the model's
configuration as JSON, so the file alone rebuilds the model; nothing in it is
executed. Shipped weights (``assets/<game>/``) also have a ``manifest.json`` with the
sha256 of every file, how the model was trained, and its measured metrics; loading
checks the hashes, the configuration and every tensor's name and shape, and says
exactly what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from neural_engine import schema
from neural_engine.errors import EngineError
from neural_engine.files import publish
from neural_engine.model.config import WorldModelConfig
from neural_engine.model.world import WorldModel

FORMAT = "neural-engine/world-model/1"
WEIGHTS_NAME = "world_model.safetensors"
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
                     info: dict[str, Any] | None = None) -> Path:
    """Write the model's weights (floating tensors cast to ``dtype``) with its config."""
    path = Path(path)
    tensors = {k: v.to(dtype) if v.is_floating_point() else v
               for k, v in model.state_dict().items()}
    metadata = {"format": FORMAT, "config": json.dumps(schema.to_dict(model.config)),
                "info": json.dumps(info or {})}
    atomic_save(tensors, path, metadata)
    return path


def read_config(path: str | Path) -> tuple[WorldModelConfig, dict[str, Any]]:
    """The configuration (and training info) stored in a weights file."""
    path = Path(path)
    if not path.is_file():
        raise EngineError("weights file not found", where=str(path))
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise EngineError(f"not a readable safetensors file ({exc})", where=str(path)) from None
    if metadata.get("format") != FORMAT or "config" not in metadata:
        raise EngineError("not a neural-engine world model (no configuration inside)",
                          where=str(path))
    try:
        raw = json.loads(metadata["config"])
        info = json.loads(metadata.get("info", "{}"))
    except ValueError as exc:
        raise EngineError(f"corrupt configuration in weights: {exc}", where=str(path)) from None
    return schema.fill(WorldModelConfig, raw, name=f"{path} (config)"), info


def load_world_model(path: str | Path, device: torch.device | str = "cpu",
                     dtype: torch.dtype = torch.float32) -> WorldModel:
    """Rebuild a world model from a weights file, checking every tensor."""
    path = Path(path)
    config, _ = read_config(path)
    model = WorldModel(config)
    expected = model.state_dict()
    problems, tensors = [], {}
    try:
        with safe_open(str(path), framework="pt") as f:
            names = set(f.keys())
            for name, ref in expected.items():
                if name not in names:
                    problems.append(f"missing tensor {name}")
                    continue
                tensor = f.get_tensor(name)
                if tensor.shape != ref.shape:
                    problems.append(f"tensor {name} has shape {tuple(tensor.shape)}, "
                                    f"the configuration needs {tuple(ref.shape)}")
                tensors[name] = tensor
            problems += [f"unexpected tensor {n}" for n in sorted(names - set(expected))]
    except (SafetensorError, OSError) as exc:
        raise EngineError(f"corrupt weights file ({exc})", where=str(path)) from None
    if problems:
        raise EngineError("; ".join(problems[:5]) + (" …" if len(problems) > 5 else ""),
                          where=str(path))
    bad = [n for n, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise EngineError(f"weights hold NaN or infinite values (e.g. {bad[0]})", where=str(path))
    model.load_state_dict(tensors)
    return model.to(device=device, dtype=dtype).eval()


# -- shipped assets ---------------------------------------------------------------
def shipped_weights(game: str) -> Path | None:
    """The shipped weights of a game, if there are any."""
    folder = ASSETS_ROOT / game
    return folder / WEIGHTS_NAME if (folder / MANIFEST_NAME).is_file() else None


def write_manifest(folder: Path, info: dict[str, Any]) -> Path:
    """Write manifest.json listing every weights file in ``folder`` with its sha256."""
    files = {p.name: {"sha256": sha256(p), "bytes": p.stat().st_size}
             for p in sorted(folder.glob("*.safetensors"))}
    manifest = {"format": FORMAT, "files": files, **info}
    tmp = folder / (MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, folder / MANIFEST_NAME)
    return folder / MANIFEST_NAME


def verify_manifest(folder: Path) -> dict[str, Any]:
    """Check every file the manifest lists against its sha256; return the manifest."""
    path = folder / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text())
        files = manifest["files"]
    except FileNotFoundError:
        raise EngineError("no manifest.json beside the weights", where=str(folder)) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EngineError(f"unreadable manifest ({exc})", where=str(path)) from None
    for name, entry in files.items():
        file = folder / name
        if not file.is_file():
            raise EngineError("listed in the manifest but missing", where=str(file))
        if sha256(file) != entry.get("sha256"):
            raise EngineError("sha256 does not match the manifest: the file is corrupt or "
                              "was changed; restore it from the repository", where=str(file))
    return manifest


# -- a trained autoencoder on its own (between the training stages) -----------------
AE_FORMAT = "neural-engine/autoencoder/1"


def save_autoencoder(path: str | Path, autoencoder, info: dict[str, Any] | None = None) -> Path:
    path = Path(path)
    metadata = {"format": AE_FORMAT, "config": json.dumps(schema.to_dict(autoencoder.cfg)),
                "info": json.dumps(info or {})}
    atomic_save(autoencoder.state_dict(), path, metadata)
    return path


def load_autoencoder(path: str | Path, device: torch.device | str = "cpu"):
    """An autoencoder file, or the autoencoder inside a world-model file."""
    from neural_engine.model.autoencoder import Autoencoder
    from neural_engine.model.config import AutoencoderConfig

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {n: f.get_tensor(n) for n in f.keys()}
    except FileNotFoundError:
        raise EngineError("autoencoder weights not found", where=str(path)) from None
    except (SafetensorError, OSError) as exc:
        raise EngineError(f"not a readable safetensors file ({exc})", where=str(path)) from None
    if metadata.get("format") == FORMAT:        # a whole world model: take its autoencoder
        world = load_world_model(path, device=device)
        return world.autoencoder
    if metadata.get("format") != AE_FORMAT:
        raise EngineError("not a neural-engine autoencoder", where=str(path))
    cfg = schema.fill(AutoencoderConfig, json.loads(metadata["config"]), name=str(path))
    model = Autoencoder(cfg)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as exc:
        raise EngineError(f"weights do not fit the configuration: {str(exc).splitlines()[0]}",
                          where=str(path)) from None
    return model.to(device)
