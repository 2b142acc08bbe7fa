"""The compiled Triton kernels on a CUDA GPU against float64 references, at the engine's
sizes (P = 64 tokens per frame, 5 query frames over 14 cache slots), with the sampler's
own masks, and captured in a CUDA graph. Skipped without a GPU."""

import pytest
import torch

import neural_engine_kernels as kernels
from neural_engine_kernels.adaln import (gated_residual_layernorm_reference,
                                         modulated_layernorm_reference)
from neural_engine_kernels.attention import stream_attention_reference
from neural_engine_kernels.rope import norm_rotate_reference
from neural_engine.sampler.kv_cache import CacheShape, StreamLayout, unpack

pytestmark = pytest.mark.gpu

F32, BF16, F16 = torch.float32, torch.bfloat16, torch.float16


@pytest.fixture(autouse=True)
def compiled_triton():
    pytest.importorskip("triton")


@pytest.mark.parametrize("batch, head_dim, dtype, kv_dtype, per_stream", [
    (1, 64, BF16, BF16, False),
    (3, 64, BF16, BF16, True),
    (8, 64, BF16, F32, True),
    (3, 32, BF16, BF16, True),
    (3, 128, BF16, BF16, False),
    (3, 64, F16, F16, True),
    (3, 64, F32, F32, True),
    (1, 128, F32, BF16, False),
])
def test_attention_matches_reference(attention_inputs, oracle, parity, batch, head_dim,
                                     dtype, kv_dtype, per_stream):
    a = attention_inputs(batch=batch, heads=4, tokens=64, head_dim=head_dim, dtype=dtype,
                         kv_dtype=kv_dtype, per_stream=per_stream, device="cuda", seed=batch)
    assert kernels.available()
    out = torch.full_like(a["q"], float("nan"))
    kernels.stream_attention(**a, out=out)
    parity(out, oracle(stream_attention_reference, **a), dtype,
           f"attention B{batch} hd{head_dim} kv {kv_dtype}")


@pytest.mark.parametrize("tokens", [16, 48, 36, 256])
def test_attention_other_frame_sizes(attention_inputs, oracle, parity, tokens):
    """Tiles of 16 (P = 16, 48), the per-element mask path (P = 36), and patch 1 at
    128×128 (P = 256: tiles of 64, four to a frame)."""
    a = attention_inputs(batch=2, heads=4, tokens=tokens, head_dim=64, dtype=BF16,
                         per_stream=True, device="cuda", seed=tokens)
    parity(kernels.stream_attention(**a), oracle(stream_attention_reference, **a), BF16,
           f"attention P{tokens}")


def sampler_masks(streams: int, shape: CacheShape) -> torch.Tensor:
    """(streams, Q, M) int32 frame masks of the sampler, each stream at another tick."""
    masks = []
    for s in range(streams):
        layout = StreamLayout(shape)
        valid = [False] * shape.window
        for tick in range(3 + 5 * s):
            valid = [True] * min(tick, shape.window) + [False] * (shape.window - min(
                tick, shape.window))
            plan = layout.plan(commit=tick % 2 == 0, window_valid=valid)
            layout.after_pass(commit=tick % 2 == 0)
        masks.append(torch.from_numpy(unpack(plan, shape)["mask"].copy()))
    return torch.stack(masks)


def test_attention_with_the_samplers_masks(attention_inputs, oracle, parity):
    shape = CacheShape(sink=1, ring=8, window=4)
    mask = sampler_masks(3, shape).cuda()
    a = attention_inputs(batch=3, heads=4, fq=shape.queries, fk=shape.slots, tokens=64,
                         dtype=BF16, per_stream=True, device="cuda")
    a["frame_mask"] = mask
    parity(kernels.stream_attention(**a), oracle(stream_attention_reference, **a), BF16,
           "attention, sampler masks")


def test_attention_reads_strided_queries_from_the_projection(parity):
    """q as the denoiser gets it: a (B, H, N, hd) view of the fused qkv projection."""
    g = torch.Generator().manual_seed(5)
    b, h, hd, p, fq, fk = 2, 4, 64, 64, 5, 14
    qkv = torch.randn(b, fq * p, 3, h, hd, generator=g).to("cuda", BF16)
    q = qkv.permute(2, 0, 3, 1, 4)[0]
    kv = torch.randn(2, b, h, fk * p, hd, generator=g).to("cuda", BF16)
    angle = torch.rand(fk * p, hd // 2, generator=g).cuda() * 20
    mask = torch.ones(fq, fk, dtype=torch.bool, device="cuda")
    args = (q, kv[0], kv[1], angle.cos(), angle.sin(), mask, p)
    parity(kernels.stream_attention(*args),
           stream_attention_reference(*(t.double() if torch.is_tensor(t) and t.is_floating_point()
                                        else t for t in args)), BF16, "strided q")


@pytest.mark.parametrize("dtype", [F32, BF16])
def test_adaln_matches_reference(parity, dtype):
    g = torch.Generator().manual_seed(3)
    x, h = (torch.randn(8, 5, 64, 256, generator=g).to("cuda", dtype) for _ in range(2))
    mod = torch.randn(8, 5, 6, 256, generator=g).to("cuda", dtype)
    shift, scale, gate = mod.unsqueeze(3).unbind(2)[:3]
    f64 = [t.double() for t in (x, gate, h, shift, scale)]
    parity(kernels.modulated_layernorm(x, shift, scale),
           modulated_layernorm_reference(f64[0], *f64[3:]), dtype, "modulated layernorm")
    new_x, y = kernels.gated_residual_layernorm(x, gate, h, shift, scale)
    want_x, want_y = gated_residual_layernorm_reference(*f64)
    parity(new_x, want_x, dtype, "gated residual")
    parity(y, want_y, dtype, "layernorm after the residual")


@pytest.mark.parametrize("head_dim, dtype, per_stream", [(64, BF16, True), (128, F32, False),
                                                         (32, BF16, False)])
def test_norm_rotate_matches_reference(parity, head_dim, dtype, per_stream):
    g = torch.Generator().manual_seed(head_dim)
    q = torch.randn(3, 4, 320, head_dim, generator=g).to("cuda", dtype)
    weight = torch.randn(head_dim, generator=g).to("cuda", dtype)
    angle = torch.rand(3 if per_stream else 1, 320, head_dim // 2, generator=g).cuda() * 20
    for cos, sin in ((angle.cos(), angle.sin()), (None, None)):
        parity(kernels.norm_rotate(q, weight, cos, sin),
               norm_rotate_reference(q.double(), weight.double(), cos, sin), dtype,
               f"norm+rotate hd{head_dim}")


def test_kernels_replay_in_a_cuda_graph(attention_inputs, oracle, parity):
    """Captured once; new inputs written in place (a new mask included) replay right."""
    a = attention_inputs(batch=3, heads=4, tokens=64, dtype=BF16, per_stream=True,
                         device="cuda", seed=11)
    x = torch.randn(3, 5, 64, 256, device="cuda", dtype=BF16)
    mod = torch.randn(3, 5, 2, 1, 256, device="cuda", dtype=BF16)
    out = torch.empty_like(a["q"])
    y = torch.empty_like(x)
    kernels.stream_attention(**a, out=out)                       # compile before capture
    kernels.modulated_layernorm(x, mod[:, :, 0], mod[:, :, 1], out=y)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        kernels.stream_attention(**a, out=out)
        kernels.modulated_layernorm(x, mod[:, :, 0], mod[:, :, 1], out=y)
    fresh = attention_inputs(batch=3, heads=4, tokens=64, dtype=BF16, per_stream=True,
                             device="cuda", seed=12)
    for name, tensor in fresh.items():
        if torch.is_tensor(tensor):
            a[name].copy_(tensor)
    x.normal_()
    mod.normal_()
    out.fill_(float("nan"))
    graph.replay()
    torch.cuda.synchronize()
    parity(out, oracle(stream_attention_reference, **fresh), BF16, "attention, graph replay")
    parity(y, modulated_layernorm_reference(x.double(), mod[:, :, 0].double(),
                                            mod[:, :, 1].double()), BF16, "adaLN, graph replay")
