"""Inputs and the parity check shared by the kernel tests.

``attention_inputs`` draws one streaming-attention call: random queries, an unrotated
cache, rotary tables of random positions (shared or per stream) and a frame mask
(shared or per stream) with whole key frames off for every query, one query frame that
sees a single key frame (an isolated window slot, as the sampler makes) and every query
frame seeing at least one. ``parity`` asserts a result against a higher-precision
reference and reports max and mean absolute error.
"""

from __future__ import annotations

import pytest
import torch

from neural_engine.model.dispatch import fused_module

# The kernels/ folder is the package neural_engine_kernels: installed, or loaded from this
# checkout by the engine's dispatch point; the test modules then import it by that name.
fused_module()

# Largest max and mean error accepted against a float64 reference, by the dtype the
# kernel computes in; the error of an element is |out − ref| / (1 + |ref|), absolute
# near zero and relative for large values (bfloat16 keeps 8 bits: 2e-2 is ~2.5 ulp).
TOLERANCE = {torch.float32: (1e-5, 1e-6), torch.float16: (5e-3, 5e-4),
             torch.bfloat16: (2e-2, 3e-3)}


def _parity(out: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype, what: str = "") -> None:
    assert out.shape == ref.shape, f"{what}: shape {tuple(out.shape)} vs {tuple(ref.shape)}"
    assert torch.isfinite(out).all(), f"{what}: non-finite output"
    ref = ref.double()
    err = (out.double() - ref).abs()
    scaled = err / (1 + ref.abs())
    tol_max, tol_mean = TOLERANCE[dtype]
    message = (f"{what} ({dtype}): max abs err {err.max().item():.3g}, mean "
               f"{err.mean().item():.3g}; scaled max {scaled.max().item():.3g}, mean "
               f"{scaled.mean().item():.3g} (tolerance {tol_max:g}, {tol_mean:g})")
    assert scaled.max().item() <= tol_max and scaled.mean().item() <= tol_mean, message


@pytest.fixture
def parity():
    """``parity(out, ref, dtype, what)``: assert closeness, report max/mean error."""
    return _parity


def frame_mask(batch: int, fq: int, fk: int, generator: torch.Generator) -> torch.Tensor:
    """(batch, Fq, Fk) bool: random, two key frames off for all, one isolated row."""
    mask = torch.rand(batch, fq, fk, generator=generator) < 0.5
    off = torch.randperm(fk, generator=generator)[:2]
    mask[:, :, off] = False
    mask[:, -1] = False
    mask[:, -1, fk - 1] = True                      # the last query frame sees one frame
    empty = ~mask.any(-1)
    mask[..., 0] |= empty                           # every query frame sees something
    return mask


def _attention_inputs(batch=1, heads=2, fq=5, fk=14, tokens=4, head_dim=64,
                      dtype=torch.float32, kv_dtype=None, per_stream=False, device="cpu",
                      seed=0) -> dict:
    g = torch.Generator().manual_seed(seed)
    kv_dtype = kv_dtype or dtype
    nq, nk = fq * tokens, fk * tokens

    def normal(*shape, dt):
        return torch.randn(*shape, generator=g).to(device, dt)

    streams = batch if per_stream else 1
    angle = torch.rand(streams, nk, head_dim // 2, generator=g) * 20.0
    return dict(
        q=normal(batch, heads, nq, head_dim, dt=dtype),
        k=normal(batch, heads, nk, head_dim, dt=kv_dtype),
        v=normal(batch, heads, nk, head_dim, dt=kv_dtype),
        key_cos=angle.cos().to(device), key_sin=angle.sin().to(device),
        frame_mask=frame_mask(streams, fq, fk, g).to(device),
        tokens_per_frame=tokens)


@pytest.fixture
def attention_inputs():
    """Factory of keyword arguments for one ``stream_attention`` call (see module)."""
    return _attention_inputs


def upcast(inputs: dict) -> dict:
    """The same call in float64, for the oracle."""
    return {k: v.double() if torch.is_tensor(v) and v.is_floating_point() else v
            for k, v in inputs.items()}


@pytest.fixture
def oracle():
    """``oracle(fn, **inputs)``: fn evaluated on float64 copies of the inputs."""
    return lambda fn, **inputs: fn(**upcast(inputs))
