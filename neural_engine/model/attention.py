"""The attention of an uncached call: F frames of P tokens under a frame-level mask.

Training runs the denoiser over whole clips at once (the teacher over 13 frames of 64
tokens, the distillation's scorers over history plus window), and every one of those
masks is frame-level: query frame i sees a set of key frames, and inside a frame every
token sees every token. The teacher's is block-causal (frame i sees frames 0..i).
``FrameAttention`` is that attention prepared once per shape, in one of three ways that
compute the same softmax(q·kᵀ/√hd)·v over the same keys:

- ``"sdpa"``: SDPA with the token-level boolean mask (Nq, Nk), the way it always ran. A
  dense mask rules out the flash kernels; on an H200 it runs cuDNN's masked kernel,
  which computes every tile, the masked half of a block-causal mask included.
- ``"frames"``: one SDPA without a mask per query frame, against the one contiguous run
  of key frames it sees (for block-causal: frames 0..i). No mask, so the flash kernels,
  and nothing masked is computed, at the price of F calls per layer. (No single
  ``is_causal`` call can do it: a causal mask is causal token by token, so it would hide
  the later tokens of a query's own frame, and SDPA's causal masks have no block form.)
- ``"flex"``: FlexAttention with a ``BlockMask`` made once from the frame mask: tiles
  the mask hides entirely are skipped, tiles it keeps entirely run without the mask,
  only the tiles it cuts (and those cut by the sequence's end) look it up. On CUDA it runs the compiled
  (Triton) kernel; its eager form, on the CPU, has no backward pass (``flex_available``).

This module knows nothing about the model, the schedule or the streaming cache (the
cached path, ``dispatch.stream_attention``, has its own mask per row).
"""

from __future__ import annotations

import importlib
import typing
from typing import Literal

import torch
import torch.nn.functional as F

from neural_engine.errors import EngineError
from neural_engine.model.dispatch import token_mask

AttentionKind = Literal["sdpa", "frames", "flex"]
ATTENTION_KINDS: tuple[str, ...] = typing.get_args(AttentionKind)
# FlexAttention's tile of the block mask (its default): with 64 tokens a frame, a tile
# holds two frames, so of the block-causal tiles only the diagonal ones are cut (and,
# with an odd number of frames, the last row, which runs past the sequence's end).
FLEX_BLOCK = 128


def flex_available(device: torch.device | str) -> bool:
    """Whether ``"flex"`` can train here: CUDA, and a torch with FlexAttention."""
    if torch.device(device).type != "cuda":
        return False
    try:
        importlib.import_module("torch.nn.attention.flex_attention")
    except ImportError:
        return False
    return True


def resolve_attention(kind: str, device: torch.device | str) -> str:
    """The kind that trains on ``device``: ``"flex"`` falls back to ``"sdpa"`` (the same
    numbers, the dense kernel) where it cannot run, and says so."""
    check_attention(kind)
    if kind == "flex" and not flex_available(device):
        print(f"attention 'flex' needs CUDA and torch's FlexAttention; on "
              f"{torch.device(device).type} training runs 'sdpa'", flush=True)
        return "sdpa"
    return kind


def check_attention(kind: str) -> str:
    if kind not in ATTENTION_KINDS:
        raise EngineError(f"unknown attention {kind!r} (kinds: {', '.join(ATTENTION_KINDS)})")
    return kind


_COMPILED_FLEX: list = []     # [torch.compile(flex_attention)] once made


def _flex_attention(compiled: bool):
    """FlexAttention, compiled (its fused kernel; CUDA) or eager (the CPU's reference)."""
    from torch.nn.attention.flex_attention import flex_attention

    if not compiled:
        return flex_attention
    if not _COMPILED_FLEX:
        _COMPILED_FLEX.append(torch.compile(flex_attention, dynamic=False))
    return _COMPILED_FLEX[0]


def key_runs(frame_mask: torch.Tensor) -> tuple[tuple[int, int], ...]:
    """(Fq, Fk) bool → for each query frame the run [first, end) of key frames it sees;
    refused unless every query frame sees one non-empty contiguous run."""
    runs = []
    for i, row in enumerate(frame_mask.tolist()):
        seen = [j for j, ok in enumerate(row) if ok]
        if not seen or seen[-1] - seen[0] + 1 != len(seen):
            raise ValueError(f"attention 'frames' needs every query frame to see one "
                             f"contiguous run of key frames; frame {i} sees {seen}")
        runs.append((seen[0], seen[-1] + 1))
    return tuple(runs)


def flex_block_mask(frame_mask: torch.Tensor, tokens: int, block: int = FLEX_BLOCK):
    """The FlexAttention ``BlockMask`` of a frame-level mask (Fq, Fk) at P = ``tokens``,
    on the mask's device."""
    from torch.nn.attention.flex_attention import create_block_mask

    frames = frame_mask.to(torch.bool).contiguous()
    fq, fk = frames.shape

    def mask_mod(b, h, q_idx, kv_idx):
        return frames[q_idx // tokens, kv_idx // tokens]

    return create_block_mask(mask_mod, None, None, fq * tokens, fk * tokens,
                             device=frames.device, BLOCK_SIZE=block)


class FrameAttention:
    """Attention under one frame-level mask, prepared once; see the module docstring.

    frame_mask (Fq, Fk) bool: which key frames each query frame sees; ``tokens``: P, the
    tokens of a frame. Called with q (B, H, Fq·P, hd), k, v (B, H, Fk·P, hd), already
    rotated, it returns (B, H, Fq·P, hd).
    """

    def __init__(self, frame_mask: torch.Tensor, tokens: int, kind: AttentionKind = "sdpa",
                 block: int = FLEX_BLOCK):
        self.kind = check_attention(kind)
        self.frame_mask = frame_mask.to(torch.bool)
        self.tokens = tokens
        self.mask = self.runs = self.block_mask = self.flex = None
        if kind == "sdpa":
            self.mask = token_mask(self.frame_mask, tokens)                 # (Nq, Nk)
        elif kind == "frames":
            self.runs = key_runs(self.frame_mask)
        else:
            self.block_mask = flex_block_mask(self.frame_mask, tokens, block)
            self.flex = _flex_attention(self.frame_mask.is_cuda)

    def dense(self) -> "FrameAttention":
        """The same attention through SDPA's dense mask (what the FLOP counter reads)."""
        return self if self.kind == "sdpa" else FrameAttention(self.frame_mask, self.tokens)

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if self.kind == "sdpa":
            return F.scaled_dot_product_attention(q, k, v, attn_mask=self.mask)
        if self.kind == "frames":
            p = self.tokens
            return torch.cat([F.scaled_dot_product_attention(
                q[:, :, i * p:(i + 1) * p], k[:, :, first * p:end * p],
                v[:, :, first * p:end * p]) for i, (first, end) in enumerate(self.runs)], 2)
        # contiguous: inside a compiled graph Inductor may lay out the rotated queries and
        # keys (a concatenation) with permuted strides, which its FlexAttention refuses
        # (pytorch/pytorch#148827) or, on the CPU, silently misreads (torch 2.13, measured)
        return self.flex(q.contiguous(), k.contiguous(), v.contiguous(),
                         block_mask=self.block_mask)
