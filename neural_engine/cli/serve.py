"""``neural-engine serve``: play in a browser, many players on one batched pool.

Everything the user named is checked before the port opens: the game, the pack,
bindings, limits, the codec, the weights. Then the rows (the simulator's, or the
world model's stream pool), the floor and the web server are put together and serve
until Ctrl-C or SIGTERM. It binds to loopback unless ``--host`` says otherwise.

``--bench N,N,…`` serves nobody: it seats N scripted players on the same floor and
rows, ticks them as fast as they go, and prints what each tick costs
(``neural_engine.serve.bench``); it needs no browser, network or aiohttp.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
import sys

from neural_engine.cli.options import add_device, add_dtype, add_kernels, add_pin_cpu
from neural_engine.cli.play import parse_bindings
from neural_engine.errors import EngineError
from neural_engine.games import Game, load_game
from neural_engine.input.mapper import merge_bindings
from neural_engine.packs import ScenarioPack, load_pack
from neural_engine.serve.assemble import build_floor, build_rows, encode_threads

DEFAULT_CODEC = "jpeg"          # measured: docs/serve.md


def _counts(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated player counts, got {text!r}")
    if not values or min(values) < 1 or max(values) > 1024:
        raise argparse.ArgumentTypeError(f"player counts are 1 … 1024, got {text!r}")
    return values


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="serve the game to browsers, many players on one pool",
                       description="Serve a page and one WebSocket per player; each player "
                                   "steers their own row of one batched stream pool.")
    p.add_argument("--game", default=None, help="which game (default: the pack's, else the "
                   "one games/games.toml names)")
    p.add_argument("--pack", metavar="PACK", help="a scenario pack: start states, bindings, "
                   "sampler, and the kiosk rules every row follows (attract mode, idle "
                   "reset, session limit)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0: any free)")
    p.add_argument("--max-players", type=int, default=8,
                   help="rows of the pool, players at once (default: 8)")
    p.add_argument("--max-waiting", type=int, default=32,
                   help="players who may wait for a row (default: 32); more are refused")
    p.add_argument("--engine", choices=("auto", "sim", "neural"), default="auto",
                   help="the world model, the ground-truth simulator, or auto (the pack's "
                        "choice; else neural when weights and a GPU exist)")
    p.add_argument("--weights", help="world-model weights (default: the pack's, else the "
                   "game's shipped ones)")
    p.add_argument("--sampler", default=None, help="neural sampler (default: the pack's, "
                   "else rolling)")
    p.add_argument("--late-binding", action="store_true",
                   help="frames still noisy in the window take a changed input at once")
    add_kernels(p)
    p.add_argument("--codec", choices=("png", "jpeg", "raw"), default=DEFAULT_CODEC,
                   help=f"frame encoding (default: {DEFAULT_CODEC}, chosen by measurement)")
    p.add_argument("--quality", type=int, default=85, help="JPEG quality (default: 85)")
    p.add_argument("--encode-threads", type=int, default=1,
                   help="threads that encode frames (default: 1; on the H200 host 4 were "
                        "slower than 1 for 128×128 frames: docs/serve.md)")
    p.add_argument("--release-after", type=float, default=60.0, metavar="SECONDS",
                   help="a row idle this long goes to a waiting player (default: 60; 0: "
                        "only attract mode and ended sessions yield)")
    p.add_argument("--session-limit", type=float, default=None, metavar="SECONDS",
                   help="a player's session lasts at most this long (default: the pack's "
                        "[kiosk] session_limit; 0: no limit)")
    p.add_argument("--reconnect-grace", type=float, default=10.0, metavar="SECONDS",
                   help="a dropped player's row waits this long for them (default: 10)")
    p.add_argument("--message-rate", type=float, default=120.0,
                   help="client messages a second before a client is dropped (default: 120)")
    p.add_argument("--bind", action="append", default=[], metavar="BUTTON=KEY[,KEY]",
                   help="override a button's keys, e.g. --bind forward=w,up (repeatable)")
    p.add_argument("--mouse-sensitivity", type=float, default=None,
                   help="multiplier on mouse motion (default: the pack's, else 1.0)")
    p.add_argument("--bench", type=_counts, default=None, metavar="N,N,…",
                   help="serve nobody: time the server's tick for N scripted players each "
                        "(e.g. 1,8,32,64) and say how many hold the game's tick rate")
    p.add_argument("--ticks", type=int, default=200, help="--bench: timed ticks per count")
    p.add_argument("--json", metavar="OUT.json", help="--bench: also write the table as JSON")
    add_pin_cpu(p)
    add_device(p)
    add_dtype(p)
    p.set_defaults(handler=run)


# -- checks ---------------------------------------------------------------------------
def _game(args, pack: ScenarioPack | None) -> Game:
    if pack is None:
        return load_game(args.game)
    if args.game is not None and args.game != pack.game.name:
        raise EngineError(f"--game {args.game}: the pack is for {pack.game.name!r}")
    return load_game(pack.game.name)


def _check(args) -> None:
    if not 0 <= args.port <= 65535:
        raise EngineError(f"--port {args.port}: must be between 0 and 65535")
    try:
        ipaddress.ip_address(args.host)
    except ValueError:
        if args.host != "localhost":
            raise EngineError(f"--host {args.host!r}: give an IP address (127.0.0.1, "
                              "0.0.0.0, ::1) or localhost") from None
    if not 1 <= args.max_players <= 1024:
        raise EngineError(f"--max-players {args.max_players}: must be between 1 and 1024")
    if not 0 <= args.max_waiting <= 4096:
        raise EngineError(f"--max-waiting {args.max_waiting}: must be between 0 and 4096")
    for name in ("release_after", "session_limit", "reconnect_grace"):
        value = getattr(args, name)
        if value is not None and not 0 <= value <= 86400:
            raise EngineError(f"--{name.replace('_', '-')} {value}: must be between 0 and "
                              "86400 seconds")
    if not 1 <= args.message_rate <= 10_000:
        raise EngineError(f"--message-rate {args.message_rate}: must be between 1 and 10000")
    if args.mouse_sensitivity is not None and not 0.01 <= args.mouse_sensitivity <= 100:
        raise EngineError(f"--mouse-sensitivity {args.mouse_sensitivity}: must be between "
                          "0.01 and 100")
    if not 1 <= args.encode_threads <= 64:
        raise EngineError(f"--encode-threads {args.encode_threads}: must be between 1 and 64")
    if args.bench is None and (args.json or args.ticks != 200):
        raise EngineError("--json and --ticks go with --bench")
    if args.ticks < 10:
        raise EngineError(f"--ticks {args.ticks}: at least 10")


def _is_loopback(host: str) -> bool:
    return host == "localhost" or ipaddress.ip_address(host).is_loopback


# -- the pieces -----------------------------------------------------------------------
def controls(args, game: Game, pack: ScenarioPack) -> tuple[dict, float]:
    """Bindings and mouse sensitivity: the game's, then the pack's, then the command line's."""
    bindings = merge_bindings(pack.bindings(), parse_bindings(args.bind), game.spec.actions,
                              where="--bind")
    sensitivity = args.mouse_sensitivity
    if sensitivity is None:
        sensitivity = pack.spec.controls.mouse_sensitivity
    return bindings, sensitivity


def run(args: argparse.Namespace) -> int:
    _check(args)
    pack = load_pack(args.pack) if args.pack else None
    game = _game(args, pack)
    pack = pack or ScenarioPack.bare(game.spec)
    from neural_engine.serve.codec import make_codec

    codec = make_codec(args.codec, args.quality)
    bindings, sensitivity = controls(args, game, pack)
    if args.bench is not None:
        from neural_engine.serve.bench import bench

        return bench(args, game, pack, codec, bindings, sensitivity)
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        raise EngineError("serving needs aiohttp: pip install 'neural-engine[serve]'") from None
    rows, thread_init = build_rows(args, game, pack, args.max_players)
    floor = build_floor(args, game, pack, rows, codec, bindings, sensitivity)
    _log_to_stderr()
    return asyncio.run(_serve(args, floor, rows, codec, thread_init))


async def _serve(args, floor, rows, codec, thread_init) -> int:
    from neural_engine.serve.server import Server, ServerSettings, start

    settings = ServerSettings(message_rate=args.message_rate,
                              message_burst=max(1, int(2 * args.message_rate)))
    server = Server(floor, rows, codec, settings, thread_init=thread_init,
                    encode_threads=encode_threads(args))
    try:
        runner, port = await start(server, args.host, args.port)
    except OSError as exc:
        raise EngineError(f"cannot listen on {args.host}:{args.port}: "
                          f"{exc.strerror or exc}") from None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, server.stopped.set)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"serving {floor.spec.title} [{rows.name}] on http://{shown}:{port}/ "
          f"({args.max_players} rows, {codec.name} frames); Ctrl-C stops", file=sys.stderr)
    if not _is_loopback(args.host):
        print(f"warning: listening on {args.host}: anyone who can reach this machine can "
              "play", file=sys.stderr)
    await server.stopped.wait()
    await runner.cleanup()
    if server.failed is not None:
        raise server.failed
    return 0


def _log_to_stderr() -> None:
    logger = logging.getLogger("neural_engine")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s",
                                           "%H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
