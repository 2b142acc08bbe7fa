"""``python -m neural_engine.cli.throughput``: how fast a game's simulator makes frames.

The command line of ``data.throughput.measure``: one line of frames per second for each
batch size.

    python -m neural_engine.cli.throughput --game dungeon --batch 1,256 --device cpu
    python -m neural_engine.cli.throughput --game dungeon --batch 1,256,1024,4096 --device cuda
"""

from __future__ import annotations

import argparse
import sys

import torch

from neural_engine.cli.options import add_device, add_game, resolve_device
from neural_engine.data.throughput import measure
from neural_engine.games import load_game


def _batches(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def main(argv=None) -> int:
    from neural_engine.cli.main import guarded

    p = argparse.ArgumentParser(prog="python -m neural_engine.cli.throughput",
                                description="Frames per second of a game's simulator.")
    add_game(p)
    p.add_argument("--batch", type=_batches, default=[1, 256], help="batch sizes, e.g. 1,256")
    p.add_argument("--ticks", type=int, default=100, help="timed ticks per batch size")
    p.add_argument("--no-agent", action="store_true", help="random input instead of the agent")
    add_device(p, default="cpu")

    def run(args) -> int:
        game = load_game(args.game)
        device = resolve_device(args.device)
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else (
            f"CPU, {torch.get_num_threads()} threads")
        print(f"{game.spec.name} at {game.spec.width}x{game.spec.height} on {name}, "
              f"{'with the agent' if not args.no_agent else 'random input'}")
        for b in args.batch:
            rate = measure(game, b, args.ticks, device, agent=not args.no_agent)
            print(f"batch {b:>5}: {rate.frames_per_second:>10,.0f} frames/s "
                  f"({rate.seconds / rate.ticks * 1e3:.2f} ms a step)", flush=True)
        return 0

    return guarded(run, p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
