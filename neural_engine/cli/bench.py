"""``neural-engine bench``: time the streaming step over sweeps of window, ring and batch."""

from __future__ import annotations

import argparse
import json
import platform
from dataclasses import replace
from pathlib import Path

import torch

from neural_engine.bench import bench_point, latency_probe, rows_as_dicts, table
from neural_engine.cli.options import (add_device, add_dtype, load_model, parse_dtype,
                                       resolve_device)
from neural_engine.errors import EngineError
from neural_engine.games import load_game
from neural_engine.sampler.stream import SamplerConfig


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected non-negative integers, got {text!r}")
    return values


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="benchmark the streaming step (eager and CUDA graph)",
                       description="Median ms per tick, decode ms, ticks/s, response latency "
                                   "and peak memory over sweeps of window, ring and batch.")
    p.add_argument("--game", default="maze")
    p.add_argument("--weights", help="world-model weights (default: the game's shipped "
                   "weights, else random weights of --size)")
    p.add_argument("--size", default=None, help="random weights of this registry size "
                   "(tiny, small, base) instead of trained ones")
    p.add_argument("--ticks", type=int, default=200, help="timed ticks per point")
    p.add_argument("--warmup", type=int, default=20, help="untimed ticks first")
    p.add_argument("--windows", type=_ints, default=[4], help="window sizes W, e.g. 1,2,4")
    p.add_argument("--rings", type=_ints, default=[8], help="ring lengths L, e.g. 4,8")
    p.add_argument("--batches", type=_ints, default=[1], help="batch sizes B, e.g. 1,8")
    p.add_argument("--sink", type=int, default=1, help="sink frames S")
    p.add_argument("--no-graphs", action="store_true", help="skip CUDA-graph timings")
    p.add_argument("--no-latency", action="store_true", help="skip latency measurement")
    p.add_argument("--json", metavar="OUT.json", help="write all numbers as JSON")
    add_device(p)
    add_dtype(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.ticks < 1:
        raise EngineError("--ticks must be at least 1")
    if args.json:
        folder = Path(args.json).parent
        if not folder.is_dir():
            raise EngineError("output folder does not exist", where=args.json)
    device = resolve_device(args.device)
    dtype = parse_dtype(args, device)
    if args.size is None and args.weights is None and device.type == "cpu":
        args.size = "tiny"   # the CPU check: seconds, not minutes
    model, weights_label = load_model(args.game, args.weights, args.size, device, dtype)
    max_frames = model.config.denoiser.max_frames
    probe = None if args.no_latency else latency_probe(load_game(args.game), model)
    rows, skipped = [], []
    for w in args.windows:
        for ring in args.rings:
            if w < 1 or args.sink + ring + w > max_frames:
                skipped.append(f"W={w} L={ring}")
                continue
            cfg = replace(SamplerConfig(), window=w, ring=ring, sink=args.sink)
            for b in args.batches:
                row = bench_point(model, cfg, max(b, 1), device, dtype, args.ticks,
                                  args.warmup, graphs=not args.no_graphs,
                                  latency=probe if b == args.batches[0] else None)
                rows.append(row)
                print(table([row]).splitlines()[-1], flush=True)
    if skipped:
        print(f"skipped (sink + ring + window > {max_frames} trained positions): "
              + ", ".join(skipped))
    machine = (torch.cuda.get_device_name(device) if device.type == "cuda"
               else f"CPU {platform.processor() or platform.machine()}, "
                    f"{torch.get_num_threads()} threads")
    print(f"\n{args.game}, weights: {weights_label}, {machine}, dtype {str(dtype)[6:]}, "
          f"{args.ticks} timed ticks after {args.warmup} warm-up, medians")
    print(table(rows))
    if args.json:
        report = {"game": args.game, "weights": weights_label, "machine": machine,
                  "device": str(device), "dtype": str(dtype)[6:], "torch": torch.__version__,
                  "ticks": args.ticks, "warmup": args.warmup,
                  "timing": "CUDA events" if device.type == "cuda" else "perf_counter",
                  "rows": rows_as_dicts(rows)}
        tmp = Path(args.json + ".tmp")
        tmp.write_text(json.dumps(report, indent=2) + "\n")
        tmp.replace(args.json)
        print(f"wrote {args.json}")
    return 0
