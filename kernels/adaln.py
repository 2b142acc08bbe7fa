"""adaLN's modulated LayerNorm, alone or after the gated residual, as one kernel each.

Every DiT block normalises its tokens twice and modulates them per frame (the noise
level and action of a frame shift and scale all P tokens of that frame alike), and adds
each branch back through a per-frame gate::

    h = LayerNorm(x) · (1 + scale) + shift        LayerNorm without affine, eps 1e-6
    x = x + gate · branch(h)

In PyTorch the first line is four launches (norm, 1 + scale, product, sum) and the
second two. ``modulated_layernorm`` is the first line in one launch;
``gated_residual_layernorm`` is the second line followed by the next first line (the
block's second norm, or the next block's first, or the final norm) in one launch,
returning both the new residual stream and its modulated norm.

Interface (also ``kernels.modulated_layernorm`` and
``kernels.gated_residual_layernorm``, which import this module on first use)::

    modulated_layernorm(x, shift, scale, eps=1e-6, out=None) -> y
    gated_residual_layernorm(x, gate, h, shift, scale, eps=1e-6, out_x=None, out=None)
        -> (x + gate·h, modulated_layernorm(x + gate·h, shift, scale))
      x, h              (B, F, P, D), any float dtype
      shift, scale, gate (B, F, 1, D), per frame; any strides (views of the unbound
                        modulation tensor are fine)
      out_x, out        optional preallocated results, (B, F, P, D)
    All tensors contiguous in D; statistics in float32; results in x.dtype. The new
    residual is rounded to x.dtype before it is normalised, as the PyTorch sequence does.

D need not be a power of two (it is padded to one inside a program). This module knows
nothing about where the modulation comes from.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import jit

try:
    import triton.language as tl
except ImportError:        # the references still work; kernels.available() says False
    tl = None

ROWS_PER_PROGRAM = 8


def modulated_layernorm_reference(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor,
                                  eps: float = 1e-6, out: torch.Tensor | None = None
                                  ) -> torch.Tensor:
    """PyTorch twin of ``modulated_layernorm`` (the engine's sequence of launches)."""
    y = F.layer_norm(x, (x.shape[-1],), eps=eps) * (1 + scale) + shift
    return y if out is None else out.copy_(y)


def gated_residual_layernorm_reference(x, gate, h, shift, scale, eps: float = 1e-6,
                                       out_x: torch.Tensor | None = None,
                                       out: torch.Tensor | None = None):
    """PyTorch twin of ``gated_residual_layernorm``."""
    x = x + gate * h
    if out_x is not None:
        x = out_x.copy_(x)
    return x, modulated_layernorm_reference(x, shift, scale, eps, out)


def _adaln_body(X, GATE, H, SHIFT, SCALE, XOUT, Y,
                sx_b, sx_f, sx_p, sg_b, sg_f, sh_b, sh_f, sh_p,
                ss_b, ss_f, sk_b, sk_f, so_b, so_f, so_p, sy_b, sy_f, sy_p,
                F, P, D, ROWS, eps,
                BLOCK_R: tl.constexpr, BLOCK_D: tl.constexpr, RESIDUAL: tl.constexpr):
    # One program: BLOCK_R token rows of the flattened (B·F·P) rows, all D channels.
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    b = rows // (F * P)
    f = (rows // P) % F
    p = rows % P
    d = tl.arange(0, BLOCK_D)[None, :]
    ok = (rows < ROWS)[:, None] & (d < D)
    x = tl.load(X + (b * sx_b + f * sx_f + p * sx_p)[:, None] + d, mask=ok, other=0.0)
    if RESIDUAL:
        gate = tl.load(GATE + (b * sg_b + f * sg_f)[:, None] + d, mask=ok, other=0.0)
        branch = tl.load(H + (b * sh_b + f * sh_f + p * sh_p)[:, None] + d, mask=ok, other=0.0)
        x = (x.to(tl.float32) + gate.to(tl.float32) * branch.to(tl.float32)).to(
            XOUT.dtype.element_ty)
        tl.store(XOUT + (b * so_b + f * so_f + p * so_p)[:, None] + d, x, mask=ok)
    x = x.to(tl.float32)                                              # (BLOCK_R, BLOCK_D)
    mean = tl.sum(x, 1) / D
    centred = tl.where(ok, x - mean[:, None], 0.0)
    rstd = 1.0 / tl.sqrt(tl.sum(centred * centred, 1) / D + eps)
    shift = tl.load(SHIFT + (b * ss_b + f * ss_f)[:, None] + d, mask=ok, other=0.0)
    scale = tl.load(SCALE + (b * sk_b + f * sk_f)[:, None] + d, mask=ok, other=0.0)
    y = centred * rstd[:, None] * (1.0 + scale.to(tl.float32)) + shift.to(tl.float32)
    tl.store(Y + (b * sy_b + f * sy_f + p * sy_p)[:, None] + d, y.to(Y.dtype.element_ty),
             mask=ok)


def _frame_strides(t: torch.Tensor, shape: tuple[int, int, int, int], name: str
                   ) -> tuple[int, int]:
    """(b, f) strides of a per-frame (B, F, 1, D) factor, 0 where it broadcasts."""
    b, f, _, d = shape
    if t.dim() != 4 or t.shape[2] != 1 or t.shape[3] != d or t.shape[0] not in (1, b) \
            or t.shape[1] not in (1, f) or t.stride(-1) != 1:
        raise ValueError(f"{name} {tuple(t.shape)}: expected ({b}, {f}, 1, {d}), "
                         "contiguous in the last dimension")
    return (t.stride(0) if t.shape[0] > 1 else 0, t.stride(1) if t.shape[1] > 1 else 0)


def _token_strides(t: torch.Tensor, shape: tuple[int, int, int, int], name: str
                   ) -> tuple[int, int, int]:
    if tuple(t.shape) != shape or t.stride(-1) != 1:
        raise ValueError(f"{name} {tuple(t.shape)}: expected {shape}, "
                         "contiguous in the last dimension")
    return t.stride(0), t.stride(1), t.stride(2)


def adaln_launch(x, gate, h, shift, scale, eps: float, out_x, out) -> jit.Launch:
    """The kernel call of both public functions (``gate is None``: no residual)."""
    shape = tuple(x.shape)
    b, f, p, d = shape
    rows = b * f * p
    sx = _token_strides(x, shape, "x")
    sy = _token_strides(out, shape, "out")
    ss = _frame_strides(shift, shape, "shift")
    sk = _frame_strides(scale, shape, "scale")
    residual = gate is not None
    if residual:
        sh, sg, so = (_token_strides(h, shape, "h"), _frame_strides(gate, shape, "gate"),
                      _token_strides(out_x, shape, "out_x"))
    else:
        gate = h = out_x = x              # never read or written
        sh, sg, so = (0, 0, 0), (0, 0), (0, 0, 0)
    return jit.Launch(
        _adaln_body, (jit.cdiv(rows, ROWS_PER_PROGRAM),),
        (x, gate, h, shift, scale, out_x, out, *sx, *sg, *sh, *ss, *sk, *so, *sy,
         f, p, d, rows, eps),
        dict(BLOCK_R=ROWS_PER_PROGRAM, BLOCK_D=1 << (d - 1).bit_length(), RESIDUAL=residual))


def modulated_layernorm(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor,
                        eps: float = 1e-6, out: torch.Tensor | None = None) -> torch.Tensor:
    """LayerNorm(x)·(1 + scale) + shift in one Triton launch; see the module docstring."""
    out = torch.empty_like(x) if out is None else out
    adaln_launch(x, None, None, shift, scale, eps, None, out).run()
    return out


def gated_residual_layernorm(x, gate, h, shift, scale, eps: float = 1e-6,
                             out_x: torch.Tensor | None = None,
                             out: torch.Tensor | None = None
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """(x + gate·h, its modulated LayerNorm) in one Triton launch; see the module."""
    out_x = torch.empty_like(x) if out_x is None else out_x
    out = torch.empty_like(x) if out is None else out
    adaln_launch(x, gate, h, shift, scale, eps, out_x, out).run()
    return out_x, out
