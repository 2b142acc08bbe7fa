"""Triton kernels for the rolling step, behind one dispatch point.

The functions here are what the engine calls. Each picks, per call, the Triton kernel
or its PyTorch reference (same signature, same result within rounding):

- ``stream_attention``: attention of the pass's queries over one layer's KV cache,
  keys rotated on the fly, whole masked-out key frames skipped (``kernels.attention``);
- ``modulated_layernorm`` and ``gated_residual_layernorm``: adaLN's LayerNorm with its
  per-frame shift and scale, optionally after the gated residual (``kernels.adaln``);
- ``norm_rotate``: the queries' RMS norm and rotary rotation (``kernels.rope``).

Which one runs: ``backend()`` is the name set by ``use(name)`` (a context manager for
tests and benchmarks), else the ``KERNELS_BACKEND`` environment variable, else
``auto``.

- ``auto``: Triton when every tensor is on a CUDA device and Triton imports; the
  reference otherwise (always on the CPU, whatever ``TRITON_INTERPRET`` says);
- ``triton``: always Triton; CPU tensors need ``TRITON_INTERPRET=1`` (the interpreter);
- ``reference``: always PyTorch.

The folder is installed as ``neural_engine_kernels`` (``kernels`` on PyPI is another
project), and a source checkout loads it under that name through
``neural_engine.model.dispatch.fused_module``; its modules import each other
relatively, so the name is the installer's choice. Importing it imports neither Triton
nor the kernel modules; the first call does. The package knows nothing about the
engine: shapes and conventions are in each module's docstring, and tests pin them to
the engine's own modules.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import torch

from .jit import available, interpreting, triton_importable

BACKENDS = ("auto", "triton", "reference")
_chosen: str | None = None

__all__ = ["BACKENDS", "available", "backend", "interpreting", "triton_importable", "use",
           "uses_triton", "stream_attention", "modulated_layernorm",
           "gated_residual_layernorm", "norm_rotate"]


def backend() -> str:
    """The backend in force: ``use()``'s, else ``$KERNELS_BACKEND``, else ``auto``."""
    name = _chosen or os.environ.get("KERNELS_BACKEND", "") or "auto"
    if name not in BACKENDS:
        raise ValueError(f"KERNELS_BACKEND={name!r}: expected one of {', '.join(BACKENDS)}")
    return name


@contextmanager
def use(name: str) -> Iterator[None]:
    """Run the body with backend ``name`` (``auto``, ``triton`` or ``reference``)."""
    global _chosen
    if name not in BACKENDS:
        raise ValueError(f"unknown kernels backend {name!r}: expected one of "
                         f"{', '.join(BACKENDS)}")
    before, _chosen = _chosen, name
    try:
        yield
    finally:
        _chosen = before


def uses_triton(*tensors: torch.Tensor) -> bool:
    """Whether a call on these tensors runs the Triton kernel under the current backend."""
    name = backend()
    if name == "reference":
        return False
    on_cuda = all(t.is_cuda for t in tensors)
    if name == "auto":
        return on_cuda and triton_importable()
    if not triton_importable():
        raise RuntimeError("kernels backend 'triton' needs the triton package")
    if not on_cuda and not interpreting():
        raise RuntimeError("kernels backend 'triton' on CPU tensors needs TRITON_INTERPRET=1 "
                           "(Triton's interpreter)")
    return True


def stream_attention(q, k, v, key_cos, key_sin, frame_mask, tokens_per_frame: int,
                     scale: float | None = None, out: torch.Tensor | None = None
                     ) -> torch.Tensor:
    """(B, H, Nq, hd) attention over one layer's cache; see ``kernels.attention``."""
    from . import attention
    run = (attention.stream_attention if uses_triton(q, k, v)
           else attention.stream_attention_reference)
    return run(q, k, v, key_cos, key_sin, frame_mask, tokens_per_frame, scale, out)


def modulated_layernorm(x, shift, scale, eps: float = 1e-6,
                        out: torch.Tensor | None = None) -> torch.Tensor:
    """LayerNorm(x)·(1 + scale) + shift for x (B, F, P, D); see ``kernels.adaln``."""
    from . import adaln
    run = adaln.modulated_layernorm if uses_triton(x) else adaln.modulated_layernorm_reference
    return run(x, shift, scale, eps, out)


def gated_residual_layernorm(x, gate, h, shift, scale, eps: float = 1e-6,
                             out_x: torch.Tensor | None = None,
                             out: torch.Tensor | None = None
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """x + gate·h, and its modulated LayerNorm; see ``kernels.adaln``."""
    from . import adaln
    run = (adaln.gated_residual_layernorm if uses_triton(x, h)
           else adaln.gated_residual_layernorm_reference)
    return run(x, gate, h, shift, scale, eps, out_x, out)


def norm_rotate(x, weight, cos, sin, eps: float = 1e-6,
                out: torch.Tensor | None = None) -> torch.Tensor:
    """RMS norm then rotary rotation of x (B, H, N, hd); see ``kernels.rope``."""
    from . import rope
    run = rope.norm_rotate if uses_triton(x) else rope.norm_rotate_reference
    return run(x, weight, cos, sin, eps, out)
