"""Training checkpoints: one safetensors file holding everything a resume needs.

Tensors: every module's weights (``model.<name>.<param>``), every optimizer's state
(``optim.<name>.<param index>.<key>``) and the random number generators
(``rng.cpu``, ``rng.cuda.<i>``; under torchrun every rank's, ``rng.rank<r>.cpu`` and
``rng.rank<r>.cuda.<its device>``). Metadata (JSON): the step, the data position (every
rank's, under torchrun), elapsed time, the optimizers' param groups and anything else
the stage keeps. Written to a temporary name and renamed, so a kill at any moment
leaves the previous checkpoint whole. Nothing is unpickled on load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from neural_engine.errors import EngineError
from neural_engine.model.weights import atomic_save


def _optim_tensors(name: str, optim: torch.optim.Optimizer) -> tuple[dict, list]:
    state = optim.state_dict()
    tensors = {}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            tensors[f"optim.{name}.{index}.{key}"] = torch.as_tensor(value)
    return tensors, state["param_groups"]


def rng_state(local: int | None = None) -> dict[str, torch.Tensor]:
    """This process's random state: the CPU generator's and, on CUDA, every device's
    (``local`` None: one process) or only this rank's device ``local``."""
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        devices = range(torch.cuda.device_count()) if local is None else [local]
        for i in devices:
            state[f"cuda.{i}"] = torch.cuda.get_rng_state(i)
    return state


def _rng_prefix(rank: int, ranks: int) -> str:
    return "rng." if ranks == 1 else f"rng.rank{rank}."


def save_checkpoint(path: Path, modules: dict[str, nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer], meta: dict[str, Any],
                    rngs: list[dict[str, torch.Tensor]] | None = None) -> None:
    """Write the checkpoint; ``rngs``: every rank's ``rng_state`` (default: this
    process's alone)."""
    tensors: dict[str, torch.Tensor] = {}
    groups = {}
    for name, module in modules.items():
        for key, value in module.state_dict().items():
            tensors[f"model.{name}.{key}"] = value
    for name, optim in optimizers.items():
        more, groups[name] = _optim_tensors(name, optim)
        tensors.update(more)
    rngs = rngs or [rng_state()]
    for rank, state in enumerate(rngs):
        for key, value in state.items():
            tensors[_rng_prefix(rank, len(rngs)) + key] = value
    atomic_save(tensors, path, {"meta": json.dumps(meta), "param_groups": json.dumps(groups)})


def _restore_rng(tensors: dict[str, torch.Tensor], rank: int) -> None:
    """Restore rank ``rank``'s random state if the checkpoint holds it (a rank the
    checkpoint's run did not have keeps its own)."""
    for prefix in [f"rng.rank{rank}."] + (["rng."] if rank == 0 else []):
        state = {n[len(prefix):]: t for n, t in tensors.items() if n.startswith(prefix)}
        if "cpu" not in state:
            continue
        torch.set_rng_state(state["cpu"])
        cuda = {int(k[5:]): t for k, t in state.items()
                if k.startswith("cuda.") and k[5:].isdigit()}
        if torch.cuda.is_available() and cuda and max(cuda) < torch.cuda.device_count():
            for i, t in cuda.items():
                torch.cuda.set_rng_state(t, i)
        return


def load_checkpoint(path: Path, modules: dict[str, nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer], rank: int = 0
                    ) -> dict[str, Any]:
    """Restore modules, optimizers and rank ``rank``'s RNGs in place; return the stage's
    metadata."""
    try:
        with safe_open(str(path), framework="pt") as f:
            names = list(f.keys())
            tensors = {n: f.get_tensor(n) for n in names}
            metadata = f.metadata() or {}
        meta = json.loads(metadata["meta"])
        groups = json.loads(metadata["param_groups"])
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        raise EngineError(f"corrupt checkpoint ({exc}); remove it to start afresh",
                          where=str(path)) from None
    for name, module in modules.items():
        prefix = f"model.{name}."
        state = {n[len(prefix):]: t for n, t in tensors.items() if n.startswith(prefix)}
        try:
            module.load_state_dict(state)
        except RuntimeError as exc:
            raise EngineError(f"checkpoint does not fit the model {name!r}: "
                              f"{str(exc).splitlines()[0]}", where=str(path)) from None
    for name, optim in optimizers.items():
        prefix = f"optim.{name}."
        state: dict[int, dict[str, torch.Tensor]] = {}
        for n, t in tensors.items():
            if n.startswith(prefix):
                index, key = n[len(prefix):].split(".", 1)
                state.setdefault(int(index), {})[key] = t
        optim.load_state_dict({"state": state, "param_groups": groups[name]})
    _restore_rng(tensors, rank)
    return meta
