"""``neural-engine ship``: a game's trained weights into ``assets/<game>/``, verified.

Checks every file the way loading does, rewrites it in the precision it ships in,
writes the manifest (sha256 of every file, the training info the weights carry, and
an optional JSON table of the caller's), and refuses when every game's shipped files
together would pass the 40 MiB budget. The old folder is replaced only when all of
that holds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from neural_engine.errors import EngineError


def add_parser(sub) -> None:
    p = sub.add_parser("ship", help="ship a game's trained weights into assets/<game>/",
                       description="Write assets/GAME/ from training's outputs: the "
                                   "student (fp16 or int8), the probe (fp16), optionally "
                                   "the teacher (bf16, the next run's warm start), and "
                                   "manifest.json. Refuses, leaving assets/ unchanged, "
                                   "when a file is not what it claims or all games' "
                                   "weights would pass 40 MiB.")
    p.add_argument("--game", required=True, help="the game the weights are for")
    p.add_argument("--weights", type=Path, default=None,
                   help="the world model to play (e.g. runs/rolling/student.safetensors); "
                        "left out while it is still in training, --teacher alone keeps the "
                        "chain's checkpoint and play stays on the simulator")
    p.add_argument("--probe", type=Path, default=None,
                   help="the action-control probe (runs/probe/probe.safetensors)")
    p.add_argument("--teacher", type=Path, default=None,
                   help="the teacher, kept as the next training run's start")
    p.add_argument("--precision", choices=("fp16", "int8"), default="fp16",
                   help="the world model's weight matrices in fp16, or in 8 bits with a "
                        "scale per row (half the bytes)")
    p.add_argument("--teacher-precision", choices=("bf16", "int8"), default="bf16",
                   help="the teacher in bf16, or in 8 bits (a warm start and a score a "
                        "fraction of a percent off, in half the bytes)")
    p.add_argument("--decoder", type=Path, default=None,
                   help="an autoencoder whose decoder replaces the world model's and the "
                        "teacher's (from train ae --init WORLD_MODEL --set "
                        "train=\"decoder\"); refused unless its encoder is theirs")
    p.add_argument("--sampler", default="rolling", help="the sampler the weights play with")
    p.add_argument("--info", type=Path, default=None,
                   help="a JSON table added to the manifest (training, evaluation, gates)")
    p.set_defaults(handler=run)


def _info(path: Path | None) -> dict:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EngineError(f"cannot read: {exc.strerror or exc}", where=str(path)) from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise EngineError(f"not JSON ({exc})", where=str(path)) from None
    if not isinstance(data, dict):
        raise EngineError("needs a JSON table (an object)", where=str(path))
    if {"files", "format"} & set(data):
        raise EngineError("'files' and 'format' are the manifest's own keys", where=str(path))
    return data


def run(args: argparse.Namespace) -> int:
    from neural_engine.games import load_spec
    from neural_engine.shipping import folder_bytes, ship, shipped_bytes
    from neural_engine.sampler.stream import named_sampler

    load_spec(args.game)
    named_sampler(args.sampler)
    folder = ship(args.game, args.weights, probe=args.probe, teacher=args.teacher,
                  precision=args.precision, teacher_precision=args.teacher_precision,
                  sampler=args.sampler, info=_info(args.info), decoder=args.decoder)
    size = folder_bytes(folder)
    print(f"shipped {folder} ({size / 2**20:.1f} MiB; every game's shipped files "
          f"{shipped_bytes() / 2**20:.1f} of 40 MiB)")
    return 0
