"""The pieces of a serving floor, put together from the ``serve`` command's arguments.

``build_rows`` makes the rows of the engine asked for (the simulator's, or the world
model's stream pool), ``build_floor`` the floor that seats players on them. The
``serve`` command, its ``--bench`` and the load and codec tools all assemble a floor
this way, so that what they measure is what is served. Arguments arrive as the
command's ``argparse.Namespace``, already checked by the command line.
"""

from __future__ import annotations

import sys

from neural_engine.games import Game
from neural_engine.packs import ScenarioPack


def encode_threads(args) -> int:
    return getattr(args, "encode_threads", 1)


def choose_engine(args, game: Game, pack: ScenarioPack) -> str:
    import torch

    from neural_engine.model.weights import shipped_weights

    engine = pack.spec.engine if args.engine == "auto" else args.engine
    if engine == "auto":
        has_weights = args.weights or pack.weights or shipped_weights(game.spec.name)
        gpu = torch.cuda.is_available() and args.device != "cpu"
        engine = "neural" if has_weights and gpu else "sim"
        if engine == "sim":
            why = "no GPU" if has_weights else "no trained weights"
            print(f"note: {why}: serving the ground-truth simulator (--engine neural "
                  "serves the world model)", file=sys.stderr)
    return engine


def build_rows(args, game: Game, pack: ScenarioPack, capacity: int):
    """The rows of ``--engine``, and the rows thread's initialiser."""
    import torch

    engine = choose_engine(args, game, pack)
    if engine == "sim":
        from neural_engine.serve.rows import SimRows

        # The simulator's tensors are tiny: torch's intra-op threads cost more than they
        # give (1.9 ms a step on one thread here, 26-48 ms on two under load).
        torch.set_num_threads(1)
        return SimRows(game, capacity), None
    from dataclasses import replace

    from neural_engine.devices import parse_dtype, resolve_device
    from neural_engine.model.dispatch import resolve_backend
    from neural_engine.model.weights import load_model
    from neural_engine.runtime.affinity import pin_host_thread
    from neural_engine.runtime.world import WorldSession
    from neural_engine.sampler.stream import named_sampler
    from neural_engine.serve.rows import NeuralRows

    device = resolve_device(args.device)
    weights = args.weights or (str(pack.weights) if pack.weights else None)
    if args.sampler is not None or pack.sampler is None:
        sampler = named_sampler(args.sampler or "rolling")
    else:
        sampler = pack.sampler
    if args.late_binding:
        sampler = replace(sampler, late_binding=True)
    model, _ = load_model(game.spec.name, weights, None, device, parse_dtype(args, device))
    world = WorldSession(model, sampler, capacity, device,
                         kernels=resolve_backend(args.kernels, device))
    return NeuralRows(game, world), lambda: pin_host_thread(args.pin_cpu, device)


def build_floor(args, game: Game, pack: ScenarioPack, rows, codec, bindings, sensitivity):
    from neural_engine.serve.browser_keys import BROWSER_KEYS
    from neural_engine.serve.floor import Floor, FloorSettings

    spec = game.spec
    settings = FloorSettings(max_players=args.max_players, max_waiting=args.max_waiting,
                             release_after=args.release_after,
                             session_limit=args.session_limit,
                             reconnect_grace=args.reconnect_grace)
    welcome = {"game": spec.name, "title": pack.spec.title or spec.title, "engine": rows.name,
               "width": spec.width, "height": spec.height, "tick_rate": spec.tick_rate,
               "codec": codec.name, "delay": rows.delay, "capacity": args.max_players,
               "bindings": {b: list(k) for b, k in bindings.items()}, "keys": BROWSER_KEYS,
               "controls": {"pause": "p", "reset": "r", "fullscreen": "f11"}}
    return Floor(spec, pack, settings, bindings, sensitivity, rows.delay, welcome, codec)
