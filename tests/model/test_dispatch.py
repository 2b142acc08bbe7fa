"""The kernel dispatch point: the fused path (``kernels/``, its PyTorch references on the
CPU) gives the streaming sampler the same frames as plain PyTorch."""

import pytest
import torch

from neural_engine.errors import EngineError
from neural_engine.model import dispatch
from neural_engine.model.world import WorldModel
from neural_engine.sampler.stream import SAMPLERS, StreamSampler


@pytest.fixture
def m(tiny_model) -> WorldModel:
    return tiny_model()


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


def test_fused_backend_matches_torch_on_the_cpu(m):
    if not dispatch.fused_available():
        pytest.skip("the kernels package is not importable")
    ref, fused = stream(m, "torch"), stream(m, "triton")
    err = (ref - fused).abs()
    assert torch.allclose(ref, fused, atol=1e-4, rtol=1e-4), (
        f"fused vs torch: max {err.max().item():.3g}, mean {err.mean().item():.3g}")


def test_without_the_kernels_package_the_fused_backend_falls_back(m, monkeypatch):
    ref = stream(m, "torch")
    monkeypatch.setattr(dispatch, "_FUSED", [None])
    assert not dispatch.fused_available()
    assert torch.equal(stream(m, "triton"), ref)


def test_unknown_backend_is_refused(m):
    with pytest.raises(EngineError, match="unknown kernel backend"):
        StreamSampler(m.denoiser, m.schedule, SAMPLERS["rolling"], kernels="cuda")


def test_auto_backend_is_pytorch_off_the_gpu_and_names_are_checked():
    cpu = torch.device("cpu")
    assert dispatch.resolve_backend("auto", cpu) == "torch"
    assert dispatch.resolve_backend("triton", cpu) == "triton"  # asked for: references run
    with pytest.raises(EngineError, match="unknown kernel backend"):
        dispatch.resolve_backend("cuda-magic", cpu)
