"""``neural-engine train ae|teacher|rolling``: one command per training stage.

Each stage reads its TOML configuration (``neural_engine/configs/<stage>.toml`` unless
``--config`` names another; ``--set key=value`` overrides single keys), trains in
``--run DIR`` until ``--steps`` or ``--minutes``, and resumes from the checkpoint in
that folder when run again. Launch under ``torchrun --nproc-per-node N`` for data
parallelism. The stage's product (``autoencoder``, ``teacher`` or ``student``
safetensors) is written in the run folder at the end.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from neural_engine import schema
from neural_engine.cli.options import (add_device, add_game, count, number, resolve_device,
                                       seed)
from neural_engine.errors import EngineError
from neural_engine.games import load_game

CONFIGS = Path(__file__).resolve().parent.parent / "configs"

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a stage: ae, teacher, rolling or probe",
                       description="Train one stage of a game's world model (resumable, "
                                   "time-boxed; torchrun for several GPUs).")
    p.add_argument("stage", choices=("ae", "teacher", "rolling", "probe"),
                   help="ae, teacher, rolling: the world model's stages; probe: the "
                        "action-control probe that evaluation uses")
    add_game(p)
    # --run-dir first: torchrun's own parser reads a bare --run as an ambiguous
    # abbreviation of its --run-path and stops
    p.add_argument("--run-dir", "--run", dest="run", required=True,
                   help="run folder (checkpoints, samples, metrics); under torchrun spell it "
                        "--run-dir")
    p.add_argument("--config", help="stage configuration TOML (default: the packaged one)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one configuration key (TOML value), e.g. --set batch=64")
    p.add_argument("--ae", help="teacher stage: the trained autoencoder (.safetensors)")
    p.add_argument("--teacher", help="rolling stage: the trained teacher (.safetensors)")
    p.add_argument("--init", help="teacher/rolling stage: start the trained denoiser from "
                   "these world-model weights (a warm start; a run folder's checkpoint "
                   "takes precedence); ae stage: start from this autoencoder (an "
                   "autoencoder or world-model file), which --set train=\"decoder\" "
                   "needs")
    p.add_argument("--steps", type=count(0), default=100_000, help="stop after this many steps")
    p.add_argument("--minutes", type=number(0, above=True),
                   help="stop after this many minutes of training (summed over resumed "
                        "runs) with a final checkpoint (default: no limit)")
    p.add_argument("--checkpoint-minutes", type=number(0, above=True), default=2.0,
                   help="minutes between checkpoints")
    p.add_argument("--eval-every", type=count(0), default=1000,
                   help="steps between evaluations, and one after the last step (0: none, "
                        "only the export, for a time-boxed run read afterwards)")
    p.add_argument("--log-every", type=count(1), default=50, help="steps between metrics rows")
    p.add_argument("--seed", type=seed, default=0, help="training seed")
    p.add_argument("--quiet", action="store_true")
    add_device(p)
    p.set_defaults(handler=run)


def stage_config(stage: str, path: str | None, overrides: list[str]):
    from neural_engine.training.autoencoder import AutoencoderTraining
    from neural_engine.training.rolling import RollingTraining
    from neural_engine.training.teacher import TeacherTraining

    from neural_engine.training.probe_stage import ProbeTraining

    cls = {"ae": AutoencoderTraining, "teacher": TeacherTraining, "rolling": RollingTraining,
           "probe": ProbeTraining}[stage]
    source = schema.TomlSource.read(Path(path) if path else CONFIGS / f"{stage}.toml")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise EngineError(f"--set {item!r}: expected KEY=VALUE")
        try:
            parsed = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value                      # a bare string
        source.override(key.strip(), parsed, f"--set {item}")
    return schema.fill(cls, source.data, source=source)


def run(args: argparse.Namespace) -> int:
    from neural_engine.training import trainer

    env = trainer.init_distributed()
    device = resolve_device(args.device)
    if device.type == "cuda" and env.world > 1:
        import torch

        device = torch.device("cuda", env.local_rank)
    game = load_game(args.game)
    cfg = stage_config(args.stage, args.config, args.set)
    folder = Path(args.run)
    trainer.fast_matmuls(device)
    if args.stage == "ae":
        from neural_engine.training.autoencoder import AutoencoderStage

        stage = AutoencoderStage(game, cfg, device, env, args.seed,
                                 init=Path(args.init) if args.init else None)
    elif args.stage == "teacher":
        if not args.ae:
            raise EngineError("the teacher stage needs --ae PATH (the autoencoder's weights)")
        from neural_engine.training.teacher import TeacherStage

        stage = TeacherStage(game, cfg, Path(args.ae), device, env, args.seed,
                             init=Path(args.init) if args.init else None)
    elif args.stage == "probe":
        from neural_engine.training.probe_stage import ProbeStage

        stage = ProbeStage(game, cfg, device, env, args.seed)
    else:
        if not args.teacher:
            raise EngineError("the rolling stage needs --teacher PATH (the teacher's weights)")
        from neural_engine.training.rolling import RollingStage

        stage = RollingStage(game, cfg, Path(args.teacher), device, env, args.seed,
                             init=Path(args.init) if args.init else None)
    schedule = trainer.Schedule(steps=args.steps, minutes=args.minutes,
                                checkpoint_minutes=args.checkpoint_minutes,
                                eval_every=args.eval_every, log_every=args.log_every)
    meta = trainer.run(stage, folder, schedule, env, device, quiet=args.quiet)
    if env.main:
        print(f"{args.stage}: step {meta['step']}, {meta['seconds'] / 60:.1f} min of training "
              f"on {env.world} process(es); run folder {folder}")
    return 0
