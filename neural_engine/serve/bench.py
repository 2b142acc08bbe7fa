"""Players per machine: the server's tick for N scripted players, without a network.

For each player count N it builds the rows of ``--engine`` with N rows, seats N
players on a real ``Floor`` (each a scripted client that presses and releases keys
through the protocol's messages, so their mappers, kiosk rules and acks all run),
ticks as fast as the machine allows, and times every tick: the floor's plan, the
rows' start/step (on a GPU: the batched pass, the decode and one copy of all frames
to the host) and the encoding of every frame. A count *holds* the game's rate when
its p99 tick fits in one tick period; the largest such count is the players this
machine serves (what is left, the socket writes, runs on the event loop meanwhile).

The bench needs neither a browser nor aiohttp, so it runs on a bare GPU host;
``--codec raw`` there if Pillow is missing (the encode cost per frame is then
measured on a machine that has it).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from neural_engine.games import Game
from neural_engine.packs import ScenarioPack
from neural_engine.serve import protocol
from neural_engine.serve.codec import Codec
from neural_engine.serve.floor import run_tick


class ScriptedPlayer:
    """A client that always takes a frame, counts what it gets, and plays a script."""

    wants_frame = True

    def __init__(self, index: int, keys: list[str]):
        self.peer = f"bench#{index}"
        self.index, self.keys = index, keys
        self.frames = self.bytes = 0
        self.seq = 0

    def send_text(self, text: str) -> None:
        pass

    def send_frame(self, data: bytes) -> None:
        self.frames += 1
        self.bytes += len(data)

    def close(self, code: int, reason: str) -> None:
        pass

    def script(self, tick: int) -> list[protocol.ClientMessage]:
        """Every 10 ticks a different key goes down and the last one up; the mouse moves."""
        if (tick + self.index) % 10:
            return []
        key = self.keys[(tick // 10 + self.index) % len(self.keys)]
        last = self.keys[(tick // 10 + self.index - 1) % len(self.keys)]
        self.seq += 3
        return [protocol.Key(last, False, self.seq - 2), protocol.Key(key, True, self.seq - 1),
                protocol.Mouse(7, 0, self.seq)]


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_point(args, game: Game, pack: ScenarioPack, codec: Codec, bindings, sensitivity,
                players: int) -> dict:
    from neural_engine.serve.assemble import build_floor, build_rows, encode_threads
    from neural_engine.serve.codec import encoder_pool

    args = argparse.Namespace(**{**vars(args), "max_players": players, "max_waiting": 0})
    threads = encode_threads(args)
    encoder = encoder_pool(threads)                 # before this thread is pinned
    rows, thread_init = build_rows(args, game, pack, players)
    if thread_init is not None:
        thread_init()
    floor = build_floor(args, game, pack, rows, codec, bindings, sensitivity)
    keys = [k for ks in bindings.values() for k in ks[:1]]
    clients = [ScriptedPlayer(i, keys) for i in range(players)]
    for client in clients:
        floor.arrive(client)
    cuda = rows.name == "neural" and torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    warmup = rows.delay + 10
    ticks, steps, encodes = [], [], []
    for tick in range(warmup + args.ticks):
        t0 = time.perf_counter()
        for client in clients:
            for message in client.script(tick):
                floor.receive(client, message)
        plan = floor.plan()
        result = run_tick(rows, codec, plan, encoder)
        floor.deliver(plan, result, time.perf_counter())
        if tick >= warmup:
            ticks.append((time.perf_counter() - t0) * 1e3)
            steps.append(result.step_s * 1e3)
            encodes.append(result.encode_s * 1e3)
    if encoder is not None:
        encoder.shutdown()
    frames = sum(c.frames for c in clients)
    period = 1e3 / game.spec.tick_rate
    p99 = _percentile(ticks, 0.99)
    return {
        "players": players, "engine": rows.name, "codec": codec.name,
        "encode_threads": threads, "tick_ms_p50": statistics.median(ticks), "tick_ms_p99": p99,
        "step_ms_p50": statistics.median(steps), "encode_ms_p50": statistics.median(encodes),
        "encode_ms_per_frame": statistics.median(encodes) / players * threads,
        "ticks_per_s_max": 1e3 / statistics.median(ticks),
        "holds_rate": p99 <= period,
        "bytes_per_frame": sum(c.bytes for c in clients) / max(1, frames),
        "kib_per_s_per_player": sum(c.bytes for c in clients) / max(1, frames)
        * game.spec.tick_rate / 1024,
        "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
    }


def markdown(rows: list[dict], rate: int) -> str:
    lines = [f"| players | tick ms p50 | tick ms p99 | rows step ms p50 | encode ms p50 "
             f"(thread-ms per frame) | max ticks/s | holds {rate}/s | bytes/frame | KiB/s per player |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | :---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['players']} | {r['tick_ms_p50']:.2f} | {r['tick_ms_p99']:.2f} | "
                     f"{r['step_ms_p50']:.2f} | {r['encode_ms_p50']:.2f} "
                     f"({r['encode_ms_per_frame']:.3f}) | {r['ticks_per_s_max']:.1f} | "
                     f"{'yes' if r['holds_rate'] else 'no'} | {r['bytes_per_frame']:.0f} | "
                     f"{r['kib_per_s_per_player']:.1f} |")
    return "\n".join(lines)


def machine() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()}, torch {torch.__version__}"
    import os

    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads)")


def bench(args, game: Game, pack: ScenarioPack, codec: Codec, bindings, sensitivity) -> int:
    rate = game.spec.tick_rate
    results = []
    for players in args.bench:
        point = bench_point(args, game, pack, codec, bindings, sensitivity, players)
        results.append(point)
        print(f"{players} players: tick p50 {point['tick_ms_p50']:.2f} ms, p99 "
              f"{point['tick_ms_p99']:.2f} ms ({'holds' if point['holds_rate'] else 'misses'} "
              f"{rate} ticks/s)", file=sys.stderr, flush=True)
    held = [r["players"] for r in results if r["holds_rate"]]
    print(f"# serve bench: {game.spec.title}, {results[0]['engine']} engine, "
          f"{codec.name} frames ({results[0]['encode_threads']} encoding threads), {machine()}")
    print(markdown(results, rate))
    print(f"\nplayers at {rate} ticks/s (p99 tick within {1e3 / rate:.0f} ms): "
          f"{max(held) if held else 'none of those measured'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "game": game.spec.name,
                                               "tick_rate": rate, "points": results},
                                              indent=2))
    return 0
