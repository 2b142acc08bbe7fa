"""Triton kernels for the rolling step, each beside its PyTorch reference.

- ``stream_attention``: attention of the pass's queries over one layer's KV cache,
  keys rotated on the fly, whole masked-out key frames skipped (``kernels.attention``);
- ``modulated_layernorm`` and ``gated_residual_layernorm``: adaLN's LayerNorm with its
  per-frame shift and scale, optionally after the gated residual (``kernels.adaln``);
- ``norm_rotate``: the queries' RMS norm and rotary rotation (``kernels.rope``).

The functions here always run the Triton kernel: compiled on CUDA tensors, and on CPU
tensors through Triton's interpreter (``TRITON_INTERPRET=1``, set before triton is
imported); without triton they raise ImportError. Each module's ``*_reference`` is the
PyTorch twin (same signature, same result within rounding), the oracle of the tests.
The package chooses nothing: which of the two runs is decided in one place,
``neural_engine.model.dispatch`` (its backends and its test override ``forced``).
``available()``, ``triton_importable()`` and ``interpreting()`` say what can run here.

The folder is installed as ``neural_engine_kernels`` (``kernels`` on PyPI is another
project), and a source checkout loads it under that name through
``neural_engine.model.dispatch.fused_module``; its modules import each other
relatively, so the name is the installer's choice. Importing it imports neither Triton
nor the kernel modules; the first call does. The package knows nothing about the
engine: shapes and conventions are in each module's docstring, and tests pin them to
the engine's own modules.
"""

from __future__ import annotations

import torch

from .jit import available, interpreting, require, triton_importable

__all__ = ["available", "interpreting", "triton_importable", "stream_attention",
           "modulated_layernorm", "gated_residual_layernorm", "norm_rotate"]


def stream_attention(q, k, v, key_cos, key_sin, frame_mask, tokens_per_frame: int,
                     scale: float | None = None, out: torch.Tensor | None = None
                     ) -> torch.Tensor:
    """(B, H, Nq, hd) attention over one layer's cache; see ``kernels.attention``."""
    require()
    from . import attention
    return attention.stream_attention(q, k, v, key_cos, key_sin, frame_mask,
                                      tokens_per_frame, scale, out)


def modulated_layernorm(x, shift, scale, eps: float = 1e-6,
                        out: torch.Tensor | None = None) -> torch.Tensor:
    """LayerNorm(x)·(1 + scale) + shift for x (B, F, P, D); see ``kernels.adaln``."""
    require()
    from . import adaln
    return adaln.modulated_layernorm(x, shift, scale, eps, out)


def gated_residual_layernorm(x, gate, h, shift, scale, eps: float = 1e-6,
                             out_x: torch.Tensor | None = None,
                             out: torch.Tensor | None = None
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """x + gate·h, and its modulated LayerNorm; see ``kernels.adaln``."""
    require()
    from . import adaln
    return adaln.gated_residual_layernorm(x, gate, h, shift, scale, eps, out_x, out)


def norm_rotate(x, weight, cos, sin, eps: float = 1e-6,
                out: torch.Tensor | None = None) -> torch.Tensor:
    """RMS norm then rotary rotation of x (B, H, N, hd); see ``kernels.rope``."""
    require()
    from . import rope
    return rope.norm_rotate(x, weight, cos, sin, eps, out)
