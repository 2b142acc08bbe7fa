"""Options shared by several commands (device choice, numbers in range), parsed the
same way everywhere.

Numbers a user types are checked by argparse itself (``number``, ``count``, ``seed``):
a NaN, an infinity, a zero batch or a seed too large for the generators is one usage
line and exit code 2, never a traceback from deep inside a run.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

from neural_engine.devices import DTYPES, parse_dtype, resolve_device  # noqa: F401
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


def add_kernels(parser: argparse.ArgumentParser) -> None:
    """``--kernels``: auto or a backend of the one kernel switch (``model/dispatch.py``),
    turned into a backend by ``dispatch.resolve_backend`` once the device is known."""
    from neural_engine.model.dispatch import BACKENDS

    parser.add_argument("--kernels", choices=("auto", *BACKENDS), default="auto",
                        help="the streaming pass's kernels: auto = the fused Triton kernels "
                             "on a GPU where they run, else PyTorch")


def add_pin_cpu(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pin-cpu", default="auto", metavar="auto|off|CORE",
                        help="keep the streaming loop's thread on one CPU core (auto: the "
                             "last core, on a GPU only); it steadies the tick time")


def add_dtype(parser: argparse.ArgumentParser,
              default: str = "bf16 on a GPU, fp32 on the CPU") -> None:
    parser.add_argument("--dtype", choices=sorted(DTYPES), default=None,
                        help=f"inference precision (default: {default})")
