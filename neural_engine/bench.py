"""Benchmarks of the streaming step: what a tick costs, and how fast an action shows.

For each point of a sweep over window W, ring length L and batch B it measures,
after warm-up, the median time of a sampler tick (eager, and replayed as a CUDA graph
on a GPU), of decoding the frame, the resulting ticks per second, the response
latency in ticks (with and without late binding) and the peak GPU memory. GPU times
come from CUDA events around each call; CPU times from ``perf_counter``.

Speed targets are read off these numbers by people; no test asserts a time.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, replace
from typing import Callable

import torch

from neural_engine.model.autoencoder import to_uint8
from neural_engine.model.world import WorldModel
from neural_engine.sampler.stream import SamplerConfig, StreamSampler

@dataclass
class BenchRow:
    window: int
    ring: int
    sink: int
    batch: int
    step_ms_eager: float
    step_ms_graph: float | None
    decode_ms_eager: float
    decode_ms_graph: float | None
    ticks_per_s: float
    frames_per_s: float
    latency_ticks: int | None
    latency_ticks_late_binding: int | None
    peak_memory_mib: float | None


def _timer(device: torch.device) -> Callable[[Callable[[], None], int], float]:
    """Median milliseconds of ``fn`` over ``n`` calls (CUDA events on a GPU)."""

    def cuda(fn, n):
        times = []
        for _ in range(n):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        return statistics.median(times)

    def cpu(fn, n):
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times)

    return cuda if device.type == "cuda" else cpu


def _context(model: WorldModel, batch: int, device, dtype, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ctx = torch.randn(batch, 2, *model.config.latent_shape, generator=g).to(device, dtype)
    return ctx, torch.zeros(batch, 2, model.config.action_dim, device=device, dtype=dtype)


def _decode_fn(model: WorldModel, sampler: StreamSampler, frames: torch.Tensor):
    def decode():
        frames.copy_(to_uint8(model.autoencoder.decode(sampler.out).float()))
    return decode


def latency_probe(game, model: WorldModel) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Real context (two frames of a held-out world) and the input change to time."""
    from neural_engine.data.shards import HELD_OUT_SEED_BASE

    sim = game.simulator(batch=1)
    first = sim.reset([HELD_OUT_SEED_BASE])
    idle = torch.zeros(1, model.config.action_dim)
    context = torch.stack([first, sim.step(idle)], 1)                      # (1, 2, H, W, 3)
    space = game.spec.actions
    change = torch.zeros(space.dim)
    button = "turn_right" if "turn_right" in space.buttons else space.buttons[0]
    change[space.buttons.index(button)] = 1.0
    return context, torch.zeros(1, 2, space.dim), change


def bench_point(model: WorldModel, cfg: SamplerConfig, batch: int, device: torch.device,
                dtype: torch.dtype, ticks: int, warmup: int, graphs: bool,
                latency=None) -> BenchRow:
    """One sweep point; ``latency`` is ``latency_probe(...)``'s result, or None to skip."""
    measure = _timer(device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    sampler = StreamSampler(model.denoiser, model.schedule, cfg, batch, device, dtype)
    actions = torch.zeros(batch, model.config.action_dim, device=device, dtype=dtype)
    frames = torch.zeros(batch, model.config.height, model.config.width, 3, dtype=torch.uint8,
                         device=device)
    decode = _decode_fn(model, sampler, frames)
    tick = lambda: sampler.step(actions)  # noqa: E731

    sampler.reset(*_context(model, batch, device, dtype))
    for _ in range(warmup + cfg.window):
        tick()
    step_eager = measure(tick, ticks)
    with torch.no_grad():
        for _ in range(warmup):
            decode()
        decode_eager = measure(decode, ticks)
    step_graph = decode_graph = None
    if graphs and device.type == "cuda":
        from neural_engine.sampler.stream import CudaGraphPass

        sampler.capture()
        sampler.reset(*_context(model, batch, device, dtype))
        for _ in range(warmup + cfg.window):
            tick()
        step_graph = measure(tick, ticks)
        graph = CudaGraphPass(decode, device)
        decode_graph = measure(graph.replay, ticks)
    best = (step_graph if step_graph is not None else step_eager) + (
        decode_graph if decode_graph is not None else decode_eager)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    lat = lat_late = None
    if latency is not None:
        from neural_engine.evaluation.runner import response_latency

        lat = response_latency(model, cfg, *latency, ticks=24)
        lat_late = response_latency(model, replace(cfg, late_binding=True), *latency, ticks=24)
    return BenchRow(window=cfg.window, ring=cfg.ring, sink=cfg.sink, batch=batch,
                    step_ms_eager=step_eager, step_ms_graph=step_graph,
                    decode_ms_eager=decode_eager, decode_ms_graph=decode_graph,
                    ticks_per_s=1000.0 / best, frames_per_s=1000.0 * batch / best,
                    latency_ticks=lat, latency_ticks_late_binding=lat_late,
                    peak_memory_mib=peak)


def table(rows: list[BenchRow]) -> str:
    def f(v, fmt="{:.2f}"):
        return "-" if v is None else fmt.format(v)

    head = ("| W | L | S | B | step eager ms | step graph ms | decode ms (eager/graph) | "
            "ticks/s | frames/s | latency ticks (plain/late) | peak MiB |")
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        lines.append(
            f"| {r.window} | {r.ring} | {r.sink} | {r.batch} | {f(r.step_ms_eager)} | "
            f"{f(r.step_ms_graph)} | {f(r.decode_ms_eager)} / {f(r.decode_ms_graph)} | "
            f"{r.ticks_per_s:.0f} | {r.frames_per_s:.0f} | "
            f"{f(r.latency_ticks, '{}')} / {f(r.latency_ticks_late_binding, '{}')} | "
            f"{f(r.peak_memory_mib, '{:.0f}')} |")
    return "\n".join(lines)


def rows_as_dicts(rows: list[BenchRow]) -> list[dict]:
    return [asdict(r) for r in rows]
