"""GPU-only: the teacher's attention run as one SDPA per frame or as compiled
FlexAttention gives the dense mask's outputs and gradients (the CPU has no FlexAttention
backward pass; tests/model/test_attention.py covers the rest there)."""

import pytest
import torch

from neural_engine.model.attention import FrameAttention
from neural_engine.model.dit import block_causal_mask

pytestmark = pytest.mark.gpu


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


@pytest.mark.parametrize("kind", ["frames", "flex"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_teacher_attention_matches_the_dense_mask(kind, dtype):
    """The teacher's shapes (13 frames of 64 tokens, head size 64). Each way's error
    against float32 SDPA with the dense mask is at most twice the dense mask's own in
    the same dtype (bf16 rounds), outputs and the gradients of q, k, v."""
    g = torch.Generator().manual_seed(0)
    q, k, v, up = (torch.randn(8, 4, 13 * 64, 64, generator=g).cuda() for _ in range(4))
    mask = block_causal_mask(13, "cuda")

    def run(attention, dt):
        x = [t.to(dt).requires_grad_(True) for t in (q, k, v)]
        out = attention(*x)
        grads = torch.autograd.grad(out, x, up.to(dt))
        return [out.detach(), *grads]

    exact = run(FrameAttention(mask, 64, "sdpa"), torch.float32)
    dense = run(FrameAttention(mask, 64, "sdpa"), dtype)
    other = run(FrameAttention(mask, 64, kind), dtype)
    floor = 1e-5 if dtype == torch.float32 else 1e-3
    for name, ref, a, b in zip(("out", "dq", "dk", "dv"), exact, dense, other):
        err, base = _rel(b, ref), _rel(a, ref)
        assert torch.isfinite(b).all(), name
        assert err <= max(2 * base, floor), f"{kind} {name} ({dtype}): {err:.3g} " \
                                            f"against the dense mask's {base:.3g}"


def test_the_compiled_teacher_with_flex_attention_matches_the_dense_mask(small_model):
    """The small model over a 13-frame clip, compiled under bf16 autocast as the
    teacher's step is: FlexAttention moves the velocity and the gradients no further from
    the eager dense mask than compiling with the dense mask does (twice at most)."""
    m = small_model(torch.float32, previous_frame=True)
    d = m.denoiser.train()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 13, *m.config.latent_shape, generator=g).cuda()
    t, a = torch.rand(4, 13, generator=g).cuda(), torch.rand(4, 13, 8, generator=g).cuda()
    up = torch.randn(x.shape, generator=g).cuda()
    pos, mask = torch.arange(13, device="cuda"), block_causal_mask(13, "cuda")
    rotary = d.rotary(pos)
    fast = torch.compile(d)

    def run(model, kind):
        d.zero_grad(set_to_none=True)
        with torch.autocast("cuda", torch.bfloat16):
            v = model(x, t, a, pos, frame_mask=d.frame_attention(mask, kind),
                      rotary=rotary).float()
        (v * up).sum().backward()
        return v.detach(), torch.cat([p.grad.flatten() for p in d.parameters()
                                      if p.grad is not None])

    v_ref, g_ref = run(d, "sdpa")
    v_base, g_base = run(fast, "sdpa")
    v_flex, g_flex = run(fast, "flex")
    assert torch.isfinite(v_flex).all() and torch.isfinite(g_flex).all()
    report = (f"velocity {_rel(v_flex, v_ref):.3g} (compiled sdpa {_rel(v_base, v_ref):.3g}), "
              f"gradients {_rel(g_flex, g_ref):.3g} (compiled sdpa {_rel(g_base, g_ref):.3g})")
    assert _rel(v_flex, v_ref) <= max(2 * _rel(v_base, v_ref), 1e-2), report
    assert _rel(g_flex, g_ref) <= max(2 * _rel(g_base, g_ref), 1e-2), report
