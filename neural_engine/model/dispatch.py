"""The one kernel switch: how the denoiser's fused steps run, PyTorch or Triton.

Four steps of the denoiser have a fused form:

- ``modulated_norm``: layer norm (no affine) then adaLN modulation, ``LN(x)·(1 + scale)
  + shift`` for x (B, F, P, D) and per-frame shift, scale (B, F, 1, D);
- ``gated_residual_norm``: the gated residual ``x + gate·h`` and the modulated norm of
  the result, both returned;
- ``norm_rotate``: the per-head RMS norm of queries or keys, then their rotation;
- ``stream_attention``: queries (already rotated) against one layer's cache of
  unrotated keys, rotated here per slot, under a frame-level mask.

A backend names how they run. ``"torch"`` is plain PyTorch (layer norm, rotation of
every cache key, a token-level mask, SDPA): the path the engine has always taken, the
one training uses, and the reference the kernels' own twins are pinned to. ``"triton"``
runs the Triton kernels of ``kernels/`` on CUDA tensors and falls back to the PyTorch
path here for anything else (CPU tensors, no triton, no kernels package). The edge
chooses once: ``resolve_backend`` turns ``--kernels auto`` into ``"triton"`` where
Triton really runs and ``"torch"`` elsewhere, the streaming sampler hands the name to
the model with the cache, and every call here takes it as its ``backend`` argument.

Tests and benchmarks override every caller's choice with ``forced(name)``: inside it,
``"torch"`` runs the PyTorch path and ``"triton"`` the Triton kernels for every call,
CPU tensors included (Triton's interpreter, ``TRITON_INTERPRET=1`` before triton is
imported). The kernels have no backward: force them around inference only.

The ``kernels/`` folder is installed as ``neural_engine_kernels`` (see ``fused_module``);
it chooses nothing itself. ``fused_available()`` and ``fused_runs_triton()`` say what
``"triton"`` would run here, so a benchmark never reports the fallback as the fused path.

This module knows nothing about the cache layout or the schedule.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F

from neural_engine.errors import EngineError
from neural_engine.model.rope import rotate

BACKENDS = ("torch", "triton")
KERNELS_PACKAGE = "neural_engine_kernels"   # the name ``kernels/`` is installed under
FUSED_STEPS = ("stream_attention", "modulated_layernorm", "gated_residual_layernorm",
               "norm_rotate")
_FUSED: list = []       # [module or None] once looked up
_FORCED: list[str] = []  # the test override's stack (``forced``); empty: the callers' choice


def check_backend(name: str) -> str:
    if name not in BACKENDS:
        raise EngineError(f"unknown kernel backend {name!r} (backends: {', '.join(BACKENDS)})")
    return name


def _load_fused():
    """The installed ``neural_engine_kernels``, else the source tree's ``kernels/`` folder
    loaded under that name, else None. Never ``import kernels``: that name belongs to an
    unrelated PyPI package, which could shadow the folder or be shadowed by it."""
    try:
        return importlib.import_module(KERNELS_PACKAGE)
    except ImportError:
        pass
    folder = Path(__file__).resolve().parents[2] / "kernels"
    if not (folder / "__init__.py").is_file():
        return None
    spec = importlib.util.spec_from_file_location(
        KERNELS_PACKAGE, folder / "__init__.py", submodule_search_locations=[str(folder)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[KERNELS_PACKAGE] = module
    try:
        spec.loader.exec_module(module)
    except ImportError:
        del sys.modules[KERNELS_PACKAGE]
        return None
    return module


def fused_module():
    """The fused kernels package (``kernels/``, installed as ``neural_engine_kernels``),
    or None when it is not importable."""
    if not _FUSED:
        _FUSED.append(_load_fused())
    return _FUSED[0]


def fused_available() -> bool:
    """Whether the kernels package is importable and has every fused step."""
    fused = fused_module()
    return fused is not None and all(hasattr(fused, name) for name in FUSED_STEPS)


def fused_runs_triton(device: torch.device) -> bool:
    """Whether ``"triton"`` runs Triton kernels on ``device`` (not the PyTorch fallback)."""
    return (torch.device(device).type == "cuda" and fused_available()
            and fused_module().triton_importable())


def resolve_backend(name: str, device: torch.device) -> str:
    """``"auto"``: Triton where it really runs (CUDA with the kernels), else PyTorch."""
    if name == "auto":
        return "triton" if fused_runs_triton(device) else "torch"
    return check_backend(name)


@contextmanager
def forced(name: str) -> Iterator[None]:
    """Run the body with every call here on backend ``name``, whatever its caller asked.

    ``"torch"``: the PyTorch path. ``"triton"``: the Triton kernels for every call, on
    CPU tensors through Triton's interpreter; refused here when they cannot run at all.
    Nests; the innermost wins. For tests and benchmarks (the kernels have no backward).
    """
    check_backend(name)
    if name == "triton":
        if not fused_available():
            raise EngineError("cannot force the Triton kernels: the kernels package "
                              f"({KERNELS_PACKAGE}) is not importable")
        if not fused_module().available():
            raise EngineError("cannot force the Triton kernels: they need the triton package "
                              "and a CUDA device, or TRITON_INTERPRET=1 for CPU tensors")
    _FORCED.append(name)
    try:
        yield
    finally:
        _FORCED.pop()


def _fused_for(backend: str, *tensors: torch.Tensor):
    """The kernels package when this call runs Triton, else None (the PyTorch path)."""
    if _FORCED:
        return fused_module() if _FORCED[-1] == "triton" else None
    if backend != "triton" or not all(t.is_cuda for t in tensors):
        return None
    return fused_module() if fused_runs_triton(tensors[0].device) else None


def modulated_norm(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor,
                   backend: str = "torch", eps: float = 1e-6) -> torch.Tensor:
    """x (B, F, P, D), shift and scale (B, F, 1, D) → LN(x)·(1 + scale) + shift, like x."""
    if (fused := _fused_for(backend, x)) is not None:
        return fused.modulated_layernorm(x, shift, scale, eps=eps)
    return F.layer_norm(x, (x.shape[-1],), eps=eps) * (1 + scale) + shift


def gated_residual_norm(x: torch.Tensor, gate: torch.Tensor, h: torch.Tensor,
                        shift: torch.Tensor, scale: torch.Tensor, backend: str = "torch",
                        eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """x, h (B, F, P, D), gate, shift, scale (B, F, 1, D) → (x + gate·h, its modulated norm)."""
    if (fused := _fused_for(backend, x, h)) is not None:
        return fused.gated_residual_layernorm(x, gate, h, shift, scale, eps=eps)
    x = x + gate * h
    return x, modulated_norm(x, shift, scale, "torch", eps)


def norm_rotate(x: torch.Tensor, weight: torch.Tensor, cos: torch.Tensor | None,
                sin: torch.Tensor | None, backend: str = "torch", eps: float = 1e-6
                ) -> torch.Tensor:
    """RMS norm of x (B, H, N, hd) with ``weight`` (hd,), then the rotation by cos, sin
    (N, hd/2) shared by the rows or (B, N, hd/2) per row; None: the norm alone."""
    if (fused := _fused_for(backend, x)) is not None:
        return fused.norm_rotate(x, weight, cos, sin, eps=eps)
    # the weight in x's precision: a float32 weight on bf16 input takes the unfused path
    x = F.rms_norm(x, (x.shape[-1],), weight.to(x.dtype), eps)
    if cos is None:
        return x
    if cos.dim() == 3:                                      # per row: broadcast over heads
        cos, sin = cos[:, None], sin[:, None]
    return rotate(x, cos, sin)


def token_mask(frame_mask: torch.Tensor, tokens: int) -> torch.Tensor:
    """Frame-level (..., Fq, Fk) bool → token-level (..., Fq·P, Fk·P)."""
    return frame_mask.repeat_interleave(tokens, -2).repeat_interleave(tokens, -1)


def stream_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     key_cos: torch.Tensor, key_sin: torch.Tensor, frame_mask: torch.Tensor,
                     tokens: int, backend: str = "torch",
                     mask: torch.Tensor | None = None) -> torch.Tensor:
    """Attention of rotated queries over a cache of unrotated keys.

    q (B, H, Nq, hd); k, v (B, H, Nk, hd); key_cos, key_sin (Bc, Nk, hd/2), Bc ∈ {1, B};
    frame_mask (Bm, Fq, Fk) bool, Bm ∈ {1, B}, with Nq = Fq·P and Nk = Fk·P for P =
    ``tokens``. The PyTorch path takes the token-level ``mask`` (Bm, 1, Nq, Nk) when the
    caller built it once for all layers. → (B, H, Nq, hd).
    """
    if (fused := _fused_for(backend, q, k, v)) is not None:
        return fused.stream_attention(q, k, v, key_cos, key_sin, frame_mask, tokens)
    k = rotate(k, key_cos[:, None], key_sin[:, None]).to(q.dtype)       # (B, H, Nk, hd)
    if mask is None:
        mask = token_mask(frame_mask, tokens)[:, None]                  # (Bm, 1, Nq, Nk)
    return F.scaled_dot_product_attention(q, k, v.to(q.dtype), attn_mask=mask)
