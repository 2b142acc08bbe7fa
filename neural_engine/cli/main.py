"""The ``neural-engine`` command: subcommands, and the one place errors become exits.

Each subcommand lives in its own module with ``add_parser(subparsers)`` and
``run(args) -> int``. A user's mistake arrives here as an ``EngineError`` and leaves as
one line per problem on stderr with exit code 1 (control characters escaped); Ctrl-C
exits with 130, during start-up too (importing torch takes seconds). Everything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import functools
import sys
from typing import Callable, Sequence

from neural_engine.errors import EngineError, escape_controls

COMMANDS = ("play", "train", "eval", "bench", "validate", "serve", "ship")


def _module(name: str):
    import importlib

    return importlib.import_module(f"neural_engine.cli.{name}")


class DefaultsFormatter(argparse.HelpFormatter):
    """Help that shows every option's default (unless its text already says it; flags,
    which are off unless given, say nothing)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (not action.option_strings or "default" in text or action.nargs == 0
                or default is argparse.SUPPRESS or action.required):
            return text
        if default is None or default == []:
            shown = "none"
        elif isinstance(default, (list, tuple)):
            shown = ",".join(map(str, default))
        else:
            shown = "%(default)s"
        return f"{text} (default: {shown})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neural-engine", formatter_class=DefaultsFormatter,
        description="An interactive neural game engine: play, train, evaluate, "
                    "benchmark, serve and ship action-conditioned world models.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=functools.partial(
                                    argparse.ArgumentParser, formatter_class=DefaultsFormatter))
    for name in COMMANDS:
        _module(name).add_parser(sub)
    return parser


def guarded(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command; a user's error becomes one line per problem and exit code 1."""
    try:
        return run(args)
    except EngineError as exc:
        for line in str(exc).splitlines():
            print(f"error: {escape_controls(line)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)     # imports every command (and torch)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return guarded(args.handler, args)


def entry() -> None:
    """The command's process: ``main``, then its exit code (a torchrun rank leaves through
    ``training.distributed.exit_rank``, skipping the teardown that could abort it)."""
    code = main()
    ranks = sys.modules.get("neural_engine.training.distributed")
    if ranks is not None:
        ranks.exit_rank(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()
