"""Options shared by several commands (device choice), parsed the same way everywhere."""

from __future__ import annotations

import argparse
import sys

import torch

from neural_engine.errors import EngineError


def add_device(parser: argparse.ArgumentParser, default: str = "auto") -> None:
    parser.add_argument("--device", default=default,
                        help=f"cpu, cuda, cuda:N or auto (default: {default})")


def resolve_device(name: str, warn: bool = True) -> torch.device:
    """``auto`` → CUDA when present, else the CPU (with one warning); others checked."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if warn:
            print("warning: no CUDA GPU found; running on the CPU (slow)", file=sys.stderr)
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise EngineError(f"unknown device {name!r} (use cpu, cuda, cuda:N or auto)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EngineError("--device cuda was asked for but no CUDA GPU is available; "
                          "use --device cpu")
    return device
