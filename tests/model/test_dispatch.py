"""The one kernel switch: which path each fused step takes, the CPU fallback, the test
override ``forced``, and that the Triton route gives the streaming sampler the frames
of plain PyTorch.

A stand-in for the kernels package (``FakeKernels``: the kernels' PyTorch twins behind
a call counter, triton "importable" or not) shows the routing without triton or a GPU;
the real kernels run against this path in ``tests/kernels`` and ``tests/gpu``."""

from collections import Counter

import pytest
import torch

from neural_engine.errors import EngineError
from neural_engine.model import dispatch
from neural_engine.model.world import WorldModel
from neural_engine.sampler.stream import SAMPLERS, StreamSampler

dispatch.fused_module()     # the kernels/ folder importable as neural_engine_kernels
from neural_engine_kernels.adaln import (gated_residual_layernorm_reference,  # noqa: E402
                                         modulated_layernorm_reference)
from neural_engine_kernels.attention import stream_attention_reference  # noqa: E402
from neural_engine_kernels.rope import norm_rotate_reference  # noqa: E402


class FakeKernels:
    """The kernels package's face (four steps, ``triton_importable``, ``available``)
    running the PyTorch twins and counting the calls of each step."""

    def __init__(self, importable: bool = True, runs: bool = True):
        self.importable, self.runs = importable, runs
        self.calls: Counter = Counter()

    def triton_importable(self) -> bool:
        return self.importable

    def available(self) -> bool:
        return self.runs

    def stream_attention(self, q, k, v, key_cos, key_sin, frame_mask, tokens):
        self.calls["stream_attention"] += 1
        return stream_attention_reference(q, k, v, key_cos, key_sin, frame_mask, tokens)

    def modulated_layernorm(self, x, shift, scale, eps):
        self.calls["modulated_layernorm"] += 1
        return modulated_layernorm_reference(x, shift, scale, eps)

    def gated_residual_layernorm(self, x, gate, h, shift, scale, eps):
        self.calls["gated_residual_layernorm"] += 1
        return gated_residual_layernorm_reference(x, gate, h, shift, scale, eps)

    def norm_rotate(self, x, weight, cos, sin, eps):
        self.calls["norm_rotate"] += 1
        return norm_rotate_reference(x, weight, cos, sin, eps)


@pytest.fixture
def m(tiny_model) -> WorldModel:
    return tiny_model()


@pytest.fixture
def fake(monkeypatch) -> FakeKernels:
    kernels = FakeKernels()
    monkeypatch.setattr(dispatch, "_FUSED", [kernels])
    return kernels


def stream(m, kernels, ticks=10):
    """Two rows joined one by one at different ticks (per-row positions and masks)."""
    s = StreamSampler(m.denoiser, m.schedule, SAMPLERS["rolling"], batch=2, kernels=kernels)
    g = torch.Generator().manual_seed(1)
    ctx = torch.randn(2, 2, *m.config.latent_shape, generator=g)
    s.join(0, ctx[0], torch.zeros(2, 8), seed=3)
    outs = []
    for tick in range(ticks):
        if tick == 3:
            s.join(1, ctx[1], torch.zeros(2, 8), seed=4)
        a = torch.zeros(2, 8)
        a[:, tick % 8] = 1
        out = s.step(a)
        if out is not None:
            outs.append(out.clone())
    return torch.stack(outs)


def test_triton_backend_on_cpu_tensors_takes_the_pytorch_path(m, fake, monkeypatch):
    """No Triton on CPU tensors unless forced, even with the interpreter switched on."""
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    ref = stream(m, "torch")
    assert torch.equal(stream(m, "triton"), ref)
    assert not fake.calls


def test_forced_triton_sends_every_step_of_every_caller_to_the_kernels(m, fake):
    ref = stream(m, "torch")
    with dispatch.forced("triton"):
        routed = stream(m, "torch")           # the caller asked for PyTorch: overridden
    assert set(fake.calls) == set(dispatch.FUSED_STEPS), fake.calls
    assert fake.calls["stream_attention"] == fake.calls["norm_rotate"] // 2   # q, then k
    err = (routed - ref).abs()
    assert torch.allclose(routed, ref, atol=1e-5, rtol=1e-5), (
        f"kernel twins vs torch: max {err.max().item():.3g}, mean {err.mean().item():.3g}")


def test_forced_torch_wins_inside_forced_triton_and_both_end_with_their_block(m, fake):
    with dispatch.forced("triton"):
        with dispatch.forced("torch"):
            stream(m, "triton", ticks=4)
        assert not fake.calls
        stream(m, "torch", ticks=4)
        assert fake.calls["stream_attention"] > 0
    fake.calls.clear()
    with pytest.raises(RuntimeError, match="inside"):
        with dispatch.forced("triton"):
            raise RuntimeError("inside")
    stream(m, "torch", ticks=4)                # the override ended with its block
    assert not fake.calls and not dispatch._FORCED


def test_forcing_what_cannot_run_is_refused_with_the_reason(monkeypatch):
    with pytest.raises(EngineError, match="unknown kernel backend 'fast'"):
        with dispatch.forced("fast"):
            pass
    monkeypatch.setattr(dispatch, "_FUSED", [FakeKernels(runs=False)])
    with pytest.raises(EngineError, match="need the triton package and a CUDA device"):
        with dispatch.forced("triton"):
            pass
    monkeypatch.setattr(dispatch, "_FUSED", [None])
    with pytest.raises(EngineError, match="kernels package .* is not importable"):
        with dispatch.forced("triton"):
            pass
    with dispatch.forced("torch"):             # the PyTorch path needs nothing
        assert dispatch._FORCED == ["torch"]
    assert not dispatch._FORCED


def test_without_the_kernels_package_the_fused_backend_falls_back(m, monkeypatch):
    ref = stream(m, "torch")
    monkeypatch.setattr(dispatch, "_FUSED", [None])
    assert not dispatch.fused_available()
    assert torch.equal(stream(m, "triton"), ref)


def test_unknown_backend_is_refused(m):
    with pytest.raises(EngineError, match="unknown kernel backend"):
        StreamSampler(m.denoiser, m.schedule, SAMPLERS["rolling"], kernels="cuda")


def test_auto_is_triton_only_on_cuda_with_triton_and_names_are_checked(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(dispatch, "_FUSED", [FakeKernels()])
    assert dispatch.resolve_backend("auto", cpu) == "torch"
    assert dispatch.resolve_backend("auto", cuda) == "triton"
    assert dispatch.fused_runs_triton(cuda) and not dispatch.fused_runs_triton(cpu)
    assert dispatch.resolve_backend("triton", cpu) == "triton"   # asked for: falls back per call
    monkeypatch.setattr(dispatch, "_FUSED", [FakeKernels(importable=False)])
    assert dispatch.resolve_backend("auto", cuda) == "torch"     # no triton: PyTorch
    monkeypatch.setattr(dispatch, "_FUSED", [None])
    assert dispatch.resolve_backend("auto", cuda) == "torch"     # no kernels package
    with pytest.raises(EngineError, match="unknown kernel backend"):
        dispatch.resolve_backend("cuda-magic", cpu)
