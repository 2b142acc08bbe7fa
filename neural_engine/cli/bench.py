"""``neural-engine bench``: the streaming tick for 1 … 64 streams, variant by variant,
against the floor the machine allows."""

from __future__ import annotations

import argparse
import json
import platform
from dataclasses import replace
from pathlib import Path

import torch

from neural_engine.bench import (VARIANTS, BenchSettings, bench_point, latency, latency_probe,
                                 machine_limits, markdown, targets)
from neural_engine.cli.options import (add_device, add_dtype, add_game, add_pin_cpu,
                                       parse_dtype, resolve_device)
from neural_engine.errors import EngineError
from neural_engine.games import load_game
from neural_engine.model.dispatch import fused_available, fused_runs_triton
from neural_engine.model.weights import load_model
from neural_engine.runtime.affinity import pin_host_thread
from neural_engine.sampler.stream import SamplerConfig, fit_problem


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected non-negative integers, got {text!r}")
    return values


def _variants(text: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in text.split(",") if v.strip())
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"variants are {', '.join(VARIANTS)}, got {text!r}")
    return names


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="benchmark the streaming tick for many streams",
                       description="ms per tick (p50, p99), ticks/s per stream and in total, "
                                   "peak memory and the fraction of the machine's floor, "
                                   "for N streams and each variant (eager, CUDA graph, "
                                   "torch.compile, Triton kernels).")
    add_game(p)
    p.add_argument("--weights", help="world-model weights (default: the game's shipped "
                   "weights, on the CPU as on a GPU)")
    p.add_argument("--size", default=None, help="random weights of this registry size "
                   "(tiny, small, base) instead of trained ones")
    p.add_argument("--ticks", type=int, default=None,
                   help="timed ticks per point (default: 1,000 on a GPU, whose p99 is the "
                        "11th worst; 100 on the CPU)")
    p.add_argument("--warmup", type=int, default=20, help="untimed ticks first")
    p.add_argument("--windows", type=_ints, default=[4], help="window sizes W, e.g. 1,2,4")
    p.add_argument("--rings", type=_ints, default=[8], help="ring lengths L, e.g. 4,8")
    p.add_argument("--streams", "--batches", type=_ints, default=None,
                   help="numbers of streams N (default: 1,2,4,…,64 on a GPU, 1,2 on the CPU)")
    p.add_argument("--sink", type=int, default=1, help="sink frames S")
    p.add_argument("--variants", type=_variants, default=None,
                   help=f"comma-separated, of {', '.join(VARIANTS)} (default: all on a GPU, "
                        "eager on the CPU)")
    p.add_argument("--compile-mode", default="default",
                   help="torch.compile mode of the compile variant (e.g. "
                        "max-autotune-no-cudagraphs)")
    p.add_argument("--no-latency", action="store_true", help="skip latency measurement")
    p.add_argument("--train", choices=("ae", "teacher", "rolling", "probe"), default=None,
                   help="benchmark this training stage's step instead of the streaming tick "
                        "(random weights of --size; docs/bench.md); under torchrun on every "
                        "rank, with frames/s in total and per GPU")
    p.add_argument("--gpus", type=_ints, default=None, metavar="N,N,…",
                   help="--train: run the benchmark under torchrun on each number of GPUs "
                        "of this host in turn and write the scaling table (docs/training.md, "
                        "Several GPUs)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="--train: override a key of the stage's configuration")
    p.add_argument("--variant", action="append", default=[], metavar="'K=V K=V'",
                   help="--train: one more configuration to time in the same run, as "
                        "overrides on top of --set ('packaged' for none); repeatable")
    p.add_argument("--train-steps", type=int, default=50, help="--train: timed steps")
    p.add_argument("--train-warmup", type=int, default=20,
                   help="--train: untimed steps first (compilation happens here)")
    p.add_argument("--train-profile", type=int, default=5,
                   help="--train: steps under the PyTorch profiler (0: none)")
    p.add_argument("--json", metavar="OUT.json", help="write all numbers as JSON")
    p.add_argument("--markdown", metavar="OUT.md", help="write the tables as Markdown")
    add_device(p)
    add_dtype(p)
    add_pin_cpu(p)
    p.set_defaults(handler=run)


def _write(path: str, text: str) -> None:
    tmp = Path(path + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def run_train(args: argparse.Namespace) -> int:
    """``--train STAGE``: the training step of each size and variant, in one run."""
    from neural_engine.cli.train import stage_config
    from neural_engine.training.speed import bench_stage, markdown as train_markdown

    from neural_engine.training.trainer import init_distributed

    for value, flag in ((args.train_steps, "--train-steps"), (args.train_warmup, "--train-warmup")):
        if value < 1:
            raise EngineError(f"{flag} must be at least 1")
    if args.gpus:
        from neural_engine.training.scaling import scale

        return scale(args)
    env = init_distributed()
    device = resolve_device(args.device)
    if device.type == "cuda" and env.world > 1:
        device = torch.device("cuda", env.local_rank)
    say = (lambda m: print(m, flush=True)) if env.main else (lambda m: None)
    game = load_game(args.game)
    sizes = [s.strip() for s in (args.size or "small").split(",") if s.strip()]
    variants = args.variant or ["packaged"]
    machine = (torch.cuda.get_device_name(device) if device.type == "cuda"
               else f"CPU {platform.processor() or platform.machine()}, "
                    f"{torch.get_num_threads()} threads")
    report = {"machine": machine, "device": str(device), "torch": torch.__version__,
              "stage": args.train, "world": env.world, "rows": []}
    for size in sizes:
        for variant in variants:
            extra = [] if variant.strip() == "packaged" else variant.split()
            cfg = stage_config(args.train, None, args.set + extra)
            row = bench_stage(args.train, game, cfg, device, size, steps=args.train_steps,
                              warmup=args.train_warmup, profiled=args.train_profile,
                              weights=Path(args.weights) if args.weights else None,
                              progress=say, env=env)
            row["overrides"] = " ".join(args.set + extra)
            report["rows"].append(row)
            say(f"{args.train} {size} [{row['overrides'] or 'packaged'}]: "
                f"{row['steps_per_s']:.2f} steps/s, {row['frames_per_s']:,.0f} frames/s, "
                f"{row['tflops']:.1f} TFLOP/s ({100 * row['share_of_matmul_rate']:.1f} % of "
                f"{row['matmul_tflops']:.0f}), phases {row['phases_ms']}")
            if env.world > 1:
                share = row["sync_share"]
                say(f"  {env.world} ranks: {row['frames_per_s_total']:,.0f} frames/s in total, "
                    f"{row['frames_per_s_per_gpu']:,.0f} per GPU; gradient sync "
                    f"{'–' if share is None else f'{100 * share:.1f} %'} of the step")
            if args.json and env.main:
                _write(args.json, json.dumps(report, indent=2) + "\n")
            if device.type == "cuda":
                torch.cuda.empty_cache()
    table = train_markdown(report["rows"], machine)
    say("\n" + table)
    if args.markdown and env.main:
        _write(args.markdown, table)
    return 0


def run(args: argparse.Namespace) -> int:
    for out in (args.json, args.markdown):
        if out and not Path(out).parent.is_dir():
            raise EngineError("output folder does not exist", where=out)
    if args.train:
        return run_train(args)
    if args.ticks is not None and args.ticks < 1:
        raise EngineError("--ticks must be at least 1")
    device = resolve_device(args.device)
    dtype = parse_dtype(args, device)
    gpu = device.type == "cuda"
    if args.ticks is None:
        args.ticks = 1000 if gpu else 100       # the CPU: the shipped weights, fewer ticks
    streams = args.streams or ([1, 2, 4, 8, 16, 32, 64] if gpu else [1, 2])
    variants = args.variants or (VARIANTS if gpu else ("eager",))
    settings = BenchSettings(ticks=args.ticks, warmup=args.warmup, variants=variants,
                             compile_mode=args.compile_mode)
    game = load_game(args.game)
    model, weights_label = load_model(game.spec.name, args.weights, args.size, device, dtype)
    print(f"timing {weights_label}", flush=True)
    max_frames = model.config.denoiser.max_frames
    machine = (torch.cuda.get_device_name(device) if gpu
               else f"CPU {platform.processor() or platform.machine()}, "
                    f"{torch.get_num_threads()} threads")
    core = pin_host_thread(args.pin_cpu, device)
    limits = machine_limits(device, dtype)
    print(f"{machine}: {limits['matmul_tflops']:.1f} TFLOP/s ({limits['matmul']}), "
          f"{limits['bandwidth_gbs']:.0f} GB/s", flush=True)
    report = {"game": game.spec.name, "weights": weights_label, "machine": machine,
              "device": str(device), "dtype": str(dtype)[6:], "torch": torch.__version__,
              "kernels": {"available": fused_available(),
                          "triton": fused_runs_triton(device)},
              "ticks": args.ticks, "warmup": args.warmup,
              "timing": ("CUDA events, synchronised per tick" if gpu else "perf_counter")
                        + ("" if core is None else f", host thread pinned to CPU core {core}"),
              "host_core": core,
              "compile_mode": args.compile_mode, "limits": limits, "latency": None,
              "rows": [], "targets": [], "skipped": []}
    for w in args.windows:
        for ring in args.rings:
            cfg = replace(SamplerConfig(), window=max(w, 1), ring=ring, sink=args.sink)
            if w < 1 or fit_problem(cfg, max_frames) is not None:
                report["skipped"].append(f"W={w} L={ring}")
                continue
            if not args.no_latency and report["latency"] is None:
                report["latency"] = latency(model, cfg, latency_probe(game, model))
            for n in streams:
                report["rows"].append(bench_point(model, cfg, max(n, 1), device, settings,
                                                  limits, progress=lambda s: print(s, flush=True)))
                report["targets"] = targets(report["rows"])
                if args.json:       # after every point: a cut-short run keeps what it measured
                    _write(args.json, json.dumps(report, indent=2) + "\n")
    if report["skipped"]:
        print(f"skipped (sink + ring + window > {max_frames} trained positions): "
              + ", ".join(report["skipped"]))
    table = markdown(report)
    print("\n" + table)
    if args.markdown:
        _write(args.markdown, table)
    if args.json:
        _write(args.json, json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0
