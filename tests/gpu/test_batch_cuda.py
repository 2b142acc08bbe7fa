"""GPU-only checks of many streams in one batch: the graphed pool equals the eager pool
with streams joining and leaving mid-run, a pooled stream equals the stream alone, and
the Triton kernels give the pool the frames of plain PyTorch."""

import pytest
import torch

from neural_engine.model.dispatch import fused_runs_triton
from neural_engine.runtime.world import WorldSession
from neural_engine.sampler.stream import SAMPLERS, StreamSampler

pytestmark = pytest.mark.gpu
EVENTS = {0: [("join", 0), ("join", 1)], 3: [("join", 2)], 9: [("leave", 1)], 12: [("join", 3)]}


def start(m, stream, dtype):
    g = torch.Generator().manual_seed(10 + stream)
    return torch.randn(2, *m.config.latent_shape, generator=g).to("cuda", dtype)


def drive(m, dtype, graphs, kernels="torch", ticks=24, capacity=4):
    """Latents per stream per own tick from a pool driven by ``EVENTS``."""
    pool = WorldSession(m, SAMPLERS["rolling"], capacity, "cuda", cuda_graphs=graphs,
                        kernels=kernels)
    slot_of, got = {}, {}
    for tick in range(ticks):
        for kind, stream in EVENTS.get(tick, []):
            if kind == "join":
                slot_of[stream] = pool.join(start(m, stream, dtype), seed=stream)
                got[stream] = []
            else:
                pool.leave(slot_of.pop(stream))
        a = torch.zeros(capacity, 8, device="cuda", dtype=dtype)
        a[:, tick % 8] = 1
        _, ready = pool.step(a)
        for stream, slot in slot_of.items():
            got[stream].append(pool.sampler.out[slot].float().clone() if ready[slot] else None)
    return got


def compare(a, b):
    errs = []
    for stream in a:
        assert [x is None for x in a[stream]] == [x is None for x in b[stream]]
        errs += [(x - y).abs() for x, y in zip(a[stream], b[stream]) if x is not None]
    err = torch.stack(errs)
    assert torch.isfinite(err).all()
    return err.max().item(), err.mean().item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_graphed_pool_matches_eager_pool(dtype, small_model):
    m = small_model(dtype)
    worst, mean = compare(drive(m, dtype, False), drive(m, dtype, True))
    print(f"pool graph vs eager ({dtype}): max {worst:.3g}, mean {mean:.3g}")
    assert mean < (1e-4 if dtype == torch.float32 else 5e-2)


def test_pooled_stream_matches_the_stream_alone(small_model):
    m = small_model(torch.float32)
    got = drive(m, torch.float32, True)
    sampler = StreamSampler(m.denoiser, m.schedule, SAMPLERS["rolling"], 1, "cuda")
    sampler.capture()
    sampler.reset(start(m, 2, torch.float32)[None], torch.zeros(1, 2, 8, device="cuda"), seed=2)
    alone = []
    for tick in range(3, 24):
        a = torch.zeros(1, 8, device="cuda")
        a[:, tick % 8] = 1
        out = sampler.step(a)
        alone.append(None if out is None else out[0].float().clone())
    worst, mean = compare({2: got[2]}, {2: alone})
    print(f"pooled vs alone: max {worst:.3g}, mean {mean:.3g}")
    assert mean < 1e-4


def test_triton_pool_matches_torch_pool(small_model):
    if not fused_runs_triton(torch.device("cuda")):
        pytest.skip("the kernels package does not run Triton here")
    m = small_model(torch.bfloat16)
    worst, mean = compare(drive(m, torch.bfloat16, True),
                          drive(m, torch.bfloat16, True, kernels="triton"))
    print(f"pool triton vs torch (bf16): max {worst:.3g}, mean {mean:.3g}")
    assert mean < 5e-2
