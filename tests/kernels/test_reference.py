"""The PyTorch references compute what the engine computes today (they are the oracle
and the CPU path, so they are pinned to the engine's own modules, bit for bit where the
operations are the same), and attention means what the frame mask says."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neural_engine_kernels.adaln import (gated_residual_layernorm_reference,
                                         modulated_layernorm_reference)
from neural_engine_kernels.attention import stream_attention_reference
from neural_engine_kernels.rope import norm_rotate_reference, rotate_reference
from neural_engine.model import dispatch
from neural_engine.model.dit import RMSNorm
from neural_engine.model.rope import RotaryTable, frame_coords, rotate


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rotation_is_the_engines_half_split_rotation(dtype):
    torch.manual_seed(0)
    x = torch.randn(2, 4, 3 * 16, 64).to(dtype)
    cos, sin = RotaryTable(64, 10000.0)(*frame_coords(torch.tensor([0, 3, 5]), 4, 4))
    assert torch.equal(rotate_reference(x, cos, sin), rotate(x, cos, sin))
    # per-stream tables: stream b turns with its own rows
    cos2, sin2 = torch.stack([cos, cos.flip(0)]), torch.stack([sin, sin.flip(0)])
    per_stream = rotate_reference(x, cos2, sin2)
    assert torch.equal(per_stream[1], rotate(x[1], cos.flip(0), sin.flip(0)))
    # pairs are (i, i + hd/2): a quarter turn sends channel i to i + hd/2
    e = torch.zeros(1, 1, 1, 8)
    e[..., 1] = 1.0
    turned = rotate_reference(e, torch.zeros(1, 4), torch.ones(1, 4))
    assert turned[0, 0, 0].tolist() == [0, 0, 0, 0, 0, 1, 0, 0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_norm_rotate_reference_is_q_norm_then_rotate(dtype):
    torch.manual_seed(1)
    norm = RMSNorm(32).to(dtype)
    nn.init.normal_(norm.weight)
    q = torch.randn(2, 4, 20, 32).to(dtype)
    cos, sin = torch.randn(20, 16), torch.randn(20, 16)
    with torch.no_grad():
        # the engine's own path (dispatch, torch backend), and its definition
        expected = dispatch.norm_rotate(q, norm.weight, cos, sin)
        assert torch.equal(expected, rotate(F.rms_norm(q, (32,), norm.weight, 1e-6), cos, sin))
        assert torch.equal(norm_rotate_reference(q, norm.weight, cos, sin), expected)
        assert torch.equal(norm_rotate_reference(q, norm.weight, None, None),
                           dispatch.norm_rotate(q, norm.weight, None, None))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_adaln_references_are_the_blocks_sequence(dtype):
    torch.manual_seed(2)
    x, h = torch.randn(2, 5, 4, 32).to(dtype), torch.randn(2, 5, 4, 32).to(dtype)
    shift, scale, gate = torch.randn(2, 5, 3, 32).to(dtype).unsqueeze(3).unbind(2)
    norm = nn.LayerNorm(32, elementwise_affine=False, eps=1e-6)
    assert torch.equal(modulated_layernorm_reference(x, shift, scale),
                       norm(x) * (1 + scale) + shift)
    new_x, y = gated_residual_layernorm_reference(x, gate, h, shift, scale)
    assert torch.equal(new_x, x + gate * h)
    assert torch.equal(y, norm(x + gate * h) * (1 + scale) + shift)


def test_attention_reference_is_the_engines_cached_attention(attention_inputs):
    """Shared tables: the same launches as ``dit.Attention`` on a cache."""
    a = attention_inputs(batch=2, tokens=4, dtype=torch.bfloat16, kv_dtype=torch.float32)
    p = a["tokens_per_frame"]
    fq, fk = a["frame_mask"].shape[1:]
    q_frame, k_frame = torch.arange(fq).repeat_interleave(p), torch.arange(fk).repeat_interleave(p)
    token_mask = a["frame_mask"][0][q_frame][:, k_frame]
    keys = rotate(a["k"], a["key_cos"][0], a["key_sin"][0]).to(a["q"].dtype)
    expected = F.scaled_dot_product_attention(a["q"], keys, a["v"].to(a["q"].dtype),
                                              attn_mask=token_mask)
    assert torch.equal(stream_attention_reference(**a), expected)


def test_attention_reference_attends_only_to_allowed_frames(attention_inputs):
    """Per-stream tables and masks against a dense float64 softmax over the allowed
    key frames, gathered frame by frame."""
    a = attention_inputs(batch=3, heads=2, tokens=4, head_dim=32, per_stream=True, seed=3)
    a = {k: v.double() if torch.is_tensor(v) and v.is_floating_point() else v
         for k, v in a.items()}
    out = stream_attention_reference(**a)
    p, hd = a["tokens_per_frame"], a["q"].shape[-1]
    for b in range(3):
        keys = rotate(a["k"][b], a["key_cos"][b], a["key_sin"][b])        # (H, Nk, hd)
        for fi, allowed in enumerate(a["frame_mask"][b]):
            cols = torch.cat([torch.arange(fj * p, fj * p + p)
                              for fj in allowed.nonzero().flatten().tolist()])
            q = a["q"][b, :, fi * p:(fi + 1) * p]                          # (H, P, hd)
            weights = (q @ keys[:, cols].transpose(1, 2) / hd ** 0.5).softmax(-1)
            expected = weights @ a["v"][b][:, cols]
            assert torch.allclose(out[b, :, fi * p:(fi + 1) * p], expected, atol=1e-12)


def test_reference_writes_into_out(attention_inputs):
    a = attention_inputs(batch=1)
    out = torch.full_like(a["q"], float("nan"))
    result = stream_attention_reference(**a, out=out)
    assert result is out and torch.isfinite(out).all()
