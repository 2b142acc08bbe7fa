"""Triton kernels against their references on the CPU, through Triton's interpreter.

Not collected by itself: ``test_interpreter.py`` runs this file in a fresh process
with ``TRITON_INTERPRET=1`` (it must be set before triton is imported). Small shapes
(P = 4 exercises the per-element mask path, P = 16 the frame-aligned one) so the whole
file takes seconds, and the engine's own stream through the one switch,
``neural_engine.model.dispatch.forced("triton")``, against its PyTorch path. The
interpreter multiplies in float32 where the GPU would use bfloat16 tensor cores (see
``kernels.attention._dot_dtype``); operands are rounded alike, so the tolerances hold
for both.
"""

import pytest
import torch

import neural_engine_kernels as kernels
from neural_engine_kernels.adaln import (gated_residual_layernorm_reference,
                                         modulated_layernorm_reference)
from neural_engine_kernels.attention import stream_attention_reference
from neural_engine_kernels.rope import norm_rotate_reference

if not kernels.interpreting():
    pytest.skip("run by test_interpreter.py with TRITON_INTERPRET=1", allow_module_level=True)

F32, BF16, F16 = torch.float32, torch.bfloat16, torch.float16



@pytest.mark.parametrize("batch, tokens, head_dim, dtype, kv_dtype, per_stream", [
    (1, 4, 64, F32, F32, False),
    (3, 4, 64, BF16, BF16, True),
    (3, 4, 32, F32, BF16, True),
    (3, 4, 128, F16, F32, False),
    (1, 16, 64, BF16, F32, True),
    (2, 16, 32, F32, F32, False),
])
def test_attention_matches_reference(attention_inputs, oracle, parity, batch, tokens,
                                     head_dim, dtype, kv_dtype, per_stream):
    a = attention_inputs(batch=batch, tokens=tokens, head_dim=head_dim, dtype=dtype,
                         kv_dtype=kv_dtype, per_stream=per_stream, seed=batch + tokens)
    out = kernels.stream_attention(**a)
    assert out.dtype == dtype
    parity(out, oracle(stream_attention_reference, **a), dtype,
           f"attention B{batch} P{tokens} hd{head_dim} kv {kv_dtype}")


def test_attention_shared_tables_and_integer_mask_into_strided_out(attention_inputs, parity):
    """(Nk, hd/2) tables, an int32 (Fq, Fk) mask, a scale, and a result written into a
    (B, Nq, H, hd) buffer seen as (B, H, Nq, hd): every element written."""
    a = attention_inputs(batch=2, tokens=4, head_dim=32)
    a.update(key_cos=a["key_cos"][0], key_sin=a["key_sin"][0],
             frame_mask=a["frame_mask"][0].to(torch.int32))
    b, h, nq, hd = a["q"].shape
    buffer = torch.full((b, nq, h, hd), float("nan"))
    out = kernels.stream_attention(**a, scale=0.3, out=buffer.transpose(1, 2))
    assert out.data_ptr() == buffer.data_ptr()
    parity(buffer.transpose(1, 2), stream_attention_reference(**a, scale=0.3), F32,
           "attention, strided out")


@pytest.mark.parametrize("dim, dtype", [(256, F32), (256, BF16), (48, F32)])
def test_modulated_layernorm_matches_reference(parity, dim, dtype):
    g = torch.Generator().manual_seed(dim)
    x = torch.randn(3, 5, 4, dim, generator=g).to(dtype)
    mod = torch.randn(3, 5, 6, dim, generator=g).to(dtype)
    shift, scale = mod.unsqueeze(3).unbind(2)[:2]                 # strided (B, F, 1, D) views
    out = kernels.modulated_layernorm(x, shift, scale)
    assert out.dtype == dtype
    parity(out, modulated_layernorm_reference(x.double(), shift.double(), scale.double()),
           dtype, f"modulated layernorm D{dim}")


@pytest.mark.parametrize("dtype", [F32, BF16])
def test_gated_residual_layernorm_matches_reference_in_place(parity, dtype):
    g = torch.Generator().manual_seed(7)
    x, h = (torch.randn(2, 5, 4, 64, generator=g).to(dtype) for _ in range(2))
    shift, scale, gate = torch.randn(2, 5, 3, 64, generator=g).to(dtype).unsqueeze(3).unbind(2)
    want_x, want_y = gated_residual_layernorm_reference(
        *(t.double() for t in (x, gate, h, shift, scale)))
    new_x, y = kernels.gated_residual_layernorm(x, gate, h, shift, scale, out_x=x)
    assert new_x is x
    parity(new_x, want_x, dtype, "gated residual")
    parity(y, want_y, dtype, "layernorm after the residual")


@pytest.mark.parametrize("head_dim, dtype, per_stream, rotating", [
    (32, F32, False, True), (64, BF16, True, True), (128, F32, True, True),
    (64, F32, False, False)])
def test_norm_rotate_matches_reference(parity, head_dim, dtype, per_stream, rotating):
    g = torch.Generator().manual_seed(head_dim)
    q = torch.randn(2, 3, 12, head_dim, generator=g).to(dtype)
    weight = torch.randn(head_dim, generator=g).to(dtype)
    angle = torch.rand(2 if per_stream else 1, 12, head_dim // 2, generator=g) * 20
    cos, sin = (angle.cos(), angle.sin()) if rotating else (None, None)
    out = kernels.norm_rotate(q, weight, cos, sin)
    assert out.dtype == dtype
    parity(out, norm_rotate_reference(q.double(), weight.double(), cos, sin), dtype,
           f"norm+rotate hd{head_dim}")


def test_the_engines_stream_through_forced_triton_matches_pytorch(tiny_model, monkeypatch):
    """The one switch end to end: a streaming sampler on CPU tensors, its every fused
    step forced onto the Triton kernels, gives the frames of the PyTorch path."""
    from neural_engine.model import dispatch
    from neural_engine.sampler.stream import SAMPLERS, StreamSampler

    m = tiny_model(32, 32, 8, heads=1)      # head size 32, the attention kernel's least
    launches = []
    for module in (kernels.attention, kernels.adaln, kernels.rope):
        for name in ("stream_attention", "modulated_layernorm", "gated_residual_layernorm",
                     "norm_rotate"):
            if hasattr(module, name):
                def counted(*args, _run=getattr(module, name), _name=name):
                    launches.append(_name)
                    return _run(*args)
                monkeypatch.setattr(module, name, counted)

    def frames():
        s = StreamSampler(m.denoiser, m.schedule, SAMPLERS["rolling"], batch=1)
        g = torch.Generator().manual_seed(1)
        ctx = torch.randn(1, 2, *m.config.latent_shape, generator=g)
        s.reset(ctx, torch.zeros(1, 2, 8), seed=3)
        out = []
        for tick in range(5):
            a = torch.zeros(1, 8)
            a[:, tick % 8] = 1
            if (x := s.step(a)) is not None:
                out.append(x.clone())
        return torch.stack(out)

    ref = frames()
    assert not launches
    with dispatch.forced("triton"):
        got = frames()
    assert set(launches) == {"stream_attention", "modulated_layernorm",
                             "gated_residual_layernorm", "norm_rotate"}
    err = (got - ref).abs()
    assert err.max().item() < 1e-4, f"max {err.max().item():.3g}, mean {err.mean().item():.3g}"
