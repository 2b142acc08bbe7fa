"""Which device and precision a command runs on, resolved once at the edge.

``resolve_device`` turns ``--device`` (cpu, cuda, cuda:N, auto) into a checked
``torch.device``; ``parse_dtype`` turns ``--dtype`` (or its absence) into the inference
precision for that device. Both are used by the command line and by the tools that
assemble the same pieces as a command (``serve.assemble``).
"""

from __future__ import annotations

import argparse
import sys

import torch

from neural_engine.errors import EngineError

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


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


def parse_dtype(args: argparse.Namespace, device: torch.device) -> torch.dtype:
    if getattr(args, "dtype", None):
        return DTYPES[args.dtype]
    return torch.bfloat16 if device.type == "cuda" else torch.float32
