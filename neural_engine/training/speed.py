"""The training benchmark: how fast a stage's step runs, and where its time goes.

For one stage (ae, teacher, rolling) of a registry size, with the stage's own
configuration and ``--set`` overrides, it builds the stage on random weights (a random
autoencoder for the teacher, a random teacher for the distillation), runs warm-up steps
(compilation included), then times steps:

- steps/s and frames/s (the stage's items per step) from the wall clock over the timed
  steps, synchronised at both ends, and the median step from CUDA events;
- FLOPs per step counted by ``torch.utils.flop_counter`` over one step run eagerly
  (matmuls, convolutions and attention, forward and backward), and the achieved
  TFLOP/s against the bf16 matrix-product rate measured in the same run;
- peak GPU memory;
- where the step goes: each phase the stage marks (``phases.py``: data, forward,
  backward, optimizer, …) in device milliseconds per step, the share of the step spent
  waiting for data, and from the PyTorch profiler the device's busy time (kernels and
  copies) against the step's wall time (the rest is the host's gaps between kernels),
  with the heaviest kernels.

Under ``torchrun`` every rank builds the stage and runs the same steps (each its own
data, gradients all-reduced); every rank's timing is gathered, and the report adds
frames/s in total and per GPU, the spread between ranks (stragglers), the device time
of the all-reduce kernels, and the share of the step the gradient synchronisation
costs: the step timed again with the all-reduce skipped (``no_sync``), against the
real one. ``scaling.py`` puts such reports of 1, 2, 4 and 8 GPUs side by side.

It knows stages only through their ``train_step``, ``items_per_step`` and ``phases``
(and, for the FLOP count, the plain modules behind their compiled forwards).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from neural_engine.bench import machine_limits
from neural_engine.games import Game
from neural_engine.model.config import named_config
from neural_engine.model.weights import save_world_model
from neural_engine.model.world import WorldModel
from neural_engine.training.distributed import Distributed, gather, no_sync
from neural_engine.training.trainer import fast_matmuls


def _random_world_model(game: Game, size: str, folder: Path, **denoiser) -> Path:
    spec = game.spec
    torch.manual_seed(0)
    model = WorldModel(named_config(size, spec.name, spec.height, spec.width, spec.actions.dim,
                                    **denoiser))
    return save_world_model(folder / f"random-{size}.safetensors", model.eval(),
                            dtype=torch.float32)


def build_stage(stage: str, game: Game, cfg, device: torch.device, folder: Path,
                size: str, weights: Path | None = None, env: Distributed = Distributed()):
    """A stage on random weights of ``size`` (or on ``weights`` for its input model)."""
    if stage == "ae":
        from neural_engine.training.autoencoder import AutoencoderStage
        return AutoencoderStage(game, replace(cfg, size=size), device, env)
    if stage == "teacher":
        from neural_engine.training.teacher import TeacherStage
        cfg = replace(cfg, size=size)
        return TeacherStage(game, cfg, weights or _random_world_model(game, size, folder),
                            device, env)
    if stage == "rolling":
        from neural_engine.training.rolling import RollingStage
        return RollingStage(game, cfg, weights or _random_world_model(game, size, folder),
                            device, env)
    if stage == "probe":
        from neural_engine.training.probe_stage import ProbeStage
        return ProbeStage(game, cfg, device, env)
    raise ValueError(f"no training benchmark for stage {stage!r}")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def count_flops(stage, step: int) -> float:
    """FLOPs of one step, run eagerly under the FLOP counter.

    A stage's compiled forwards (the attributes its ``uncompiled`` names, with the plain
    modules they wrap) run as those modules: torch.compile's kernels are not seen by the
    counter. A stage's prepared attention (the teacher's ``attention``) is counted as
    SDPA with its dense mask, whichever way it runs: FlexAttention does not run under the
    counter, and so every variant counts the same work (masked tiles included, as every
    session's numbers have) and its TFLOP/s compare like its frames/s.
    """
    from torch.utils.flop_counter import FlopCounterMode

    plain = dict(getattr(stage, "uncompiled", {}))
    fast = {name: getattr(stage, name) for name in plain}
    attention = getattr(stage, "attention", None)
    for name, module in plain.items():
        setattr(stage, name, module)                     # count the plain module
    if attention is not None:
        stage.attention = attention.dense()
    try:
        with FlopCounterMode(display=False) as counter:
            stage.train_step(step)
    finally:
        for name, forward in fast.items():
            setattr(stage, name, forward)
        if attention is not None:
            stage.attention = attention
    return float(counter.get_total_flops())


def profile_steps(stage, device: torch.device, steps: int, first: int, top: int = 12) -> dict:
    """The device's busy time against the wall time of ``steps`` steps, and the heaviest
    kernels, from the PyTorch profiler."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda"
                                           else [])
    _sync(device)
    start = time.perf_counter()
    with profile(activities=activities) as prof:
        for i in range(steps):
            stage.train_step(first + i)
        _sync(device)
    wall = (time.perf_counter() - start) * 1e3 / steps
    if device.type != "cuda":
        return {"wall_ms": wall}
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    busy = sum(e.device_time for e in kernels) / 1e3 / steps           # µs → ms per step
    nccl = sum(e.device_time for e in kernels if "nccl" in e.name.lower()) / 1e3 / steps
    names: dict[str, float] = {}
    for e in kernels:
        names[e.name] = names.get(e.name, 0.0) + e.device_time / 1e3 / steps
    heavy = sorted(names.items(), key=lambda kv: -kv[1])[:top]
    return {"wall_ms": wall, "device_busy_ms": busy, "kernels_per_step": len(kernels) / steps,
            "host_gap_share": max(0.0, 1 - busy / wall), "nccl_ms": nccl,
            "top_kernels": [{"name": n[:90], "ms": ms} for n, ms in heavy]}


def _timed(stage, device: torch.device, steps: int, first: int) -> float:
    """Seconds per step over ``steps`` steps, synchronised at both ends."""
    _sync(device)
    start = time.perf_counter()
    for i in range(steps):
        stage.train_step(first + i)
    _sync(device)
    return (time.perf_counter() - start) / steps


def _ranks(row: dict, stage, device: torch.device, env: Distributed, first: int) -> dict:
    """The numbers of several ranks: every rank's timing, throughput in total and per
    GPU, stragglers, and the share of the step the gradient all-reduce costs. Run last:
    the steps without all-reduce leave the ranks' weights apart."""
    steps = row["steps"]
    mine = {"rank": env.rank, "step_ms_mean": row["step_ms_mean"],
            "step_ms_median": row["step_ms_median"],
            "data_ms": row["phases_ms"].get("data"),
            "nccl_ms": row["profile"].get("nccl_ms")}
    with no_sync(env):
        try:
            _timed(stage, device, min(5, steps), first)           # (re)compiles here
            mine["step_ms_no_sync"] = 1e3 * _timed(stage, device, steps, first + 5)
        except Exception as error:  # noqa: BLE001 - report it, keep the synced numbers
            mine["step_ms_no_sync"] = None
            mine["no_sync_error"] = f"{type(error).__name__}: {str(error)[:200]}"
    ranks = gather(mine, env)
    slowest = max(r["step_ms_mean"] for r in ranks)
    total = env.world * row["items_per_step"] / (slowest / 1e3)
    alone = [r["step_ms_no_sync"] for r in ranks if r["step_ms_no_sync"] is not None]
    sync_share = None
    if len(alone) == len(ranks):
        sync_share = max(0.0, 1 - max(alone) / slowest)
    return {"world": env.world, "ranks": ranks, "frames_per_s_total": total,
            "frames_per_s_per_gpu": total / env.world,
            "straggler_spread": max(alone) / min(alone) - 1 if alone else None,
            "sync_share": sync_share}


def bench_stage(stage_name: str, game: Game, cfg, device: torch.device, size: str,
                steps: int = 50, warmup: int = 20, profiled: int = 5,
                weights: Path | None = None, progress=print,
                env: Distributed = Distributed()) -> dict:
    """Every number of the module docstring for one stage configuration."""
    from neural_engine.schema import to_dict

    fast_matmuls(device)
    with tempfile.TemporaryDirectory() as tmp:
        stage = build_stage(stage_name, game, cfg, device, Path(tmp), size, weights, env)
    gpu = device.type == "cuda"
    limits = machine_limits(device, torch.bfloat16 if gpu else torch.float32)
    progress(f"train bench {stage_name} ({size}): warming up {warmup} steps")
    began = time.perf_counter()
    for i in range(warmup):
        stage.train_step(i)
    _sync(device)
    warm_s = time.perf_counter() - began
    if gpu:
        torch.cuda.reset_peak_memory_stats(device)
    phases = getattr(stage, "phases", None)
    if phases is not None:
        phases.enabled = True
        phases.cuda = gpu
        phases.collect()
    per_step = []
    progress(f"train bench {stage_name} ({size}): timing {steps} steps")
    _sync(device)
    start = time.perf_counter()
    for i in range(steps):
        if gpu:
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
        t0 = time.perf_counter()
        stage.train_step(warmup + i)
        if gpu:
            b.record()
            per_step.append((a, b))
        else:
            per_step.append(time.perf_counter() - t0)
    _sync(device)
    seconds = time.perf_counter() - start
    step_ms = [a.elapsed_time(b) for a, b in per_step] if gpu else [s * 1e3 for s in per_step]
    phase_ms = {}
    if phases is not None:
        phase_ms = {k: v / steps for k, v in phases.collect().items()}
        phases.enabled = False
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if gpu else None
    items = stage.items_per_step()
    progress(f"train bench {stage_name} ({size}): profiling {profiled} steps")
    prof = profile_steps(stage, device, profiled, warmup + steps) if profiled else {}
    flops = count_flops(stage, warmup + steps + profiled)
    step_s = seconds / steps
    data = phase_ms.get("data", 0.0)
    row = {
        "stage": stage_name, "size": size, "config": to_dict(cfg),
        "parameters": sum(p.numel() for m in stage.modules.values()
                          for p in m.parameters() if p.requires_grad),
        "warmup_steps": warmup, "warmup_s": warm_s, "steps": steps,
        "steps_per_s": 1 / step_s, "items_per_step": items, "frames_per_s": items / step_s,
        "step_ms_median": statistics.median(step_ms), "step_ms_mean": step_s * 1e3,
        "flops_per_step": flops, "tflops": flops / step_s / 1e12,
        "matmul_tflops": limits["matmul_tflops"],
        "share_of_matmul_rate": flops / step_s / 1e12 / limits["matmul_tflops"],
        "peak_memory_gib": peak, "phases_ms": phase_ms,
        "data_wait_share": data / (step_s * 1e3) if phase_ms else None,
        "profile": prof, "world": env.world,
        "frames_per_s_total": items / step_s, "frames_per_s_per_gpu": items / step_s,
    }
    if env.world > 1:
        progress(f"train bench {stage_name} ({size}): timing {steps} steps without "
                 "the all-reduce")
        row |= _ranks(row, stage, device, env, warmup + steps + profiled + 1)
    return row


def _pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f} %"


def markdown(rows: list[dict], machine: str) -> str:
    lines = [f"Training benchmark on {machine} (wall clock over the timed steps after warm-up; "
             "FLOPs counted over one eager step; phases from CUDA events).", "",
             "| stage | size | settings | batch | steps/s | frames/s | TFLOP/s | of matmul rate "
             "| peak GiB | data wait | host gaps | phases (ms per step) |",
             "|" + "---|" * 12]
    for r in rows:
        peak = "–" if r["peak_memory_gib"] is None else f"{r['peak_memory_gib']:.1f}"
        phases = ", ".join(f"{k} {v:.1f}" for k, v in r["phases_ms"].items())
        lines.append(
            f"| {r['stage']} | {r['size']} | {r.get('overrides') or 'packaged'} | "
            f"{r['config'].get('batch')} | {r['steps_per_s']:.2f} | {r['frames_per_s']:,.0f} | "
            f"{r['tflops']:.1f} | {_pct(r['share_of_matmul_rate'])} | {peak} | "
            f"{_pct(r['data_wait_share'])} | {_pct(r['profile'].get('host_gap_share'), 0)} | "
            f"{phases} |")
    return "\n".join(lines) + "\n"
