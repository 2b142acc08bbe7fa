"""Queries' RMS norm and rotary rotation, fused into one kernel.

The denoiser normalises every head of every query token (an RMS norm with a learned
weight of size hd, ``neural_engine.model.dit.RMSNorm``, eps 1e-6) and then rotates it
by its 3-D rotary position (``neural_engine.model.rope.rotate``). In PyTorch that is an
RMS norm plus about eight elementwise launches (halves, products, the concatenation);
here it is one launch that reads each row once and writes it once.

Rotation convention, the engine's, pinned by a test against ``rope.rotate``:
half-split pairs, channel i turns with channel i + hd/2::

    out[..., :hd/2] = x1·cos − x2·sin        x1 = x[..., :hd/2]
    out[..., hd/2:] = x1·sin + x2·cos        x2 = x[..., hd/2:]

Interface (also ``kernels.norm_rotate``, which imports this module on first use)::

    norm_rotate(x, weight, cos, sin, eps=1e-6, out=None) -> (B, H, N, hd), x.dtype
        x       (B, H, N, hd) any float dtype, last dim contiguous (other strides free)
        weight  (hd,) the RMS norm's weight
        cos/sin (N, hd/2) shared by all streams, or (Bc, N, hd/2) with Bc = 1 or B;
                None for both: the norm alone (keys, which the cache keeps unrotated)
        out     optional preallocated result (any strides, last dim contiguous)

Statistics and the rotation run in float32; the result is rounded once. hd/2 must be a
power of two (hd in {32, 64, 128} are tested). This module knows nothing about where
positions come from.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import jit

try:
    import triton.language as tl
except ImportError:        # the references still work; kernels.available() says False
    tl = None

ROWS_PER_PROGRAM = 16


def rotate_reference(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """The engine's rotation of x (B, H, N, hd) by cos, sin (N, hd/2) or (Bc, N, hd/2)."""
    if cos.dim() == 3:                        # per stream: (Bc, 1, N, hd/2) against heads
        cos, sin = cos[:, None], sin[:, None]
    x1, x2 = x.chunk(2, dim=-1)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def norm_rotate_reference(x: torch.Tensor, weight: torch.Tensor, cos: torch.Tensor | None,
                          sin: torch.Tensor | None, eps: float = 1e-6,
                          out: torch.Tensor | None = None) -> torch.Tensor:
    """PyTorch twin of ``norm_rotate``: ``F.rms_norm`` then ``rotate_reference``."""
    y = F.rms_norm(x, (x.shape[-1],), weight, eps)
    if cos is not None:
        y = rotate_reference(y, cos, sin)
    if out is None:
        return y
    return out.copy_(y)


def _norm_rotate_body(X, W, COS, SIN, Y,
                      sx_b, sx_h, sx_n, sc_b, sc_n, sy_b, sy_h, sy_n,
                      H, N, ROWS, eps,
                      HALF: tl.constexpr, BLOCK_R: tl.constexpr, ROTATE: tl.constexpr):
    # One program: BLOCK_R rows of the flattened (B·H·N) token-head rows, two halves each.
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    ok = (rows < ROWS)[:, None]
    b = rows // (H * N)
    h = (rows // N) % H
    n = rows % N
    d = tl.arange(0, HALF)[None, :]
    x_at = X + (b * sx_b + h * sx_h + n * sx_n)[:, None] + d
    x1 = tl.load(x_at, mask=ok, other=0.0).to(tl.float32)          # (BLOCK_R, HALF)
    x2 = tl.load(x_at + HALF, mask=ok, other=0.0).to(tl.float32)
    mean_sq = (tl.sum(x1 * x1, 1) + tl.sum(x2 * x2, 1)) / (2 * HALF)
    rstd = (1.0 / tl.sqrt(mean_sq + eps))[:, None]
    y1 = x1 * rstd * tl.load(W + d).to(tl.float32)
    y2 = x2 * rstd * tl.load(W + HALF + d).to(tl.float32)
    if ROTATE:
        c_at = (b * sc_b + n * sc_n)[:, None] + d
        c = tl.load(COS + c_at, mask=ok, other=0.0)
        s = tl.load(SIN + c_at, mask=ok, other=0.0)
        y1, y2 = y1 * c - y2 * s, y1 * s + y2 * c
    y_at = Y + (b * sy_b + h * sy_h + n * sy_n)[:, None] + d
    tl.store(y_at, y1.to(Y.dtype.element_ty), mask=ok)
    tl.store(y_at + HALF, y2.to(Y.dtype.element_ty), mask=ok)


def per_stream(table: torch.Tensor, batch: int, name: str) -> tuple[torch.Tensor, int]:
    """A (N, ·) or (Bc, N, ·) table as (Bc, N, ·) and its batch stride (0 when shared)."""
    if table.dim() == 2:
        table = table[None]
    if table.shape[0] not in (1, batch):
        raise ValueError(f"{name} has {table.shape[0]} streams, expected 1 or {batch}")
    return table, (table.stride(0) if table.shape[0] > 1 else 0)


def norm_rotate(x: torch.Tensor, weight: torch.Tensor, cos: torch.Tensor | None,
                sin: torch.Tensor | None, eps: float = 1e-6,
                out: torch.Tensor | None = None) -> torch.Tensor:
    """RMS norm with ``weight``, then the rotation, in one Triton launch; see the module."""
    out = torch.empty_like(x) if out is None else out
    norm_rotate_launch(x, weight, cos, sin, eps, out).run()
    return out


def norm_rotate_launch(x, weight, cos, sin, eps: float, out: torch.Tensor) -> jit.Launch:
    """The kernel call ``norm_rotate`` makes, with its arguments checked."""
    b, h, n, hd = x.shape
    half = hd // 2
    if hd % 2 or half & (half - 1):
        raise ValueError(f"head size {hd}: hd/2 must be a power of two")
    if weight.shape != (hd,) or weight.stride(0) != 1:
        raise ValueError(f"weight {tuple(weight.shape)}: expected ({hd},), contiguous")
    if out.shape != x.shape or x.stride(-1) != 1 or out.stride(-1) != 1:
        raise ValueError(f"x and out {tuple(x.shape)}, {tuple(out.shape)}: expected alike, "
                         "contiguous in the last dimension")
    rotating = cos is not None
    if rotating:
        cos, sc_b = per_stream(cos, b, "cos")
        sin, _ = per_stream(sin, b, "sin")
        if cos.shape[1:] != (n, half) or sin.shape != cos.shape or cos.stride(-1) != 1 \
                or sin.stride() != cos.stride():
            raise ValueError(f"cos/sin {tuple(cos.shape)}, expected (1 or {b}, {n}, {half}), "
                             "alike and contiguous in the last dimension")
        sc_n = cos.stride(1)
    else:
        cos = sin = x                     # never read
        sc_b = sc_n = 0
    rows = b * h * n
    return jit.Launch(
        _norm_rotate_body, (jit.cdiv(rows, ROWS_PER_PROGRAM),),
        (x, weight, cos, sin, out, x.stride(0), x.stride(1), x.stride(2), sc_b, sc_n,
         out.stride(0), out.stride(1), out.stride(2), h, n, rows, eps),
        dict(HALF=half, BLOCK_R=ROWS_PER_PROGRAM, ROTATE=rotating))
