"""Counter-based Gaussian noise: every row's draw is a pure function of where it is used.

The streaming sampler needs fresh noise for every row on every pass. Drawing it from
torch generators means launches from the host for each stream, outside any captured
CUDA graph. Here a draw is instead a hash of (key, counter, element): the key says
which stream (derived once from its seed), the counter which pass of that stream,
the element which number within the pass. All rows are drawn at once with elementwise
integer and float ops into buffers made once, so a captured pass draws its own noise
on replay, and a row draws the same values whatever its position in the batch and
whatever the other rows do.

The integer part is the murmur3 finaliser (``mix32``) on int64 tensors holding uint32
values. The 32-bit multiply is split so that no int64 product can overflow (no signed
wraparound is relied on), so the bits are the same on the CPU and on CUDA; the floats
made from them agree to rounding. A row's key and counter hash to a 32-bit state
(the counter by golden-ratio increments, so distinct counters of one key never share
a state); element e hashes as mix32(state ^ mix32(G·(e + 1))), the inner hash made once
for all elements. Elements 2j and 2j + 1 take two 24-bit uniforms and become two
normals by Box–Muller, so element e's value never depends on how many are drawn.
A state has 32 bits: two streams whose keys differ by G·d draw the same noise d passes
apart, which over T passes happens to a pair of streams with odds of about 2T/2^32,
and does no harm.

This module knows nothing about samplers, latents or the cache: callers shape the
(B, N) draw as they need.
"""

from __future__ import annotations

import math

import numpy as np
import torch

MASK32 = 0xFFFFFFFF
GOLDEN = 0x9E3779B9          # 2^32 / golden ratio: the increment between hash inputs


def mul32_(x: torch.Tensor, c: int, scratch: torch.Tensor) -> torch.Tensor:
    """x ← x·c mod 2^32, in place, for x (int64, values < 2^32) and a 32-bit constant c.

    With c = c_hi·2^16 + c_lo, x·c ≡ x·c_lo + (x·c_hi mod 2^16)·2^16; each product is
    below 2^48, so nothing overflows int64. ``scratch``: a tensor like x.
    """
    lo, hi = c & 0xFFFF, c >> 16
    torch.mul(x, hi, out=scratch).bitwise_and_(0xFFFF).bitwise_left_shift_(16)
    return x.mul_(lo).add_(scratch).bitwise_and_(MASK32)


def mix32_(x: torch.Tensor, scratch: torch.Tensor) -> torch.Tensor:
    """The murmur3 fmix32 finaliser (a bijection of uint32), in place on int64 x."""
    x ^= torch.bitwise_right_shift(x, 16, out=scratch)
    mul32_(x, 0x85EBCA6B, scratch)
    x ^= torch.bitwise_right_shift(x, 13, out=scratch)
    mul32_(x, 0xC2B2AE35, scratch)
    x ^= torch.bitwise_right_shift(x, 16, out=scratch)
    return x


def mix32(x: torch.Tensor) -> torch.Tensor:
    """fmix32 of int64 values < 2^32, into a new tensor."""
    return mix32_(x.clone(), torch.empty_like(x))


def mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """x·c mod 2^32 of int64 values < 2^32, into a new tensor."""
    return mul32_(x.clone(), c, torch.empty_like(x))


def row_keys(seed: int, rows: int) -> np.ndarray:
    """Keys (rows,) int32 of the rows of a stream started with ``seed``: 31 bits each.

    Row i's key depends only on (seed, i), so a stream alone in row 0 of a group draws
    the same wherever that group sits in the batch. The seed is taken modulo 2^64.
    """
    lo, hi = torch.tensor(seed & MASK32), torch.tensor((seed >> 32) & MASK32)
    base = mix32(lo ^ mix32((hi + GOLDEN) & MASK32))
    rows_in = mul32(torch.arange(1, rows + 1, dtype=torch.int64), GOLDEN)
    keys = mix32((base + rows_in) & MASK32) >> 1
    return keys.numpy().astype(np.int32)


class CounterNoise:
    """Standard normals for ``rows`` rows of ``count`` elements, by (key, counter)."""

    def __init__(self, rows: int, count: int, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32):
        pairs = (count + 1) // 2
        self.count, self.dtype = count, dtype
        # the hash of every element number, made once: (2, P), even elements (the
        # radius uniforms) in row 0, odd ones (the angle uniforms) in row 1
        elements = mul32(torch.arange(1, 2 * pairs + 1, dtype=torch.int64), GOLDEN)
        self.index = mix32(elements).view(pairs, 2).t().contiguous().to(device)
        self.bits = torch.zeros(rows, 2, pairs, dtype=torch.int64, device=device)
        self.scratch = torch.zeros_like(self.bits)
        self.uniform = torch.zeros(rows, 2, pairs, device=device)
        self.normal = torch.zeros(rows, pairs, 2, device=device)

    def __call__(self, key: torch.Tensor, counter: torch.Tensor) -> torch.Tensor:
        """Normals (rows, count) in ``dtype`` of rows with ``key``, ``counter`` (rows,)
        int64: element e of row b depends only on (key[b], counter[b], e). Keys and
        counters count modulo 2^32. Written into this object's buffers (float32, then
        cast), so the result lives until the next call."""
        step = mul32(counter & MASK32, GOLDEN)
        state = mix32(((key & MASK32) + step) & MASK32)                      # (B,)
        bits = torch.bitwise_xor(state[:, None, None], self.index, out=self.bits)
        mix32_(bits, self.scratch).bitwise_right_shift_(8)                   # 24 bits
        u = self.uniform.copy_(bits)                                          # (B, 2, P)
        # radius from a uniform in (0, 1] (the log stays finite), angle from [0, 1)
        radius = u[:, 0].add_(1.0).mul_(2.0 ** -24).log_().mul_(-2.0).sqrt_()  # (B, P)
        angle = u[:, 1].mul_(2 * math.pi * 2.0 ** -24)
        torch.cos(angle, out=self.normal[..., 0])
        torch.sin(angle, out=self.normal[..., 1])
        z = self.normal.mul_(radius[..., None]).flatten(1)[:, :self.count]   # (B, count)
        return z.to(self.dtype)
