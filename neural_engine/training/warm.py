"""Warm starts: an earlier denoiser's weights loaded into a new one.

The earlier configuration may lack optional parts the new one has (the predecessor
path, the refiner, the null action of classifier-free guidance); the parts it lacks
keep the new model's values: zero-initialised ones start closed, so the model answers
as the earlier one did until training opens them.

It may also have a coarser patch p, where the new one's q divides it (p = k·q). Only
the layers that map latent pixels to a token or a token back to latent pixels are
shaped by the patch (``PATCH_INPUTS``, ``PATCH_OUTPUTS``); every other tensor fits as
it is. The patch-shaped ones are converted (``finer_inputs``, ``finer_outputs``):

- an input embedding's weight at q-offset (i, j) is the sum of the p-embedding's
  weights at the k·k p-offsets (u·q + i, v·q + j) that hold the same place in each
  q×q sub-block; so a p-block that tiles one q×q pattern k×k times (a block constant
  per channel is one) gives each of its q-tokens exactly the embedding the p-token had.
  The bias stays. Summing, not averaging, also keeps the spread of the embedding of
  pure noise (q² inputs through sums of k² weights against p² inputs through single
  ones), which the teacher sees at every high noise level.
- an output projection's row at q-offset (i, j) is the mean of the p-projection's rows
  at those k·k offsets (bias alike). A shared projection gives the k·k q-tokens of a
  p-block one q×q pattern each; when they carry the p-token's state, the mean is the
  pattern closest (least squares) to the p-token's output, and each q-token's output
  has the p-token's per-channel mean. Taking one sub-block's rows (the top-left) would
  copy that sub-block's detail into every other one.

It may also be shallower (``deeper_blocks``): a denoiser of depth d grows to depth
D ≥ d with its function unchanged. New block j stands for old block ⌊j·d/D⌋; the
first block standing for an old one is that block, and each further one is its copy
with the attention's and the MLP's output projections zeroed. A block whose two
branches add nothing passes the residual stream on unchanged, and the fused norm
after each block (``model/dit.py``: a block returns the next block's modulated norm)
is recomputed from that same stream with the next block's own factors, so the deeper
model answers exactly as the shallower one did. The copies' attention and MLP start
from trained weights rather than noise, and open as training moves their output
projections (whose gradients are not zero: their inputs are the copies' trained
features), the way a zero-initialised branch opens.

Every other setting must match. Rotary positions count in patch-2 tokens at every patch
(``frame_coords``' spacing, ``model/rope.py``), so the rotation between two places on
the frame, and with it the p-model's spatial attention, carries over unchanged.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from neural_engine.errors import EngineError
from neural_engine.model.config import DenoiserConfig

# The denoiser's patch-shaped tensors (``model/dit.py``): (D, C·p·p) weights that embed
# a patch, and (C·p·p, …) weights and biases that emit one, C·p·p laid out (C, p, p).
PATCH_INPUTS = ("embed.weight", "prev_embed.weight")
PATCH_OUTPUTS = ("final.weight", "final.bias", "refiner.features.weight",
                 "refiner.features.bias")
# The output projections of a block's two residual branches (``model/dit.py``'s Block):
# zeroed, the block adds nothing to the stream.
BRANCH_OUTPUTS = ("attn.out.weight", "attn.out.bias", "mlp.2.weight", "mlp.2.bias")


def finer_inputs(weight: torch.Tensor, p: int, q: int) -> torch.Tensor:
    """(D, C·p·p) → (D, C·q·q): each q-offset sums the p-offsets it stands for."""
    d, k = weight.shape[0], p // q
    w = weight.reshape(d, -1, k, q, k, q)                     # (D, C, u, i, v, j)
    return w.sum((2, 4)).reshape(d, -1)


def finer_outputs(weight: torch.Tensor, p: int, q: int) -> torch.Tensor:
    """(C·p·p, …) → (C·q·q, …): each q-offset averages the p-offsets it stands for."""
    rest, k = weight.shape[1:], p // q
    w = weight.reshape(-1, k, q, k, q, *rest)                 # (C, u, i, v, j, …)
    return w.mean((1, 3)).reshape(-1, *rest)


def finer_patches(state: dict[str, torch.Tensor], p: int, q: int) -> dict[str, torch.Tensor]:
    """A patch-p denoiser's state dict with its patch-shaped tensors made patch-q ones."""
    state = dict(state)
    for name in PATCH_INPUTS:
        if name in state:
            state[name] = finer_inputs(state[name], p, q)
    for name in PATCH_OUTPUTS:
        if name in state:
            state[name] = finer_outputs(state[name], p, q)
    return state


def deeper_blocks(state: dict[str, torch.Tensor], d: int, depth: int
                  ) -> dict[str, torch.Tensor]:
    """A depth-d denoiser's state dict made a depth-``depth`` one (module docstring)."""
    out = {name: t for name, t in state.items() if not name.startswith("blocks.")}
    seen: set[int] = set()
    for j in range(depth):
        i = j * d // depth
        prefix = f"blocks.{i}."
        for name, tensor in state.items():
            if name.startswith(prefix):
                rest = name[len(prefix):]
                copy = i in seen and rest in BRANCH_OUTPUTS
                out[f"blocks.{j}.{rest}"] = torch.zeros_like(tensor) if copy else tensor.clone()
        seen.add(i)
    return out


def warm_start(denoiser: nn.Module, new: DenoiserConfig, start: nn.Module,
               old: DenoiserConfig, where: str) -> None:
    """Load ``start`` (configuration ``old``) into ``denoiser`` (configuration ``new``): a
    finer patch and a greater depth are converted (module docstring)."""
    if not old.refiner:            # the block count of an absent refiner does not matter
        old = replace(old, refiner_blocks=new.refiner_blocks)
    if old.patch % new.patch:
        raise EngineError(f"--init weights have patch {old.patch}: a warm start makes "
                          f"patches finer only by a whole factor, not {new.patch}", where=where)
    if old.depth > new.depth:
        raise EngineError(f"--init weights have depth {old.depth}: a warm start adds blocks, "
                          f"it does not take them away (depth {new.depth})", where=where)
    allowed = {replace(new, previous_frame=path, refiner=refiner, action_guidance=null,
                       patch=old.patch, depth=old.depth)
               for path in {new.previous_frame, False} for refiner in {new.refiner, 0}
               for null in {new.action_guidance, False}}
    if old not in allowed:
        raise EngineError("--init weights have another denoiser configuration", where=where)
    state = start.state_dict()
    if old.patch != new.patch:
        state = finer_patches(state, old.patch, new.patch)
    if old.depth != new.depth:
        state = deeper_blocks(state, old.depth, new.depth)
    own = denoiser.state_dict()
    wrong = [name for name, tensor in state.items()
             if name in own and own[name].shape != tensor.shape]
    if wrong:            # a patch-shaped tensor this module does not know of
        raise EngineError(f"--init weights do not fit: {', '.join(wrong)}", where=where)
    denoiser.load_state_dict(state, strict=False)
