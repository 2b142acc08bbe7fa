"""``neural-engine datagen``: record the exploring agent playing a source game."""

from __future__ import annotations

import argparse

from neural_engine.cli.options import add_device, add_game, count, resolve_device, seed
from neural_engine.data.datagen import generate
from neural_engine.games import load_game


def add_parser(sub) -> None:
    p = sub.add_parser("datagen", help="generate a dataset of play from a game's simulator",
                       description="Run the game's exploring agent in its simulator and write "
                                   "sharded clips (frames, actions, true state). Re-running the "
                                   "same command resumes an interrupted run.")
    add_game(p)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--episodes", type=count(1, 1 << 24), default=64,
                   help="number of episodes (worlds)")
    p.add_argument("--frames", type=count(2, 1 << 20), default=256, help="frames per episode")
    p.add_argument("--seed", type=seed, default=0, help="dataset seed (worlds and agents)")
    p.add_argument("--batch", type=count(1, 4096), default=16,
                   help="environments simulated together")
    p.add_argument("--episodes-per-shard", type=count(1, 1 << 16), default=64,
                   help="episodes in one shard")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_device(p, default="cpu")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    game = load_game(args.game)
    summary = generate(game, args.out, episodes=args.episodes, frames=args.frames,
                       seed=args.seed, episodes_per_shard=args.episodes_per_shard,
                       batch=args.batch, device=resolve_device(args.device), quiet=args.quiet)
    print(f"wrote {args.out}")
    print(summary.table())
    return 0
