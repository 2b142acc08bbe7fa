"""Benchmarks of the streaming tick: many players on one GPU, against the machine's limit.

For every window W and ring L asked for, every number of streams N (1, 2, 4, … 64) and
every variant, it builds a ``WorldSession`` of N rows, joins N streams (each its own
context and seed), warms up, then times ticks: one sampler step of all N streams and
the decoding of their N frames. Variants, side by side on the same pool shapes:

- ``eager``: PyTorch op by op;
- ``graph``: the same ops, the pass and the decoder replayed as CUDA graphs;
- ``compile``: the denoiser's forward through ``torch.compile``, then graphed;
- ``triton``: the fused kernels of ``kernels/`` (``neural_engine.model.dispatch``), graphed.

Per point: ms per tick (p50, p99, mean), ticks/s per stream and in total (from the
mean), peak GPU memory, and the floor: the FLOPs and bytes of one tick against the
matmul rate and memory bandwidth measured on the same machine in the same run (a large
matmul and a large device copy), with the fraction of it the variant achieves. GPU
times come from CUDA events around each tick after warm-up (synchronised per tick, so
a tick's time includes the host's share); CPU times from ``perf_counter``. The host's
share is timed too (until the tick's call returns), and every slow tick (over 1.5 × the
median) is counted, and attributed to the host when its host side was slow as well.

FLOPs are counted by ``torch.utils.flop_counter`` over one eager tick (matmuls and
convolutions), with attention counted from its shapes (2·2·Nq·Nk·hd per head and
layer). Bytes are the least a tick must move: the denoiser's weights and the whole KV
cache once per pass, the decoder's weights and the frames once per tick.

A variant that cannot run (no CUDA, no ``kernels`` package, a compile error) is
reported with its reason; it never stops the others. No test asserts a time.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch

from neural_engine.errors import EngineError
from neural_engine.model.dispatch import fused_available, fused_runs_triton
from neural_engine.model.world import WorldModel
from neural_engine.runtime.world import WorldSession
from neural_engine.sampler.stream import CONTEXT_FRAMES, SamplerConfig

VARIANTS = ("eager", "graph", "compile", "triton")


@dataclass(frozen=True)
class BenchSettings:
    ticks: int = 200
    warmup: int = 20
    variants: tuple[str, ...] = ("eager",)
    compile_mode: str = "default"


# -- the machine's limits ------------------------------------------------------------
def _timed(device: torch.device) -> Callable[[Callable[[], None]], tuple[float, float]]:
    """Milliseconds of one call and of its host side: (CUDA events, synchronised;
    ``perf_counter`` until the call returns, before the wait). On the CPU both are the
    ``perf_counter`` time."""

    def cuda(fn):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        t0 = time.perf_counter()
        fn()
        host = (time.perf_counter() - t0) * 1e3
        end.record()
        end.synchronize()
        return start.elapsed_time(end), host

    def cpu(fn):
        t0 = time.perf_counter()
        fn()
        ms = (time.perf_counter() - t0) * 1e3
        return ms, ms

    return cuda if device.type == "cuda" else cpu


def machine_limits(device: torch.device, dtype: torch.dtype, repeats: int = 10) -> dict:
    """Measured matmul rate (TFLOP/s, square ``dtype`` matmul) and bandwidth (GB/s, a
    device-to-device copy: bytes read plus bytes written)."""
    timed = _timed(device)
    gpu = device.type == "cuda"
    n = 8192 if gpu else 1024
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    matmul = lambda: torch.matmul(a, b, out=out)  # noqa: E731
    size = 2**30 if gpu else 2**26
    src = torch.ones(size, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    copy = lambda: dst.copy_(src)  # noqa: E731
    for fn in (matmul, copy):
        fn()
        fn()
    mm_ms = statistics.median(timed(matmul)[0] for _ in range(repeats))
    copy_ms = statistics.median(timed(copy)[0] for _ in range(repeats))
    return {"matmul_tflops": 2 * n**3 / (mm_ms * 1e-3) / 1e12,
            "bandwidth_gbs": 2 * size / (copy_ms * 1e-3) / 1e9,
            "matmul": f"{n}x{n}x{n} {str(dtype)[6:]}", "copy_bytes": size}


# -- the work of one tick ----------------------------------------------------------------
def tick_cost(pool: WorldSession, actions: torch.Tensor) -> dict:
    """FLOPs and least bytes of one tick of an eager pool whose windows are full."""
    from torch.utils.flop_counter import FlopCounterMode

    sampler = pool.sampler
    with FlopCounterMode(display=False) as counter:
        pool.step(actions)
    counted = sum(n for op, n in counter.get_flop_counts().get("Global", {}).items()
                  if "attention" not in str(op))
    dn, shape = pool.model.config.denoiser, sampler.shape
    nq, nk = shape.queries * sampler.tokens, shape.slots * sampler.tokens
    passes = sampler.cfg.steps_per_tick
    attention = passes * dn.depth * 4 * pool.capacity * dn.heads * nq * nk * dn.head_dim
    weights = sum(p.numel() * p.element_size() for p in pool.model.denoiser.parameters())
    decoder = sum(p.numel() * p.element_size()
                  for p in pool.model.autoencoder.decoder.parameters())
    moved = passes * (weights + sampler.kv.nbytes) + decoder + pool.frames.numel()
    return {"flops": counted + attention, "bytes": moved}


def floor_ms(cost: dict, limits: dict) -> tuple[float, str]:
    compute = cost["flops"] / (limits["matmul_tflops"] * 1e12) * 1e3
    memory = cost["bytes"] / (limits["bandwidth_gbs"] * 1e9) * 1e3
    return (compute, "compute") if compute >= memory else (memory, "memory")


# -- one point ---------------------------------------------------------------------
def _contexts(model: WorldModel, streams: int, device, dtype):
    g = torch.Generator().manual_seed(0)
    ctx = torch.randn(streams, 2, *model.config.latent_shape, generator=g)
    return ctx.to(device, dtype)


def _actions(model: WorldModel, streams: int, device, dtype) -> list[torch.Tensor]:
    """A few fixed action batches to cycle through (nothing allocated per tick)."""
    g = torch.Generator().manual_seed(1)
    return [(torch.rand(streams, model.config.action_dim, generator=g) < 0.3).to(device, dtype)
            for _ in range(8)]


def build_pool(model: WorldModel, cfg: SamplerConfig, streams: int, variant: str,
               device: torch.device, settings: BenchSettings) -> WorldSession:
    """A pool of ``streams`` slots for a variant, every slot joined, windows not yet full."""
    if variant != "eager" and device.type != "cuda":
        raise EngineError(f"{variant} needs a CUDA device")
    if variant == "triton" and not fused_available():
        raise EngineError("the kernels package is not importable")
    if variant == "triton" and not fused_runs_triton(device):
        raise EngineError("the fused steps would fall back to PyTorch here (no triton)")
    compile_options = None
    if variant == "compile":
        # a fresh compile per point: every point's shapes are its own, and a shared cache
        # would hit the recompile limit and quietly run eager inside the graph
        torch._dynamo.reset()
        compile_options = {"mode": settings.compile_mode, "dynamic": False}
    pool = WorldSession(model, cfg, streams, device, cuda_graphs=variant != "eager",
                        kernels="triton" if variant == "triton" else "torch",
                        compile_options=compile_options)
    dtype = next(model.parameters()).dtype
    for slot, context in enumerate(_contexts(model, streams, device, dtype)):
        pool.join(context, seed=slot)
    return pool


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def time_pool(pool: WorldSession, actions: list[torch.Tensor], settings: BenchSettings
              ) -> dict:
    """ms per tick over ``settings.ticks`` ticks after warm-up, with the host's share.

    A slow tick (over 1.5 × the median) counts as a host stall when its host side was
    also over 1.5 × the host median: the host, not the GPU, made it late.
    """
    timed = _timed(pool.device)
    for i in range(settings.warmup + pool.sampler.cfg.window):
        pool.step(actions[i % len(actions)])
    pairs = [timed(lambda a=actions[i % len(actions)]: pool.step(a))
             for i in range(settings.ticks)]
    times = [t for t, _ in pairs]
    hosts = [h for _, h in pairs]
    p50, host_p50 = statistics.median(times), statistics.median(hosts)
    slow = [(t, h) for t, h in pairs if t > 1.5 * p50]
    mean = statistics.fmean(times)
    n = pool.capacity
    return {"tick_ms_p50": p50, "tick_ms_p99": _quantile(times, 0.99), "tick_ms_mean": mean,
            "tick_ms_max": max(times), "host_ms_p50": host_p50,
            "host_ms_p99": _quantile(hosts, 0.99), "slow_ticks": len(slow),
            "slow_ticks_host": sum(h > 1.5 * host_p50 for _, h in slow),
            "ticks_per_s": 1000.0 / mean, "ticks_per_s_total": 1000.0 * n / mean}


def bench_point(model: WorldModel, cfg: SamplerConfig, streams: int, device: torch.device,
                settings: BenchSettings, limits: dict, progress=print) -> dict:
    """Every variant at one (W, L, N) point; a failing variant records its reason."""
    dtype = next(model.parameters()).dtype
    actions = _actions(model, streams, device, dtype)
    row = {"window": cfg.window, "ring": cfg.ring, "sink": cfg.sink, "streams": streams,
           "batch": streams, "variants": {}}
    cost = None
    for variant in settings.variants:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        try:
            pool = build_pool(model, cfg, streams, variant, device, settings)
            result = time_pool(pool, actions, settings)
        except Exception as exc:        # a variant's failure is a result, not a crash
            result = {"error": _reason(exc)}
        else:
            if cost is None and variant == "eager":
                cost = _counted(lambda: tick_cost(pool, actions[0]))
            if device.type == "cuda":
                result["peak_memory_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        pool = None
        row["variants"][variant] = result
        progress(f"W={cfg.window} L={cfg.ring} N={streams} {variant}: "
                 + (result["error"] if "error" in result else
                    f"{result['tick_ms_p50']:.2f} ms p50, {result['tick_ms_p99']:.2f} ms p99, "
                    f"{result['ticks_per_s']:.0f} ticks/s per stream"))
    if cost is None:
        def count() -> dict:
            pool = build_pool(model, cfg, streams, "eager", device, settings)
            for i in range(cfg.window):
                pool.step(actions[i % len(actions)])
            return tick_cost(pool, actions[0])
        cost = _counted(count)
    if "error" in cost:
        row.update({"flops_per_tick": None, "bytes_per_tick": None, "floor_ms": None,
                    "floor_bound": None, "floor_error": cost["error"]})
    else:
        floor, bound = floor_ms(cost, limits)
        row.update({"flops_per_tick": cost["flops"], "bytes_per_tick": cost["bytes"],
                    "floor_ms": floor, "floor_bound": bound})
    timed = {k: v for k, v in row["variants"].items() if "error" not in v}
    for name, result in timed.items():
        if row["floor_ms"] is not None:
            result["floor_fraction"] = row["floor_ms"] / result["tick_ms_mean"]
        row[f"step_ms_{name}"] = result["tick_ms_p50"]
    if timed:
        row["best"] = max(timed, key=lambda k: timed[k]["ticks_per_s"])
        row["ticks_per_s"] = timed[row["best"]]["ticks_per_s"]
    return row


def _reason(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:300]


def _counted(count) -> dict:
    """``count()`` (a tick's FLOPs and bytes), or its failure as a result."""
    try:
        return count()
    except Exception as exc:        # no floor for this point; the timings stand
        return {"error": _reason(exc)}


def latency_probe(game, model: WorldModel) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Real context (two frames of a held-out world) and the input change to time."""
    sim = game.simulator(batch=1)
    first = sim.reset([game.spec.seeds.held_out])
    idle = torch.zeros(1, model.config.action_dim)
    frames = [first] + [sim.step(idle) for _ in range(CONTEXT_FRAMES - 1)]
    context = torch.stack(frames, 1)                                      # (1, Fc, H, W, 3)
    space = game.spec.actions
    change = torch.zeros(space.dim)
    for button in game.spec.control.latency:
        change[space.buttons.index(button)] = 1.0
    return context, torch.zeros(1, CONTEXT_FRAMES, space.dim), change


def latency(model: WorldModel, cfg: SamplerConfig, probe) -> dict:
    """Response latency in shown-frame ticks, without and with late binding."""
    from dataclasses import replace

    from neural_engine.evaluation.runner import response_latency

    return {"plain": response_latency(model, cfg, *probe, ticks=24),
            "late_binding": response_latency(model, replace(cfg, late_binding=True), *probe,
                                             ticks=24)}


# -- targets and tables ----------------------------------------------------------------
def targets(rows: list[dict]) -> list[dict]:
    """The issue's targets, read off the best variant of each point (first window)."""
    if not rows:
        return []
    first = [r for r in rows if (r["window"], r["ring"]) == (rows[0]["window"], rows[0]["ring"])
             and "best" in r]
    one = next((r for r in first if r["streams"] == 1), None)
    many = [r["streams"] for r in first if r["ticks_per_s"] >= 30.0]
    ratios = [r["variants"][r["best"]]["tick_ms_p99"] / r["variants"][r["best"]]["tick_ms_p50"]
              for r in first]
    out = []
    if one is not None:
        out.append({"target": "one stream ≥ 600 ticks/s", "value": one["ticks_per_s"],
                    "met": one["ticks_per_s"] >= 600.0})
    out.append({"target": "≥ 32 streams at ≥ 30 ticks/s each",
                "value": max(many, default=0), "met": max(many, default=0) >= 32})
    if ratios:
        out.append({"target": "p99 < 1.5 × p50 (worst point)", "value": max(ratios),
                    "met": max(ratios) < 1.5})
    return out


def markdown(report: dict) -> str:
    def f(v, fmt="{:.2f}"):
        return "-" if v is None else fmt.format(v)

    lim = report["limits"]
    lines = [f"# Streaming tick benchmark: {report['machine']}", "",
             f"{report['game']}, weights {report['weights']}, dtype {report['dtype']}, "
             f"torch {report['torch']}; {report['ticks']} timed ticks after "
             f"{report['warmup']} warm-up; {report['timing']}.", "",
             f"Measured limits: {lim['matmul_tflops']:.1f} TFLOP/s ({lim['matmul']} matmul), "
             f"{lim['bandwidth_gbs']:.0f} GB/s (device copy).", "",
             "| W | L | N | variant | ms/tick p50 | p99 | p99/p50 | host ms p50 / p99 | "
             "slow ticks (host) | ticks/s per stream | ticks/s total | peak MiB | "
             "floor ms (bound) | of floor |",
             "|" + "---|" * 14]
    for r in report["rows"]:
        floor = "-" if r["floor_ms"] is None else f"{r['floor_ms']:.3f} ({r['floor_bound']})"
        for name, v in r["variants"].items():
            head = f"| {r['window']} | {r['ring']} | {r['streams']} | {name} |"
            if "error" in v:
                lines.append(f"{head} failed: {v['error'].replace('|', '/')} |"
                             + " |" * 9 + f" {floor} | - |")
                continue
            lines.append(
                f"{head} {v['tick_ms_p50']:.2f} | {v['tick_ms_p99']:.2f} | "
                f"{v['tick_ms_p99'] / v['tick_ms_p50']:.2f} | "
                f"{f(v.get('host_ms_p50'))} / {f(v.get('host_ms_p99'))} | "
                f"{v.get('slow_ticks', '-')} ({v.get('slow_ticks_host', '-')}) | "
                f"{v['ticks_per_s']:.0f} | "
                f"{v['ticks_per_s_total']:.0f} | {f(v.get('peak_memory_mib'), '{:.0f}')} | "
                f"{floor} | {f(v.get('floor_fraction'), '{:.1%}')} |")
    if report["targets"]:
        lines += ["", "| target (best variant) | value | met |", "|---|---|---|"]
        for t in report["targets"]:
            lines.append(f"| {t['target']} | {t['value']:.2f} | {'yes' if t['met'] else 'no'} |")
    latency = report.get("latency")
    if latency:
        lines += ["", f"Response latency (ticks, plain / late binding): "
                      f"{latency['plain']} / {latency['late_binding']}."]
    return "\n".join(lines) + "\n"
