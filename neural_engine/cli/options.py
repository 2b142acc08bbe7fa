"""Options shared by several commands (device choice, numbers in range), parsed the
same way everywhere.

Numbers a user types are checked by argparse itself (``number``, ``count``, ``seed``):
a NaN, an infinity, a zero batch or a seed too large for the generators is one usage
line and exit code 2, never a traceback from deep inside a run.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

import torch

from neural_engine.errors import EngineError


def add_game(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--game", default=None, metavar="NAME",
                        help="a game under games/ (default: the one games/games.toml names)")
MAX_SEED = 2**62


def number(lo: float | None = None, hi: float | None = None, *, above: bool = False):
    """An argparse type: a finite number in [lo, hi] (above lo, with ``above``)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        low_ok = lo is None or (value > lo if above else value >= lo)
        if not math.isfinite(value) or not low_ok or (hi is not None and value > hi):
            low = "" if lo is None else (f"above {lo:g}" if above else f"at least {lo:g}")
            high = "" if hi is None else f"at most {hi:g}"
            raise argparse.ArgumentTypeError(
                f"{text}: must be a finite number {' and '.join(p for p in (low, high) if p)}")
        return value

    parse.__name__ = "number"
    return parse


def count(lo: int = 1, hi: int | None = None):
    """An argparse type: an integer in [lo, hi]."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < lo or (hi is not None and value > hi):
            span = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
            raise argparse.ArgumentTypeError(f"{text}: must be {span}")
        return value

    parse.__name__ = "integer"
    return parse


seed = count(0, MAX_SEED)


def writable_folder(folder: Path, where: str, create: bool = False) -> None:
    """EngineError unless ``folder`` exists (or, with ``create``, can be made) and a
    file can be written in it: checked before any long work, so that its results are
    never lost to an unwritable place at the end."""
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        if not folder.is_dir():
            raise EngineError("its folder does not exist", where=where)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise EngineError(f"cannot write here: {exc.strerror or exc}", where=where) from None


def add_device(parser: argparse.ArgumentParser, default: str = "auto") -> None:
    parser.add_argument("--device", default=default,
                        help=f"cpu, cuda, cuda:N or auto (default: {default})")


def resolve_device(name: str, warn: bool = True) -> torch.device:
    """``auto`` → CUDA when present, else the CPU (with one warning); others checked."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if warn:
            print("warning: no CUDA GPU found; running on the CPU (slow)", file=sys.stderr)
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise EngineError(f"unknown device {name!r} (use cpu, cuda, cuda:N or auto)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EngineError("--device cuda was asked for but no CUDA GPU is available; "
                          "use --device cpu")
    return device


DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def add_pin_cpu(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pin-cpu", default="auto", metavar="auto|off|CORE",
                        help="keep the streaming loop's thread on one CPU core (auto: the "
                             "last core, on a GPU only); it steadies the tick time")


def add_dtype(parser: argparse.ArgumentParser,
              default: str = "bf16 on a GPU, fp32 on the CPU") -> None:
    parser.add_argument("--dtype", choices=sorted(DTYPES), default=None,
                        help=f"inference precision (default: {default})")


def parse_dtype(args: argparse.Namespace, device: torch.device) -> torch.dtype:
    if getattr(args, "dtype", None):
        return DTYPES[args.dtype]
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def load_model(game: str, weights: str | None, size: str | None, device: torch.device,
               dtype: torch.dtype):
    """Trained weights (named, or the game's shipped ones) or a random model of a size.

    Returns the model and a label saying which it is.
    """
    from neural_engine.games import load_spec
    from neural_engine.model.config import named_config
    from neural_engine.model.weights import load_world_model, shipped_weights
    from neural_engine.model.world import WorldModel

    if weights is None and size is None:
        shipped = shipped_weights(game)
        if shipped is None:
            raise EngineError(f"no trained weights for game {game!r} in assets/{game}/: "
                              "pass --weights PATH")
        model = load_world_model(shipped, device=device, dtype=dtype)
        return model, f"{shipped.relative_to(shipped.parents[2])} (shipped)"
    if weights is not None:
        model = load_world_model(weights, device=device, dtype=dtype)
        if model.config.game != game:
            raise EngineError(f"weights are for game {model.config.game!r}, not {game!r}",
                              where=weights)
        return model, weights
    spec = load_spec(game)
    config = named_config(size, game, spec.height, spec.width, spec.actions.dim)
    torch.manual_seed(0)
    return WorldModel(config).to(device=device, dtype=dtype).eval(), f"random {size}"
