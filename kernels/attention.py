"""Attention of a streaming pass over one layer's KV cache, in one kernel.

In a streaming pass the Q = 1 + W query frames (the frame to commit, then the window)
attend to a cache of M frame slots (sink, ring, window, scratch), P tokens each. The
cache keeps keys unrotated so that a slot's time position can change as the stream
grows; each pass gives every slot a rotation. A frame-level mask says which slots each
query frame may see. In PyTorch each layer rotates the whole key buffer, casts it,
expands the mask to tokens and calls SDPA with it: about ten launches and a rotated copy
of the cache per layer. Here it is one launch: each program takes a block of query
rows of one (stream, head), walks the key blocks, loads the frame-mask bit first and
skips the key frames it may not see, rotates the keys it does read on the fly, and
keeps an online softmax (flash-attention style) in float32.

Interface (also ``kernels.stream_attention``, which imports this module on first
use)::

    stream_attention(q, k, v, key_cos, key_sin, frame_mask, tokens_per_frame,
                     scale=None, out=None) -> (B, H, Nq, hd), q.dtype
        q           (B, H, Nq, hd) queries, already normed and rotated
        k, v        (B, H, Nk, hd) one layer's cache, keys unrotated; read in place
        key_cos/sin (Nk, hd/2) or (Bc, Nk, hd/2), Bc = 1 or B (per-stream positions)
        frame_mask  (Fq, Fk) or (Bm, Fq, Fk), Bm = 1 or B, bool or integer (≠ 0: may
                    attend); every query frame must see at least one key frame
        tokens_per_frame  P, with Nq = Fq·P and Nk = Fk·P
        scale       softmax scale, default 1/sqrt(hd) (as SDPA)
        out         optional preallocated (B, H, Nq, hd) result, any strides

q, k and v may have different float dtypes (the keys and values are cast to q's dtype
for the products, as the engine does); every tensor must be contiguous in its last
dimension, other strides are free. Keys rotate with the half-split convention of
``kernels.rope``. hd/2 must be a power of two and hd ≥ 32 (32, 64, 128 tested).
Nothing is allocated but the result, nothing is read back to the host: the call can be
captured in a CUDA graph once the kernel has been compiled (call it once first). Nq, Nk
and P are compile-time constants: each new shape compiles once (about a second).

This module knows nothing about how slots are assigned or what the mask means.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import jit
from .rope import per_stream, rotate_reference

try:
    import triton.language as tl
except ImportError:        # the reference still works; kernels.available() says False
    tl = None

FRAME_BLOCKS = (64, 32, 16)   # tile sizes that keep a tile inside one frame, largest first
UNALIGNED_BLOCK = 32          # tile size when P is no multiple of 16 (per-element mask)
FP32_BLOCK = 32               # float32 products run on CUDA cores: larger tiles spill


def stream_attention_reference(q, k, v, key_cos, key_sin, frame_mask, tokens_per_frame: int,
                               scale: float | None = None, out: torch.Tensor | None = None
                               ) -> torch.Tensor:
    """PyTorch twin of ``stream_attention``: rotate keys, expand the mask, SDPA."""
    if frame_mask.dim() == 2:
        frame_mask = frame_mask[None]
    p = tokens_per_frame
    keys = rotate_reference(k, key_cos, key_sin).to(q.dtype)
    mask = frame_mask.bool().repeat_interleave(p, 1).repeat_interleave(p, 2)[:, None]
    y = F.scaled_dot_product_attention(q, keys, v.to(q.dtype), attn_mask=mask, scale=scale)
    return y if out is None else out.copy_(y)


def _attention_body(Q, K, V, COS, SIN, MASK, OUT,
                    sq_b, sq_h, sq_n, sk_b, sk_h, sk_n, sv_b, sv_h, sv_n,
                    sc_b, sc_n, sm_b, sm_q, sm_k, so_b, so_h, so_n,
                    H, qk_scale, NQ: tl.constexpr, NK: tl.constexpr, P: tl.constexpr,
                    HALF: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                    ALIGNED: tl.constexpr, DOT: tl.constexpr, PRECISION: tl.constexpr):
    # One program: BLOCK_M query rows of one (stream b, head h). Halves of the head
    # dimension are kept apart, so the rotation needs no shuffles: the score is
    # q1·k1ᵀ + q2·k2ᵀ with (k1, k2) the rotated halves, and the output halves are
    # accumulated separately. Product operands are rounded to q's dtype, then held
    # as DOT (q's dtype on a GPU; see ``_dot_dtype``).
    ELEM = Q.dtype.element_ty
    b = tl.program_id(1) // H
    h = tl.program_id(1) % H
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows < NQ
    d = tl.arange(0, HALF)[None, :]
    q_at = Q + b * sq_b + h * sq_h + rows[:, None] * sq_n + d
    q1 = tl.load(q_at, mask=row_ok[:, None], other=0.0).to(DOT)      # (BLOCK_M, HALF)
    q2 = tl.load(q_at + HALF, mask=row_ok[:, None], other=0.0).to(DOT)
    q_frame = rows // P
    first_q_frame = tl.program_id(0) * BLOCK_M // P
    mask_at = MASK + b * sm_b

    m_i = tl.full([BLOCK_M], -1.0e30, tl.float32)       # running max (log2 units), finite
    l_i = tl.zeros([BLOCK_M], tl.float32)                # running sum of exp2
    acc1 = tl.zeros([BLOCK_M, HALF], tl.float32)
    acc2 = tl.zeros([BLOCK_M, HALF], tl.float32)
    for start in range(0, NK, BLOCK_N):
        cols = start + tl.arange(0, BLOCK_N)
        col_ok = cols < NK
        if ALIGNED:      # the tile lies in one query frame and one key frame
            keep = tl.load(mask_at + first_q_frame * sm_q + (start // P) * sm_k) != 0
            seen = keep
        else:            # per (row, column) frame bits
            keep = tl.load(mask_at + q_frame[:, None] * sm_q + (cols // P)[None, :] * sm_k,
                           mask=row_ok[:, None] & col_ok[None, :], other=0) != 0
            seen = tl.max(keep.to(tl.int32)) > 0
        if seen:
            k_at = K + b * sk_b + h * sk_h + cols[:, None] * sk_n + d
            k1 = tl.load(k_at, mask=col_ok[:, None], other=0.0).to(tl.float32)
            k2 = tl.load(k_at + HALF, mask=col_ok[:, None], other=0.0).to(tl.float32)
            c_at = b * sc_b + cols[:, None] * sc_n + d
            cos = tl.load(COS + c_at, mask=col_ok[:, None], other=0.0)
            sin = tl.load(SIN + c_at, mask=col_ok[:, None], other=0.0)
            r1 = (k1 * cos - k2 * sin).to(ELEM).to(DOT)               # (BLOCK_N, HALF)
            r2 = (k1 * sin + k2 * cos).to(ELEM).to(DOT)
            s = tl.dot(q1, tl.trans(r1), input_precision=PRECISION)
            s = tl.dot(q2, tl.trans(r2), s, input_precision=PRECISION)  # (BLOCK_M, BLOCK_N)
            s = tl.where(keep, s * qk_scale, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, 1))
            alpha = tl.exp2(m_i - m_new)
            prob = tl.exp2(s - m_new[:, None])
            l_i = l_i * alpha + tl.sum(prob, 1)
            prob = prob.to(ELEM).to(DOT)
            v_at = V + b * sv_b + h * sv_h + cols[:, None] * sv_n + d
            v1 = tl.load(v_at, mask=col_ok[:, None], other=0.0).to(ELEM).to(DOT)
            v2 = tl.load(v_at + HALF, mask=col_ok[:, None], other=0.0).to(ELEM).to(DOT)
            acc1 = tl.dot(prob, v1, acc1 * alpha[:, None], input_precision=PRECISION)
            acc2 = tl.dot(prob, v2, acc2 * alpha[:, None], input_precision=PRECISION)
            m_i = m_new
    inv = 1.0 / tl.where(l_i > 0, l_i, 1.0)
    o_at = OUT + b * so_b + h * so_h + rows[:, None] * so_n + d
    tl.store(o_at, (acc1 * inv[:, None]).to(OUT.dtype.element_ty), mask=row_ok[:, None])
    tl.store(o_at + HALF, (acc2 * inv[:, None]).to(OUT.dtype.element_ty), mask=row_ok[:, None])


def _dot_dtype(dtype: torch.dtype):
    """The dtype tl.dot's operands are held in: q's own, except bfloat16 under the
    interpreter, which multiplies bfloat16 bit patterns as integers (triton#11584)."""
    if dtype == torch.bfloat16 and jit.interpreting():
        return tl.float32
    return {torch.float32: tl.float32, torch.float16: tl.float16,
            torch.bfloat16: tl.bfloat16}[dtype]


def tiles(tokens_per_frame: int, dtype: torch.dtype) -> tuple[int, int, bool]:
    """(BLOCK_M, BLOCK_N, aligned): tiles inside one frame when P allows, else small ones
    with a per-element mask."""
    largest = FP32_BLOCK if dtype == torch.float32 else FRAME_BLOCKS[0]
    for block in FRAME_BLOCKS:
        if block <= largest and tokens_per_frame % block == 0:
            return block, block, True
    block = UNALIGNED_BLOCK if dtype != torch.float32 else FP32_BLOCK // 2
    return block, block, False


def _check(q, k, v, key_cos, key_sin, frame_mask, p: int, out) -> None:
    b, h, nq, hd = q.shape
    nk = k.shape[2]
    half = hd // 2
    if hd < 32 or hd % 2 or half & (half - 1):
        raise ValueError(f"head size {hd}: need hd ≥ 32 with hd/2 a power of two")
    if k.shape != (b, h, nk, hd) or v.shape != k.shape:
        raise ValueError(f"k {tuple(k.shape)}, v {tuple(v.shape)}: expected "
                         f"({b}, {h}, Nk, {hd}) alike")
    if nq % p or nk % p:
        raise ValueError(f"Nq {nq} and Nk {nk} must be multiples of P = {p}")
    if frame_mask.shape[1:] != (nq // p, nk // p) or frame_mask.shape[0] not in (1, b):
        raise ValueError(f"frame_mask {tuple(frame_mask.shape)}: expected "
                         f"(1 or {b}, {nq // p}, {nk // p})")
    if key_cos.shape[1:] != (nk, half) or key_sin.shape != key_cos.shape \
            or key_sin.stride() != key_cos.stride():
        raise ValueError(f"key_cos/key_sin {tuple(key_cos.shape)}: expected "
                         f"(1 or {b}, {nk}, {half}), alike")
    if out.shape != q.shape:
        raise ValueError(f"out {tuple(out.shape)}: expected {tuple(q.shape)}")
    for name, t in (("q", q), ("k", k), ("v", v), ("key_cos", key_cos), ("out", out)):
        if t.stride(-1) != 1:
            raise ValueError(f"{name} must be contiguous in its last dimension")


def stream_attention(q, k, v, key_cos, key_sin, frame_mask, tokens_per_frame: int,
                     scale: float | None = None, out: torch.Tensor | None = None
                     ) -> torch.Tensor:
    """Cached streaming attention in one Triton launch; see the module docstring."""
    out = torch.empty_like(q) if out is None else out
    attention_launch(q, k, v, key_cos, key_sin, frame_mask, tokens_per_frame, scale,
                     out).run()
    return out


def attention_launch(q, k, v, key_cos, key_sin, frame_mask, tokens_per_frame: int,
                     scale: float | None, out: torch.Tensor) -> jit.Launch:
    """The kernel call ``stream_attention`` makes, with its arguments checked."""
    b, h, nq, hd = q.shape
    p = tokens_per_frame
    key_cos, sc_b = per_stream(key_cos, b, "key_cos")
    key_sin, _ = per_stream(key_sin, b, "key_sin")
    if frame_mask.dim() == 2:
        frame_mask = frame_mask[None]
    if frame_mask.dtype == torch.bool:
        frame_mask = frame_mask.view(torch.uint8)                    # same bytes, no copy
    _check(q, k, v, key_cos, key_sin, frame_mask, p, out)
    sm_b = frame_mask.stride(0) if frame_mask.shape[0] > 1 else 0
    block_m, block_n, aligned = tiles(p, q.dtype)
    scale = 1.0 / math.sqrt(hd) if scale is None else scale
    return jit.Launch(
        _attention_body, (jit.cdiv(nq, block_m), b * h),
        (q, k, v, key_cos, key_sin, frame_mask, out,
         q.stride(0), q.stride(1), q.stride(2), k.stride(0), k.stride(1), k.stride(2),
         v.stride(0), v.stride(1), v.stride(2), sc_b, key_cos.stride(1),
         sm_b, frame_mask.stride(1), frame_mask.stride(2),
         out.stride(0), out.stride(1), out.stride(2), h, scale * math.log2(math.e)),
        dict(NQ=nq, NK=k.shape[2], P=p, HALF=hd // 2, BLOCK_M=block_m, BLOCK_N=block_n,
             ALIGNED=aligned, DOT=_dot_dtype(q.dtype),
             PRECISION="ieee" if q.dtype == torch.float32 else "tf32"))
