"""The one dispatch point between the denoiser and the fused kernels of ``kernels/``.

Four steps of the denoiser have a fused form:

- ``modulated_norm``: layer norm (no affine) then adaLN modulation, ``LN(x)·(1 + scale)
  + shift`` for x (B, F, P, D) and per-frame shift, scale (B, F, 1, D);
- ``gated_residual_norm``: the gated residual ``x + gate·h`` and the modulated norm of
  the result, both returned;
- ``norm_rotate``: the per-head RMS norm of queries or keys, then their rotation;
- ``stream_attention``: queries (already rotated) against one layer's cache of
  unrotated keys, rotated here per slot, under a frame-level mask.

A backend names how they run: ``"torch"`` is plain PyTorch (layer norm, rotation of
every cache key, a token-level mask, SDPA), the path the engine has always taken and the
one training uses; ``"triton"`` calls the functions of the ``kernels`` package, which
run Triton on CUDA and their PyTorch references elsewhere (``KERNELS_BACKEND``
overrides that choice inside ``kernels/``). The streaming sampler picks the backend
and hands it to the model with the cache.

The ``kernels/`` folder is installed as ``neural_engine_kernels`` (see ``fused_module``).
When it is not importable, ``"triton"`` falls back to the PyTorch path here;
``fused_available()`` says which it is, so a benchmark never reports the fallback as the
fused path.

This module knows nothing about the cache layout or the schedule.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from neural_engine.errors import EngineError
from neural_engine.model.rope import rotate

BACKENDS = ("torch", "triton")
KERNELS_PACKAGE = "neural_engine_kernels"   # the name ``kernels/`` is installed under
_FUSED: list = []       # [module or None] once looked up


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
    fused = fused_module()
    return fused is not None and all(
        hasattr(fused, name) for name in ("stream_attention", "modulated_layernorm",
                                          "gated_residual_layernorm", "norm_rotate"))


def fused_runs_triton(device: torch.device) -> bool:
    """Whether the ``"triton"`` backend runs Triton kernels (not their references) here."""
    if not fused_available():
        return False
    fused = fused_module()
    probe = torch.zeros(1, device=device)
    return bool(fused.uses_triton(probe)) if hasattr(fused, "uses_triton") else False


def resolve_backend(name: str, device: torch.device) -> str:
    """``"auto"``: Triton where it really runs (CUDA with the kernels), else PyTorch."""
    if name == "auto":
        return "triton" if device.type == "cuda" and fused_runs_triton(device) else "torch"
    return check_backend(name)


def modulated_norm(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor,
                   backend: str = "torch", eps: float = 1e-6) -> torch.Tensor:
    """x (B, F, P, D), shift and scale (B, F, 1, D) → LN(x)·(1 + scale) + shift, like x."""
    if backend == "triton" and fused_available():
        return fused_module().modulated_layernorm(x, shift, scale, eps=eps)
    return F.layer_norm(x, (x.shape[-1],), eps=eps) * (1 + scale) + shift


def gated_residual_norm(x: torch.Tensor, gate: torch.Tensor, h: torch.Tensor,
                        shift: torch.Tensor, scale: torch.Tensor, backend: str = "torch",
                        eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """x, h (B, F, P, D), gate, shift, scale (B, F, 1, D) → (x + gate·h, its modulated norm)."""
    if backend == "triton" and fused_available():
        return fused_module().gated_residual_layernorm(x, gate, h, shift, scale, eps=eps)
    x = x + gate * h
    return x, modulated_norm(x, shift, scale, "torch", eps)


def norm_rotate(x: torch.Tensor, weight: torch.Tensor, cos: torch.Tensor | None,
                sin: torch.Tensor | None, backend: str = "torch", eps: float = 1e-6
                ) -> torch.Tensor:
    """RMS norm of x (B, H, N, hd) with ``weight`` (hd,), then the rotation by cos, sin
    (N, hd/2) shared by the rows or (B, N, hd/2) per row; None: the norm alone."""
    if backend == "triton" and fused_available():
        return fused_module().norm_rotate(x, weight, cos, sin, eps=eps)
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
    if backend == "triton" and fused_available():
        return fused_module().stream_attention(q, k, v, key_cos, key_sin, frame_mask, tokens)
    k = rotate(k, key_cos[:, None], key_sin[:, None]).to(q.dtype)       # (B, H, Nk, hd)
    if mask is None:
        mask = token_mask(frame_mask, tokens)[:, None]                  # (Bm, 1, Nq, Nk)
    return F.scaled_dot_product_attention(q, k, v.to(q.dtype), attn_mask=mask)
