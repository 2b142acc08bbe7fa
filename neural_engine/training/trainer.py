"""The training loop every stage shares: time boxes, checkpoints, resume, logs, DDP.

A stage (autoencoder, teacher, rolling distillation) supplies its modules and
optimizers, ``train_step()`` (one optimisation step, returning scalar metrics as
floats or 0-d tensors; tensors are read back a few steps at a time, not every step),
``evaluate(folder)`` (held-out metrics, sample videos) and ``export(folder)`` (the
weights a later stage or the game loads). This loop runs it until ``--steps`` or
``--minutes`` is reached, checkpoints every few minutes and at the end (also on
SIGTERM/SIGINT), resumes exactly from ``checkpoint.safetensors`` in the run folder,
and appends metrics as JSON lines to ``metrics.jsonl``. A run holds a lock on its
folder (a second trainer there is refused, not interleaved), and a resumed run first
drops the rows its predecessor wrote past the checkpoint, which it will write again.

Under ``torchrun`` each process trains on its own data stream (its own worlds and its
own random stream), gradients are averaged by DistributedDataParallel (the stage wraps
its trainable modules with ``distributed.wrap``), and only rank 0 writes files. The
ranks agree every step on whether to stop or checkpoint, so they all do it at the same
step; a checkpoint holds every rank's data position and random state, so a resumed run
with as many processes continues exactly. Rank 0 evaluates and exports while the
others wait at a barrier.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import torch
import torch.distributed as dist

from neural_engine.errors import EngineError
from neural_engine.progress import Progress
from neural_engine.training.checkpoint import load_checkpoint, rng_state, save_checkpoint
from neural_engine.training.distributed import (Distributed, agree, barrier,  # noqa: F401
                                                distinct_streams, gather, init_distributed,
                                                wrap)

CHECKPOINT_NAME = "checkpoint.safetensors"
METRICS_NAME = "metrics.jsonl"
LOCK_NAME = "run.lock"


class Stage(Protocol):
    name: str
    modules: dict[str, torch.nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]

    def train_step(self, step: int) -> dict[str, float | torch.Tensor]: ...

    def evaluate(self, folder: Path, step: int) -> dict[str, float]: ...

    def export(self, folder: Path) -> Path: ...

    def data_state(self) -> dict: ...

    def load_data_state(self, state: dict) -> None: ...

    def items_per_step(self) -> int: ...


@dataclass
class Schedule:
    steps: int
    minutes: float | None = None
    checkpoint_minutes: float = 2.0
    eval_every: int = 1000     # 0: never, not even after the last step (export only)
    log_every: int = 50


def fast_matmuls(device: torch.device | str) -> None:
    """On CUDA, float32 matmuls and convolutions in TF32. Training computes its heavy
    parts in bfloat16 already; what stays float32 (the distillation's rollouts through
    the streaming sampler, captured as CUDA graphs when the stage is built) then runs on
    the matrix units too. Call before building a stage."""
    if torch.device(device).type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """One step of the exponential moving average the stages evaluate and export:
    ema ← decay·ema + (1 − decay)·model, over the parameters."""
    torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1.0 - decay)


# torch.compile's modes a stage's ``compile_mode`` may name
CompileMode = Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"]
# those that replay the compiled passes as CUDA graphs (each step must mark its start)
GRAPHED_MODES = ("reduce-overhead", "max-autotune")


def compiled(module: torch.nn.Module, enabled: bool, mode: CompileMode = "default"):
    """``module``'s forward under torch.compile when ``enabled`` (a CUDA training step).

    On a small model the eager step is bound by hundreds of memory-bound elementwise
    kernels (layer norms, modulation, gates, rotary); Inductor fuses them, and in mode
    ``reduce-overhead`` replays the compiled forward and backward as CUDA graphs. The
    first call compiles (about a minute); if compiling fails, training goes on eagerly.
    """
    if not enabled:
        return module
    fast = torch.compile(module, mode=mode)
    failed = False

    def forward(*args, **kwargs):
        nonlocal failed
        if not failed:
            try:
                return fast(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - any compiler failure
                failed = True
                first = str(error).splitlines()[0] if str(error) else ""
                print(f"torch.compile failed, training eagerly: {type(error).__name__}: "
                      f"{first}", flush=True)
        return module(*args, **kwargs)

    return forward


def _mean(value: float, env: Distributed, device) -> float:
    if env.world == 1:
        return value
    t = torch.tensor([value], device=device)
    dist.all_reduce(t)
    return t.item() / env.world


SYNC_EVERY = 10   # steps whose metrics are read back together (one host sync)


def _to_floats(pending: list[dict]) -> list[dict[str, float]]:
    """Metrics of several steps (floats or 0-d tensors) as floats, with one device sync."""
    tensors = [v for m in pending for v in m.values() if isinstance(v, torch.Tensor)]
    values = iter(torch.stack([t.detach().float() for t in tensors]).tolist()) if tensors \
        else iter(())
    return [{k: next(values) if isinstance(v, torch.Tensor) else float(v)
             for k, v in m.items()} for m in pending]


class _Stop:
    def __init__(self):
        self.requested = False
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:       # not the main thread
                pass
        return self

    def _handle(self, *_):
        self.requested = True

    def __exit__(self, *exc):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def lock_run_folder(folder: Path):
    """An exclusive lock on ``folder`` (held while the returned file stays open), or an
    EngineError when another trainer holds it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / LOCK_NAME, "a+")
    except OSError as exc:
        raise EngineError(f"cannot use the run folder: {exc.strerror}", where=str(folder)) from None
    try:
        import fcntl
    except ImportError:            # not POSIX: no lock, as before
        return handle
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise EngineError(f"another trainer ({holder}) is using this run folder; wait for "
                          "it or choose another --run-dir", where=str(folder)) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return handle


def trim_metrics(path: Path, step: int) -> None:
    """Drop the rows of ``path`` past ``step`` (and a torn last line): a resumed run
    repeats those steps and writes them again."""
    try:
        lines = path.read_text().splitlines(keepends=True)
    except FileNotFoundError:
        return
    kept = []
    for line in lines:
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line if line.endswith("\n") else line + "\n")
        except (ValueError, KeyError, TypeError):
            continue
    if len(kept) != len(lines):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(kept))
        os.replace(tmp, path)


def run(stage: Stage, folder: Path, schedule: Schedule, env: Distributed = Distributed(),
        device: torch.device | str = "cpu", quiet: bool = False) -> dict:
    """Train ``stage`` in ``folder`` (resuming if a checkpoint is there); returns the meta."""
    lock = lock_run_folder(folder) if env.main else None
    try:
        return _run(stage, folder, schedule, env, device, quiet)
    finally:
        if lock is not None:
            lock.close()


def _run(stage: Stage, folder: Path, schedule: Schedule, env: Distributed,
         device: torch.device | str, quiet: bool) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    ckpt = folder / CHECKPOINT_NAME
    distinct_streams(env)
    meta = {"step": 0, "seconds": 0.0, "data": stage.data_state(), "stage": stage.name}
    if ckpt.exists():
        meta = load_checkpoint(ckpt, stage.modules, stage.optimizers, rank=env.rank)
        data = _rank_data(meta, env)
        if data is not None:
            stage.load_data_state(data)
        if env.main:
            trim_metrics(folder / METRICS_NAME, meta["step"])
            if meta.get("world", 1) != env.world:
                print(f"resuming a run of {meta.get('world', 1)} process(es) on {env.world}: "
                      "the weights continue, the data streams do not exactly", flush=True)
    start_step, spent = meta["step"], meta["seconds"]
    budget = None if schedule.minutes is None else schedule.minutes * 60.0
    stream = open(os.devnull, "w") if quiet or not env.main else None
    progress = Progress(schedule.steps, f"train {stage.name}", unit="step", initial=start_step,
                        stream=stream)
    log = open(folder / METRICS_NAME, "a") if env.main else None
    began = last_ckpt = time.perf_counter()
    step = start_step

    def save() -> None:
        meta.update(step=step, seconds=spent + time.perf_counter() - began,
                    data=stage.data_state(), world=env.world)
        rngs = None
        if env.world > 1:       # every rank's position and random state, on rank 0
            states = gather((stage.data_state(), rng_state(
                env.local_rank if torch.cuda.is_available() else None)), env)
            meta["ranks"] = [data for data, _ in states]
            rngs = [rng for _, rng in states]
        if env.main:
            save_checkpoint(ckpt, stage.modules, stage.optimizers, meta, rngs)

    def record(kind: str, values: dict) -> None:
        if log is not None:
            log.write(json.dumps({"kind": kind, "step": step, **values}) + "\n")
            log.flush()

    running: dict[str, float] = {}
    pending: list[dict] = []
    with _Stop() as stop:
        while step < schedule.steps:
            pending.append(stage.train_step(step))
            step += 1
            if len(pending) == SYNC_EVERY or step % schedule.log_every == 0:
                for metrics in _to_floats(pending):
                    for k, v in metrics.items():
                        running[k] = v if k not in running else 0.9 * running[k] + 0.1 * v
                pending.clear()
            progress.update(1, **{k: running[k] for k in list(running)[:3]})
            if step % schedule.log_every == 0:
                record("train", {k: _mean(v, env, device) for k, v in running.items()}
                       | {"items_per_s": progress.rate() * stage.items_per_step() * env.world})
            if schedule.eval_every and step % schedule.eval_every == 0:
                if env.main:
                    record("eval", stage.evaluate(folder, step))
                barrier(env)
            now = time.perf_counter()
            # every rank stops and checkpoints at the same step (one host round trip)
            out_of_time, stopping, due = agree(
                [budget is not None and spent + now - began >= budget, stop.requested,
                 now - last_ckpt >= schedule.checkpoint_minutes * 60], env)
            if out_of_time or stopping:
                break
            if due:
                save()
                last_ckpt = now
    save()
    stopped = agree([stop.requested], env)[0]
    progress.close()
    if env.main and not stopped:            # a kill keeps only the checkpoint
        stage.export(folder)                # before the evaluation, which may be cut short
        if schedule.eval_every and step % schedule.eval_every:
            record("eval", stage.evaluate(folder, step))
    if log is not None:
        log.close()
    barrier(env)
    return meta


def _rank_data(meta: dict, env: Distributed) -> dict | None:
    """This rank's data position in a checkpoint's metadata (None: the checkpoint's run
    had no such rank, and this one starts its stream afresh)."""
    ranks = meta.get("ranks")
    if ranks is not None:
        return ranks[env.rank] if env.rank < len(ranks) else None
    return meta["data"] if env.main else None
