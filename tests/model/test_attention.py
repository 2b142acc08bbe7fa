"""The uncached attention computes the same numbers whichever way it runs: SDPA's dense
mask, one unmasked SDPA per query frame, or FlexAttention's block mask.

FlexAttention has no backward pass on the CPU, so here its outputs are compared without
gradients, and its block mask tile by tile against the dense mask; its gradients, and
the compiled kernel, are compared on a GPU (tests/gpu/test_attention_cuda.py)."""

import pytest
import torch

from neural_engine.errors import EngineError
from neural_engine.model.attention import (FrameAttention, flex_block_mask, key_runs,
                                           resolve_attention)
from neural_engine.model.dispatch import token_mask
from neural_engine.model.dit import block_causal_mask

# FlexAttention eager (the CPU) warns that it is unfused; that is what these tests want
pytestmark = pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
CPU = torch.device("cpu")
# (frames, tokens a frame): the teacher's clip at the small model's 64 tokens and at
# the tiny model's 16, and a distillation scorer's history plus window
TRAINING_MASKS = [(13, 64), (13, 16), (7, 16)]


def _qkv(n: int, seed: int = 0, grad: bool = False):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 2, n, 16, generator=g).requires_grad_(grad) for _ in range(3)]


def _err(a: torch.Tensor, b: torch.Tensor) -> str:
    d = (a - b).abs()
    return f"max {d.max().item():.3g}, mean {d.mean().item():.3g}"


@pytest.mark.parametrize("frames, tokens", TRAINING_MASKS)
def test_one_call_per_frame_gives_the_dense_masks_outputs_and_gradients(frames, tokens):
    mask = block_causal_mask(frames)
    q, k, v = _qkv(frames * tokens, grad=True)
    dense = FrameAttention(mask, tokens, "sdpa")(q, k, v)
    split = FrameAttention(mask, tokens, "frames")(q, k, v)
    assert torch.allclose(split, dense, atol=1e-6, rtol=1e-5), _err(split, dense)
    up = torch.randn_like(dense)
    for a, b in zip(torch.autograd.grad(dense, (q, k, v), up),
                    torch.autograd.grad(split, (q, k, v), up)):
        assert torch.allclose(b, a, atol=1e-5, rtol=1e-5), _err(b, a)


@pytest.mark.parametrize("frames, tokens", TRAINING_MASKS)
def test_flex_attention_gives_the_dense_masks_outputs(frames, tokens):
    mask = block_causal_mask(frames)
    q, k, v = _qkv(frames * tokens, seed=1)
    with torch.no_grad():
        dense = FrameAttention(mask, tokens, "sdpa")(q, k, v)
        flex = FrameAttention(mask, tokens, "flex")(q, k, v)
    assert torch.allclose(flex, dense, atol=1e-6, rtol=1e-5), _err(flex, dense)


def _tiles(dense: torch.Tensor, block: int) -> dict[tuple[int, int], str]:
    """Each tile of a token mask (Nq, Nk), padded to whole tiles with False: "full",
    "partial" or absent (nothing in it is seen)."""
    nq, nk = dense.shape
    rows, cols = -(-nq // block), -(-nk // block)
    padded = torch.zeros(rows * block, cols * block, dtype=torch.bool)
    padded[:nq, :nk] = dense
    tiles = padded.view(rows, block, cols, block).permute(0, 2, 1, 3).flatten(2)
    out = {}
    for r in range(rows):
        for c in range(cols):
            if tiles[r, c].all():
                out[r, c] = "full"
            elif tiles[r, c].any():
                out[r, c] = "partial"
    return out


def _block_mask_tiles(bm) -> dict[tuple[int, int], str]:
    out = {}
    for kind, counts, indices in (("partial", bm.kv_num_blocks, bm.kv_indices),
                                  ("full", bm.full_kv_num_blocks, bm.full_kv_indices)):
        for r, n in enumerate(counts[0, 0].tolist()):
            for c in indices[0, 0, r, :n].tolist():
                assert (r, c) not in out, f"tile {(r, c)} listed twice"
                out[r, c] = kind
    return out


@pytest.mark.parametrize("frames, tokens", TRAINING_MASKS)
@pytest.mark.parametrize("block", [128, 64, 48])
def test_the_block_mask_is_the_dense_mask_tile_by_tile(frames, tokens, block):
    """Tiles the dense mask hides entirely are skipped, tiles it keeps entirely run
    without the mask, the rest look the mask up, and the lookup is the dense mask."""
    mask = block_causal_mask(frames)
    dense = token_mask(mask, tokens)
    bm = flex_block_mask(mask, tokens, block)
    assert bm.BLOCK_SIZE == (block, block)
    assert _block_mask_tiles(bm) == _tiles(dense, block)
    n = frames * tokens
    index = torch.arange(n)
    looked_up = bm.mask_mod(torch.zeros(()), torch.zeros(()), index[:, None], index[None, :])
    assert torch.equal(looked_up, dense)


def test_the_block_causal_block_mask_skips_the_future():
    """13 frames of 64 tokens in tiles of two frames: 28 of the 49 tiles are computed
    (the diagonal and the last row, which the padding past token 832 cuts, partly)."""
    tiles = _block_mask_tiles(flex_block_mask(block_causal_mask(13), 64))
    assert len(tiles) == 28
    assert all(c <= r for r, c in tiles)
    assert {rc for rc, kind in tiles.items() if kind == "partial"} == \
        {(r, r) for r in range(6)} | {(6, c) for c in range(7)}


def test_the_denoiser_answers_alike_with_every_attention(tiny_model):
    """The tiny model over a 13-frame clip (the teacher's): the prepared dense mask is
    the mask given as a tensor, exactly; one call per frame gives the same velocity and
    the same gradients of every weight and of the input; FlexAttention the same velocity."""
    model = tiny_model(128, 128, 8, previous_frame=True, action_guidance=True)
    d = model.denoiser
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 13, *model.config.latent_shape, generator=g)
    t, a = torch.rand(2, 13, generator=g), torch.rand(2, 13, 8, generator=g)
    pos, mask = torch.arange(13), block_causal_mask(13)
    drop = torch.zeros(2, 13, dtype=torch.bool)
    drop[1] = True
    up = torch.randn(x.shape, generator=g)

    def run(frame_mask):
        d.zero_grad(set_to_none=True)
        inp = x.clone().requires_grad_(True)
        v = d(inp, t, a, pos, frame_mask=frame_mask, drop_actions=drop)
        (v * up).sum().backward()
        grads = {n: p.grad.clone() for n, p in d.named_parameters() if p.grad is not None}
        return v.detach(), grads | {"input": inp.grad}

    v_tensor, _ = run(mask)
    v_dense, g_dense = run(d.frame_attention(mask, "sdpa"))
    v_split, g_split = run(d.frame_attention(mask, "frames"))
    assert torch.equal(v_dense, v_tensor)
    assert torch.allclose(v_split, v_dense, atol=1e-5, rtol=1e-5), _err(v_split, v_dense)
    assert g_split.keys() == g_dense.keys() and len(g_dense) > 20
    for name, grad in g_dense.items():
        assert torch.allclose(g_split[name], grad, atol=1e-5, rtol=1e-4), \
            f"{name}: {_err(g_split[name], grad)}"
    with torch.no_grad():
        v_flex = d(x, t, a, pos, frame_mask=d.frame_attention(mask, "flex"),
                   drop_actions=drop)
    assert torch.allclose(v_flex, v_dense, atol=1e-5, rtol=1e-5), _err(v_flex, v_dense)


def test_kinds_are_checked_and_flex_falls_back_off_the_gpu():
    with pytest.raises(EngineError, match="unknown attention 'flax'"):
        resolve_attention("flax", CPU)
    with pytest.raises(EngineError, match="unknown attention"):
        FrameAttention(block_causal_mask(3), 4, "dense")
    assert resolve_attention("flex", CPU) == "sdpa"
    assert resolve_attention("frames", CPU) == "frames"
    assert key_runs(block_causal_mask(3)) == ((0, 1), (0, 2), (0, 3))
    holey = torch.tensor([[True, False, True], [True, True, True], [False, True, True]])
    with pytest.raises(ValueError, match="frame 0 sees"):
        FrameAttention(holey, 4, "frames")
    # the same mask, dense, is fine, and so is a sliding window
    FrameAttention(holey, 4, "sdpa")
    window = holey.clone()
    window[0] = torch.tensor([True, True, False])
    assert key_runs(window) == ((0, 2), (0, 3), (1, 3))


@pytest.mark.slow
def test_compiled_the_denoiser_answers_alike_with_every_attention(tiny_model):
    """Under torch.compile (Inductor on the CPU): one call per frame with gradients,
    FlexAttention without."""
    model = tiny_model(64, 64, 8, previous_frame=True)
    d = model.denoiser
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 13, *model.config.latent_shape, generator=g)
    t, a = torch.rand(2, 13, generator=g), torch.rand(2, 13, 8, generator=g)
    pos, mask = torch.arange(13), block_causal_mask(13)
    fast = torch.compile(d)
    inp = x.clone().requires_grad_(True)
    v = fast(inp, t, a, pos, frame_mask=d.frame_attention(mask, "frames"))
    v.sum().backward()
    ref_inp = x.clone().requires_grad_(True)
    ref = d(ref_inp, t, a, pos, frame_mask=mask)
    ref.sum().backward()
    assert torch.allclose(v, ref, atol=1e-5, rtol=1e-4), _err(v, ref)
    assert torch.allclose(inp.grad, ref_inp.grad, atol=1e-5, rtol=1e-4)
    with torch.no_grad():
        v = fast(x, t, a, pos, frame_mask=d.frame_attention(mask, "flex"))
    assert torch.allclose(v, ref, atol=1e-5, rtol=1e-4), _err(v, ref)
