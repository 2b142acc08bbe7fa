"""Throughput scaling over the GPUs of one host: ``bench --train STAGE --gpus 1,2,4,8``.

For each number of GPUs N it runs the training benchmark (``speed.py``) as its own
command: one plain process for N = 1 (no DDP: the reference the others are measured
against), ``torchrun --standalone --nproc-per-node N`` otherwise, every command with
NVLink multicast off in its environment (``MULTICAST_OFF``). Each run writes its JSON
report; the table puts them side by side: frames/s in total and per GPU, the scaling
efficiency (frames/s per GPU against one GPU's), and what limits it: the gradient
synchronisation's share of the step, the device time of the all-reduce kernels, the
slowest rank against the fastest (stragglers) and the time spent waiting for data.

It knows the benchmark only through its command line and its JSON report.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from neural_engine.errors import EngineError
from neural_engine.training.distributed import MULTICAST_OFF


def bench_command(args: argparse.Namespace, gpus: int, out: Path) -> list[str]:
    """The benchmark's command line on ``gpus`` GPUs, writing its report to ``out``."""
    argv = ["-m", "neural_engine.cli.main", "bench", "--train", args.train,
            "--train-steps", str(args.train_steps), "--train-warmup", str(args.train_warmup),
            "--train-profile", str(args.train_profile), "--json", str(out)]
    for flag, value in (("--game", args.game), ("--size", args.size)):
        if value:
            argv += [flag, value]
    for item in args.set:
        argv += ["--set", item]
    for variant in args.variant:
        argv += ["--variant", variant]
    if args.weights:
        argv += ["--weights", args.weights]
    if args.device:
        argv += ["--device", args.device]
    if gpus == 1:
        return [sys.executable, *argv]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
            str(gpus), *argv]


def shown(command: list[str]) -> str:
    """The command as a shell line, with the multicast variables before it."""
    env = " ".join(f"{k}={v}" for k, v in MULTICAST_OFF.items())
    return f"{env} {shlex.join(command)}"


def scale(args: argparse.Namespace) -> int:
    """Run the benchmark on each of ``args.gpus`` and write the scaling table."""
    counts = sorted(set(args.gpus))
    if counts[0] != 1:
        raise EngineError("--gpus must include 1: scaling is measured against one GPU")
    folder = Path(args.json).parent if args.json else Path(tempfile.mkdtemp())
    stem = Path(args.json).stem if args.json else "scaling"
    env = os.environ | MULTICAST_OFF
    env.pop("WORLD_SIZE", None)
    reports = {}
    for gpus in counts:
        out = folder / f"{stem}-{gpus}gpu.json"
        command = bench_command(args, gpus, out)
        print(shown(command), flush=True)
        done = subprocess.run(command, env=env)
        if done.returncode:
            raise EngineError(f"the benchmark on {gpus} GPU(s) failed (exit code "
                              f"{done.returncode})")
        reports[gpus] = json.loads(out.read_text())
    rows = [(gpus, row) for gpus, report in reports.items() for row in report["rows"]]
    result = {"stage": args.train, "machine": reports[1]["machine"],
              "runs": {str(g): r for g, r in reports.items()}}
    table = markdown(rows, reports[1]["machine"])
    print("\n" + table)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(table)
    return 0


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def markdown(rows: list[tuple[int, dict]], machine: str) -> str:
    """The scaling table of (GPUs, benchmark row) pairs, each configuration against its
    own one-GPU row."""
    lines = [f"Training throughput on {machine}, 1 to {max(g for g, _ in rows)} GPUs of one "
             "host (batch per GPU as set; efficiency: frames/s per GPU against one GPU's).", "",
             "| stage | size | settings | GPUs | frames/s | per GPU | efficiency | step ms "
             "| gradient sync | all-reduce kernels ms | stragglers | data ms |",
             "|" + "---|" * 12]
    alone = {(r["size"], r.get("overrides")): r["frames_per_s_per_gpu"]
             for g, r in rows if g == 1}
    for gpus, r in rows:
        base = alone.get((r["size"], r.get("overrides")))
        ranks = r.get("ranks") or [{"step_ms_mean": r["step_ms_mean"],
                                    "nccl_ms": r["profile"].get("nccl_ms"),
                                    "data_ms": r["phases_ms"].get("data")}]
        slowest = max(ranks, key=lambda x: x["step_ms_mean"])
        lines.append(
            f"| {r['stage']} | {r['size']} | {r.get('overrides') or 'packaged'} | {gpus} | "
            f"{r['frames_per_s_total']:,.0f} | {r['frames_per_s_per_gpu']:,.0f} | "
            f"{_pct(r['frames_per_s_per_gpu'] / base if base else None)} | "
            f"{slowest['step_ms_mean']:.1f} | {_pct(r.get('sync_share'))} | "
            f"{_ms(slowest.get('nccl_ms'))} | {_pct(r.get('straggler_spread'))} | "
            f"{_ms(slowest.get('data_ms'))} |")
    return "\n".join(lines) + "\n"
