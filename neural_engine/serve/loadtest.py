"""End-to-end latency and bytes on loopback: N WebSocket players against a real server.

``python -m neural_engine.serve.loadtest --players 8 --seconds 20 --engine sim`` starts
the server in this process on 127.0.0.1 (any free port), connects N players that
press and release keys a few times a second, and measures what a page would: the
time from sending a key press to receiving *and decoding* the first frame that
answers it (the frame whose ack names that press), p50 and p99 over all presses;
the bytes a second each player receives; the server's tick rate; and the CPU the
rows' thread spent encoding. Bounded in players (≤ 64) and time (≤ 120 s); only
loopback is contacted. Needs aiohttp and Pillow.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time

import aiohttp

from neural_engine.games import load_game
from neural_engine.packs import ScenarioPack
from neural_engine.serve import protocol
from neural_engine.serve.codec import decode, make_codec


class Probe:
    """One player: presses keys at random moments, times each press to its answer."""

    def __init__(self, keys: list[str], seed: int):
        self.keys, self.rng = keys, random.Random(seed)
        self.pressed: dict[int, float] = {}
        self.latencies: list[float] = []
        self.bytes = self.frames = 0
        self.seq = 0

    async def run(self, port: int, seconds: float) -> None:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:
                reader = asyncio.ensure_future(self._read(ws))
                end = time.perf_counter() + seconds
                held = None
                while time.perf_counter() < end:
                    await asyncio.sleep(self.rng.uniform(0.15, 0.45))
                    if held is not None:
                        self.seq += 1
                        await ws.send_str(json.dumps({"t": "key", "key": held, "down": False,
                                                      "seq": self.seq}))
                    held = self.rng.choice(self.keys)
                    self.seq += 1
                    self.pressed[self.seq] = time.perf_counter()
                    await ws.send_str(json.dumps({"t": "key", "key": held, "down": True,
                                                  "seq": self.seq}))
                reader.cancel()

    async def _read(self, ws) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                continue
            header, payload = protocol.read_frame(msg.data)
            decode(header["codec"], payload, header["width"], header["height"])
            now = time.perf_counter()
            self.frames += 1
            self.bytes += len(msg.data)
            for seq in [s for s in self.pressed if s <= header["ack"]]:
                self.latencies.append((now - self.pressed.pop(seq)) * 1e3)


async def measure(args) -> dict:
    from neural_engine.serve.assemble import build_floor, build_rows
    from neural_engine.serve.server import Server, start

    game = load_game("maze")
    pack = ScenarioPack.bare(game.spec)
    codec = make_codec(args.codec)
    rows, thread_init = build_rows(args, game, pack, args.players)
    floor = build_floor(args, game, pack, rows, codec, game.spec.bindings, 1.0)
    server = Server(floor, rows, codec, thread_init=thread_init)
    runner, port = await start(server, "127.0.0.1", 0)
    keys = [keys[0] for keys in game.spec.bindings.values()]
    probes = [Probe(keys, i) for i in range(args.players)]
    t0 = time.perf_counter()
    try:
        await asyncio.gather(*(p.run(port, args.seconds) for p in probes))
    finally:
        wall = time.perf_counter() - t0
        rate = floor.meter.rate
        await runner.cleanup()
    encode_s = server.encode_seconds
    latencies = sorted(x for p in probes for x in p.latencies)
    frames = sum(p.frames for p in probes)
    return {
        "players": args.players, "engine": rows.name, "codec": codec.name,
        "seconds": round(wall, 1), "presses": len(latencies),
        "latency_ms_p50": statistics.median(latencies),
        "latency_ms_p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "kib_per_s_per_player": sum(p.bytes for p in probes) / wall / args.players / 1024,
        "frames_per_s_per_player": frames / wall / args.players,
        "server_ticks_per_s": rate,
        "encode_cpu_fraction": encode_s / wall,
        "encode_ms_per_frame": encode_s * 1e3 / max(1, frames),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--engine", choices=("sim", "neural"), default="sim")
    parser.add_argument("--codec", choices=("png", "jpeg", "raw"), default="jpeg")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    if not 1 <= args.players <= 64 or not 1 <= args.seconds <= 120:
        parser.error("1-64 players for 1-120 seconds")
    args.__dict__.update(sampler=None, late_binding=False, kernels="auto", dtype=None,
                         pin_cpu="auto", max_players=args.players, max_waiting=0,
                         release_after=0.0, session_limit=0.0, reconnect_grace=0.0)
    result = asyncio.run(measure(args))
    print(json.dumps(result, indent=2))
    print(f"{result['players']} players, {result['engine']}, {result['codec']}: latency "
          f"p50 {result['latency_ms_p50']:.1f} ms, p99 {result['latency_ms_p99']:.1f} ms; "
          f"{result['kib_per_s_per_player']:.1f} KiB/s per player; server "
          f"{result['server_ticks_per_s']:.1f} ticks/s; encoding "
          f"{100 * result['encode_cpu_fraction']:.1f} % of a core", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
