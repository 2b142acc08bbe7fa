"""``neural-engine play`` (and ``python run_game.py``): play a game in a window or headless.

Everything the user named is checked before a window opens or a file is created:
the game, bindings, the action script or scenario pack, the output path. Then the
pieces are put together (frame source, driver, director, display, presenter, HUD,
recorder) and the game loop runs until quit, the time limit, or the end of the script.

With ``--pack`` a scenario pack sets the start states, controls, sampler and timeline
(``show.director``); command-line options given explicitly override it. With
``--kiosk`` the process becomes a watchdog (``show.watchdog``) that runs the game,
locked and fullscreen under the kiosk's rules (``show.kiosk``), as its child.

SIGTERM and SIGHUP end a run like Ctrl-C does, so a recording in progress is finished
and stays playable.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from neural_engine.cli.options import (add_device, add_dtype, add_kernels, add_pin_cpu, count,
                                       number, resolve_device, seed)
from neural_engine.errors import EngineError
from neural_engine.games import Game, load_game
from neural_engine.input.actions import Action
from neural_engine.input.mapper import ActionMapper, merge_bindings
from neural_engine.input.script import load_script
from neural_engine.packs import ScenarioPack, load_pack
from neural_engine.packs.start import StartState
from neural_engine.runtime.drivers import AgentDriver, KeyboardDriver, ScriptDriver
from neural_engine.runtime.frame_source import SimulatorSource
from neural_engine.show.watchdog import CHILD_ENV

HEADLESS_HINT = "python run_game.py --headless --seconds 10 --record play.mp4"
GPU_ADVICE = ("close other programs using the GPU, pick a lighter sampler (--sampler "
              "causal), or play on the CPU with --device cpu")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--game", default=None, help="which game (default: the pack's, else the "
                   "one games/games.toml names)")
    p.add_argument("--engine", choices=("auto", "sim", "neural"), default="auto",
                   help="frame source: the neural world model, the ground-truth simulator, "
                        "or auto (the pack's choice; else neural when weights exist)")
    p.add_argument("--weights", help="world-model weights (default: the pack's, else the "
                   "game's shipped ones)")
    p.add_argument("--sampler", default=None, help="neural sampler: rolling, "
                   "rolling-deterministic, rolling-nosink, causal or teacher (default: the "
                   "pack's, else rolling)")
    add_kernels(p)
    add_pin_cpu(p)
    p.add_argument("--late-binding", action="store_true",
                   help="frames still noisy in the window take a changed input at once")
    p.add_argument("--seed", type=seed, default=None,
                   help="world seed of the start state (default: 0; packs set their own)")
    p.add_argument("--headless", action="store_true",
                   help="render off-screen (no window); pair with --record")
    p.add_argument("--seconds", type=number(0, above=True),
                   help="stop after this many seconds of game time (default: headless 10 s "
                        "or the pack's timeline; in a window, until quit)")
    p.add_argument("--record", metavar="OUT.mp4", help="record what is shown to an mp4 file")
    p.add_argument("--script", metavar="FILE.toml", help="play an action script instead of "
                   "reading the keyboard")
    p.add_argument("--pack", metavar="PACK", help="play a scenario pack (its folder or "
                   "pack.toml); headless, its timeline is what plays")
    p.add_argument("--kiosk", action="store_true",
                   help="unattended kiosk: fullscreen, locked (quit only with the pack's "
                        "operator chord), attract mode, idle reset, session limit, a "
                        "watchdog that restarts the game and rotated logs")
    p.add_argument("--log-dir", default="kiosk-logs",
                   help="kiosk: where the rotated logs go (default: ./kiosk-logs)")
    p.add_argument("--no-watchdog", action="store_true",
                   help="kiosk: run the game in this process, without the watchdog")
    p.add_argument("--agent", action="store_true",
                   help="let the game's exploring agent play (default when headless "
                        "without a script)")
    p.add_argument("--scale", type=count(1, 16), default=4, help="window size as a multiple "
                   "of the game's resolution (default: 4)")
    p.add_argument("--filter", choices=("nearest", "linear"), default="nearest",
                   help="upscaling filter (default: nearest)")
    p.add_argument("--fullscreen", action="store_true", help="start in fullscreen")
    p.add_argument("--no-hud", action="store_true", help="hide the HUD (captions still show)")
    p.add_argument("--bind", action="append", default=[], metavar="BUTTON=KEY[,KEY]",
                   help="override a button's keys, e.g. --bind forward=w,up (repeatable)")
    p.add_argument("--mouse-sensitivity", type=number(0.01, 100), default=None,
                   help="multiplier on mouse motion (default: the pack's, else 1.0)")
    p.add_argument("--screenshot-dir", default=".", help="where F12 saves screenshots")
    p.add_argument("--realtime", action="store_true",
                   help="headless: pace ticks at the game's rate instead of as fast as possible")
    add_device(p)
    add_dtype(p, default="bf16 on a GPU; on the CPU fp32 with the denoiser's linear layers "
                         "in 8 bits, which a --dtype turns off")


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


# -- frame sources ------------------------------------------------------------------
def _frame_source(game: Game, args: argparse.Namespace, pack: ScenarioPack | None):
    """The simulator, or the world model (named weights, the pack's, or the shipped ones)."""
    from neural_engine.model.weights import shipped_weights

    weights = args.weights or (str(pack.weights) if pack and pack.weights else None)
    engine = args.engine
    if engine == "auto" and pack is not None:
        engine = pack.spec.engine
    if engine == "auto":
        engine = "neural" if (weights or shipped_weights(game.spec.name)) else "sim"
        if engine == "sim":
            print(f"note: no trained weights for {game.spec.name!r} yet; playing the "
                  "ground-truth simulator (--engine sim)", file=sys.stderr)
    if engine == "sim":
        return SimulatorSource(game)
    from neural_engine.sampler.stream import named_sampler

    if args.sampler is not None or pack is None or pack.sampler is None:
        sampler = named_sampler(args.sampler or "rolling")
    else:
        sampler = pack.sampler
    if args.late_binding:
        sampler = replace(sampler, late_binding=True)
    device = resolve_device(args.device)
    try:
        return _neural_source(game, args, weights, sampler, device)
    except RuntimeError as exc:       # torch.cuda.OutOfMemoryError, CUDA driver errors
        if device.type != "cuda" or not _is_gpu_failure(exc):
            raise
        reason = "ran out of memory" if _is_oom(exc) else f"failed ({_first_line(exc)})"
        if args.device != "auto":
            raise EngineError(f"the GPU {reason} while starting the world model: "
                              f"{GPU_ADVICE}") from None
        print(f"warning: the GPU {reason} while starting the world model; falling back to "
              f"the CPU (slow). To play on the GPU: {GPU_ADVICE}", file=sys.stderr)
        _release_gpu()
        return _neural_source(game, args, weights, sampler, resolve_device("cpu"))


def _neural_source(game: Game, args, weights: str | None, sampler, device):
    """The world model as a frame source; on a GPU, warmed up so that a lack of memory
    shows now rather than mid-game."""
    from neural_engine.cli.options import parse_dtype
    from neural_engine.model.weights import load_model
    from neural_engine.runtime.image_start import ImageStartSource

    model, _ = load_model(game.spec.name, weights, None, device, parse_dtype(args, device))
    if device.type == "cpu" and args.dtype is None:
        from neural_engine.model.cpu import for_cpu_play

        if (reason := for_cpu_play(model)) is not None:       # model/cpu.py: ~1.7x
            print(f"note: playing with fp32 weights: {reason}", file=sys.stderr)
    kernels = args.kernels
    source = ImageStartSource(game, model, sampler, device=device, kernels=kernels)
    if device.type == "cuda":
        try:
            _warm_up(source, sampler)
        except Exception as exc:  # noqa: BLE001 - a Triton build failure, say
            if kernels != "auto" or source.kernels == "torch" or _is_oom(exc):
                raise
            print(f"warning: the fused kernels failed to start ({_first_line(exc)}); "
                  "playing with the PyTorch kernels", file=sys.stderr)
            source = ImageStartSource(game, model, sampler, device=device, kernels="torch")
            _warm_up(source, sampler)
    from neural_engine.runtime.affinity import pin_host_thread

    pin_host_thread(args.pin_cpu, device)      # steadier ticks on a GPU (runtime/affinity.py)
    return source


def _warm_up(source, sampler) -> None:
    from neural_engine.input.actions import IDLE

    source.reset(StartState())
    for _ in range(sampler.window + 1):
        source.step(IDLE)


def _is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in str(exc)


def _is_gpu_failure(exc: BaseException) -> bool:
    return _is_oom(exc) or "CUDA" in str(exc) or "cuDNN" in str(exc)


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _release_gpu() -> None:
    import gc

    import torch

    gc.collect()
    torch.cuda.empty_cache()


# -- the pieces -----------------------------------------------------------------------
def _game(args: argparse.Namespace, pack: ScenarioPack | None) -> Game:
    if pack is None:
        return load_game(args.game)
    if args.game is not None and args.game != pack.game.name:
        raise EngineError(f"--game {args.game}: the pack is for {pack.game.name!r}")
    if args.seed is not None:
        raise EngineError("--seed: a pack's start states set the seeds; edit [[start]] in "
                          "its pack.toml")
    if args.script:
        raise EngineError("--script: a pack plays its own [timeline]; give one or the other")
    return load_game(pack.game.name)


def _mapper_factory(game: Game, args: argparse.Namespace):
    """Bindings and sensitivity: the game's, then the pack's, then the command line's."""
    spec = game.spec
    cli = parse_bindings(args.bind)

    def make(pack: ScenarioPack | None) -> ActionMapper:
        base = pack.bindings() if pack is not None else spec.bindings
        bindings = merge_bindings(base, cli, spec.actions, where="--bind")
        sensitivity = args.mouse_sensitivity
        if sensitivity is None:
            sensitivity = pack.spec.controls.mouse_sensitivity if pack is not None else 1.0
        return ActionMapper(spec.actions, bindings, sensitivity)

    return make


def _plain_driver(game: Game, args, make_mapper, max_ticks):
    spec = game.spec
    if args.script:
        script = load_script(args.script, spec.actions, spec.name)
        if max_ticks is None:
            return ScriptDriver(script.actions(spec.actions, spec.tick_rate))
        # compiled as far as the script goes; past its end its last buttons stay held
        ticks = min(max_ticks, max(1, round(script.length * spec.tick_rate)))
        actions = script.actions(spec.actions, spec.tick_rate, ticks)
        return ScriptDriver(actions, after=Action(actions[-1].buttons))
    if args.agent or args.headless:
        return AgentDriver(game, seed=args.seed or 0)
    return KeyboardDriver(make_mapper(None))


def _director(game: Game, args, pack: ScenarioPack, make_mapper):
    from neural_engine.show.director import PackDirector

    if args.kiosk:
        from neural_engine.show.kiosk import KioskDirector
        from neural_engine.show.watchdog import Heartbeat

        return KioskDirector(pack, KeyboardDriver(make_mapper(pack)),
                             heartbeat=Heartbeat.from_env(), make_mapper=make_mapper)
    if args.headless:
        player = None if pack.script is not None else AgentDriver(game, seed=0)
    elif args.agent:
        player = AgentDriver(game, seed=0)
    else:
        player = KeyboardDriver(make_mapper(pack))
    return PackDirector(pack, player, make_mapper=make_mapper,
                        make_source=lambda p: _frame_source(game, args, p))


def run(args: argparse.Namespace) -> int:
    with _signals_end_the_run():
        pack = load_pack(args.pack) if args.pack else None
        if args.kiosk and not args.no_watchdog and os.environ.get(CHILD_ENV) != "1":
            from neural_engine.cli.supervise import supervise

            return supervise(args, pack)
        return _run(args, pack)


def _run(args: argparse.Namespace, pack: ScenarioPack | None) -> int:
    game = _game(args, pack)
    spec = game.spec
    if args.scale < 1 or args.scale > 16:
        raise EngineError(f"--scale {args.scale}: must be between 1 and 16")
    if args.seconds is not None and not 0 < args.seconds < float("inf"):
        raise EngineError(f"--seconds {args.seconds}: must be positive")
    if args.mouse_sensitivity is not None and not 0.01 <= args.mouse_sensitivity <= 100:
        raise EngineError(f"--mouse-sensitivity {args.mouse_sensitivity}: must be between "
                          "0.01 and 100")
    make_mapper = _mapper_factory(game, args)
    make_mapper(pack)                                    # checks --bind before anything opens
    record = Path(args.record) if args.record else None
    if record is not None:
        if args.kiosk:
            raise EngineError("--record: a kiosk runs for days; it does not record")
        if record.suffix.lower() != ".mp4":
            raise EngineError("recordings are written as mp4: give a path ending in .mp4",
                              where=str(record))
        _check_output(record, "recording")

    max_ticks = round(args.seconds * spec.tick_rate) if args.seconds else None
    if args.kiosk and pack is None:
        pack = ScenarioPack.bare(spec)
    director = None
    if pack is not None:
        _log_to_stderr()
        director = _director(game, args, pack, make_mapper)
        driver, start = director.driver, director.start
        if (args.headless and not args.kiosk and max_ticks is None
                and director.timeline is not None):
            max_ticks = director.timeline.timeline.ticks
    else:
        driver = _plain_driver(game, args, make_mapper, max_ticks)
        start = StartState(seed=args.seed or 0)
    if args.headless and max_ticks is None and not args.script and not args.kiosk:
        max_ticks = 10 * spec.tick_rate         # a headless kiosk runs until it is stopped

    from neural_engine.presenter.display import display_available

    if not args.headless and not display_available():
        raise EngineError(f"no display found; to play headless into a recording instead "
                          f"run: {HEADLESS_HINT}")
    source = _frame_source(game, args, pack)
    size = (spec.width * args.scale, spec.height * args.scale)
    return _play(game, args, source, start, driver, size, record, max_ticks, director)


def _play(game, args, source, start, driver, size, record, max_ticks, director=None) -> int:
    from neural_engine.presenter.display import HeadlessDisplay, WindowDisplay
    from neural_engine.presenter.hud import Hud
    from neural_engine.presenter.presenter import Presenter
    from neural_engine.runtime.loop import GameLoop
    from neural_engine.runtime.recorder import Mp4Recorder

    spec = game.spec
    kiosk = args.kiosk
    if args.headless:
        display = HeadlessDisplay(size)
    else:
        display = WindowDisplay(size, title=f"{spec.title} — neural engine",
                                fullscreen=args.fullscreen or kiosk,
                                resizable=record is None and not kiosk)
        display.grab_input(kiosk or isinstance(driver, KeyboardDriver)
                           or director is not None)
    show_stats = not args.no_hud
    if director is not None and kiosk:
        show_stats = show_stats and director.pack.kiosk.show_stats
    elif director is not None and args.headless and not args.realtime:
        show_stats = False          # wall-clock numbers would make a pack's video vary
    recorder = None
    try:
        presenter = Presenter(display.ctx, (spec.width, spec.height), filter=args.filter)
        hud = Hud(display.ctx) if show_stats or director is not None else None
        if record is not None:
            recorder = Mp4Recorder(record, fps=spec.tick_rate, size=display.size)
        loop = GameLoop(source, start, driver, display, presenter, hud, recorder,
                        realtime=not args.headless or args.realtime or kiosk,
                        max_ticks=max_ticks,
                        screenshot_dir=Path(args.screenshot_dir), director=director,
                        locked=kiosk, show_stats=show_stats)
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
    if kiosk:
        print(f"kiosk: stopped: {stats.stopped}")
    if recorder is not None:
        print(f"recorded {recorder.frames_written} frames "
              f"({recorder.frames_written / spec.tick_rate:.2f} s at {spec.tick_rate} fps) "
              f"to {record}")
    return 0


def _log_to_stderr() -> None:
    logger = logging.getLogger("neural_engine")
    if not any(getattr(h, "_play_console", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        handler._play_console = True
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


@contextmanager
def _signals_end_the_run():
    """SIGTERM and SIGHUP raise KeyboardInterrupt (so recordings finish), during the run."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {}
    if hasattr(signal, "SIGHUP") and _main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            previous[sig] = signal.signal(sig, interrupt)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def kiosk_child() -> int:
    """The kiosk watchdog's child (``cli.supervise``): the play command with the arguments
    it was handed."""
    from neural_engine.cli.supervise import ARGS_ENV
    from neural_engine.show.watchdog import EXIT_REFUSED, tie_to_watchdog

    tie_to_watchdog()
    from neural_engine.cli.main import guarded

    try:
        args = argparse.Namespace(**json.loads(os.environ[ARGS_ENV]))
    except (KeyError, ValueError, TypeError):
        print(f"error: {ARGS_ENV} does not hold the play command's arguments",
              file=sys.stderr)
        return EXIT_REFUSED
    code = guarded(run, args)
    return EXIT_REFUSED if code == 1 else code


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def main(argv=None) -> int:
    """Entry point of ``run_game.py``: the play command's arguments at the top level."""
    from neural_engine.cli.main import DefaultsFormatter, guarded

    parser = argparse.ArgumentParser(prog="run_game.py", formatter_class=DefaultsFormatter,
                                     description="Play a neural game. Esc quits, F11 "
                                     "fullscreen, P pause, R reset, F12 screenshot, F5 "
                                     "reload the pack.")
    add_arguments(parser)
    return guarded(run, parser.parse_args(argv))
