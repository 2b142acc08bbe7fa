"""``neural-engine play`` (and ``python run_game.py``): play a game in a window or headless.

Everything the user named is checked before a window opens or a file is created:
the game, bindings, the action script, the output path. Then the pieces are put
together (frame source, driver, display, presenter, HUD, recorder) and the game loop
runs until quit, the time limit, or the end of the script.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from neural_engine.cli.options import add_device, add_dtype, resolve_device
from neural_engine.errors import EngineError
from neural_engine.games import Game, load_game
from neural_engine.input.mapper import ActionMapper, merge_bindings
from neural_engine.input.script import load_script
from neural_engine.runtime.drivers import AgentDriver, KeyboardDriver, ScriptDriver
from neural_engine.runtime.frame_source import SimulatorSource, StartState

HEADLESS_HINT = "python run_game.py --headless --seconds 10 --record play.mp4"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--game", default="maze", help="which game (default: maze)")
    p.add_argument("--engine", choices=("auto", "sim", "neural"), default="auto",
                   help="frame source: the neural world model, the ground-truth simulator, "
                        "or auto (neural when weights for the game exist)")
    p.add_argument("--weights", help="world-model weights (default: the game's shipped ones)")
    p.add_argument("--sampler", default="rolling", help="neural sampler: rolling, "
                   "rolling-nosink, causal or teacher (default: rolling)")
    p.add_argument("--late-binding", action="store_true",
                   help="frames still noisy in the window take a changed input at once")
    p.add_argument("--seed", type=int, default=0, help="world seed of the start state")
    p.add_argument("--headless", action="store_true",
                   help="render off-screen (no window); pair with --record")
    p.add_argument("--seconds", type=float, help="stop after this many seconds of game time")
    p.add_argument("--record", metavar="OUT.mp4", help="record what is shown to an mp4 file")
    p.add_argument("--script", metavar="FILE.toml", help="play an action script instead of "
                   "reading the keyboard")
    p.add_argument("--agent", action="store_true",
                   help="let the game's exploring agent play (default when headless "
                        "without a script)")
    p.add_argument("--scale", type=int, default=4, help="window size as a multiple of the "
                   "game's resolution (default: 4)")
    p.add_argument("--filter", choices=("nearest", "linear"), default="nearest",
                   help="upscaling filter (default: nearest)")
    p.add_argument("--fullscreen", action="store_true", help="start in fullscreen")
    p.add_argument("--no-hud", action="store_true", help="hide the HUD")
    p.add_argument("--bind", action="append", default=[], metavar="BUTTON=KEY[,KEY]",
                   help="override a button's keys, e.g. --bind forward=w,up (repeatable)")
    p.add_argument("--mouse-sensitivity", type=float, default=1.0,
                   help="multiplier on mouse motion (default: 1.0)")
    p.add_argument("--screenshot-dir", default=".", help="where F12 saves screenshots")
    p.add_argument("--realtime", action="store_true",
                   help="headless: pace ticks at the game's rate instead of as fast as possible")
    add_device(p)
    add_dtype(p)


def add_parser(sub) -> None:
    p = sub.add_parser("play", help="play a game (window or headless)",
                       description="Play a game on the neural engine or its simulator.")
    add_arguments(p)
    p.set_defaults(handler=run)


def parse_bindings(entries: list[str]) -> dict[str, tuple[str, ...]]:
    out = {}
    for entry in entries:
        button, sep, keys = entry.partition("=")
        names = tuple(k.strip() for k in keys.split(",") if k.strip())
        if not sep or not button.strip() or not names:
            raise EngineError(f"--bind {entry!r}: expected BUTTON=KEY[,KEY...], "
                              "e.g. --bind forward=w,up")
        out[button.strip()] = names
    return out


def _check_output(path: Path, what: str) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise EngineError(f"{what} folder does not exist", where=str(path))


def _frame_source(game: Game, args: argparse.Namespace):
    """The simulator, or the world model (named weights, else the game's shipped ones)."""
    from neural_engine.model.weights import shipped_weights

    engine = args.engine
    if engine == "auto":
        engine = "neural" if (args.weights or shipped_weights(game.spec.name)) else "sim"
        if engine == "sim":
            print(f"note: no trained weights for {game.spec.name!r} yet; playing the "
                  "ground-truth simulator (--engine sim)", file=sys.stderr)
    if engine == "sim":
        return SimulatorSource(game)
    from neural_engine.cli.options import load_model, parse_dtype
    from neural_engine.runtime.session import NeuralSource
    from neural_engine.sampler.stream import named_sampler

    device = resolve_device(args.device)
    model, _ = load_model(game.spec.name, args.weights, None, device, parse_dtype(args, device))
    sampler = replace(named_sampler(args.sampler), late_binding=args.late_binding)
    return NeuralSource(game, model, sampler, device=device)


def run(args: argparse.Namespace) -> int:
    game = load_game(args.game)
    spec = game.spec
    if args.scale < 1 or args.scale > 16:
        raise EngineError(f"--scale {args.scale}: must be between 1 and 16")
    if args.seconds is not None and args.seconds <= 0:
        raise EngineError(f"--seconds {args.seconds}: must be positive")
    bindings = merge_bindings(spec.bindings, parse_bindings(args.bind), spec.actions,
                              where="--bind")
    start = StartState(seed=args.seed)
    record = Path(args.record) if args.record else None
    if record is not None:
        if record.suffix.lower() != ".mp4":
            raise EngineError("recordings are written as mp4: give a path ending in .mp4",
                              where=str(record))
        _check_output(record, "recording")

    max_ticks = round(args.seconds * spec.tick_rate) if args.seconds else None
    if args.script:
        script = load_script(args.script, spec.actions, spec.name)
        driver = ScriptDriver(script.actions(spec.actions, spec.tick_rate, max_ticks))
    elif args.agent or args.headless:
        driver = AgentDriver(game, seed=args.seed)
    else:
        driver = KeyboardDriver(ActionMapper(spec.actions, bindings, args.mouse_sensitivity))
    if args.headless and max_ticks is None and not args.script:
        max_ticks = 10 * spec.tick_rate

    from neural_engine.presenter.display import (HeadlessDisplay, WindowDisplay,
                                                 display_available)

    if not args.headless and not display_available():
        raise EngineError(f"no display found; to play headless into a recording instead "
                          f"run: {HEADLESS_HINT}")
    source = _frame_source(game, args)
    size = (spec.width * args.scale, spec.height * args.scale)
    return _play(game, args, source, start, driver, size, record, max_ticks)


def _play(game, args, source, start, driver, size, record, max_ticks) -> int:
    from neural_engine.presenter.display import HeadlessDisplay, WindowDisplay
    from neural_engine.presenter.hud import Hud
    from neural_engine.presenter.presenter import Presenter
    from neural_engine.runtime.loop import GameLoop
    from neural_engine.runtime.recorder import Mp4Recorder

    spec = game.spec
    if args.headless:
        display = HeadlessDisplay(size)
    else:
        display = WindowDisplay(size, title=f"{spec.title} — neural engine",
                                fullscreen=args.fullscreen, resizable=record is None)
        display.grab_input(isinstance(driver, KeyboardDriver))
    recorder = None
    try:
        presenter = Presenter(display.ctx, (spec.width, spec.height), filter=args.filter)
        hud = None if args.no_hud else Hud(display.ctx)
        if record is not None:
            recorder = Mp4Recorder(record, fps=spec.tick_rate, size=display.size)
        loop = GameLoop(source, start, driver, display, presenter, hud, recorder,
                        realtime=not args.headless or args.realtime, max_ticks=max_ticks,
                        screenshot_dir=Path(args.screenshot_dir))
        stats = loop.run()
        if recorder is not None:
            recorder.close()
    except BaseException:
        if recorder is not None:
            recorder.__exit__(*sys.exc_info())
        raise
    finally:
        display.close()
    print(stats.summary())
    if recorder is not None:
        print(f"recorded {recorder.frames_written} frames "
              f"({recorder.frames_written / spec.tick_rate:.2f} s at {spec.tick_rate} fps) "
              f"to {record}")
    return 0


def main(argv=None) -> int:
    """Entry point of ``run_game.py``: the play command's arguments at the top level."""
    from neural_engine.cli.main import guarded

    parser = argparse.ArgumentParser(prog="run_game.py",
                                     description="Play a neural game. Esc quits, F11 "
                                     "fullscreen, P pause, R reset, F12 screenshot.")
    add_arguments(parser)
    return guarded(run, parser.parse_args(argv))
