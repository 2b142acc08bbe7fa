"""Which frame encoding: bytes per frame, encode time here, decode time in the browser.

``python -m neural_engine.serve.codec_bench`` records frames of the game's exploring
agent in the simulator, encodes each with every candidate (raw RGB, PNG at three
compression levels, JPEG at three qualities) and times it; then it starts a server
on loopback, opens the page in headless chromium, and times the page's own decoder
(``neDraw``: ``createImageBitmap`` and a canvas draw, or the raw copy) on the same
frames. It prints a Markdown table (the one in ``docs/serve.md``). Needs Pillow,
aiohttp and chromium.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import statistics
import time

import numpy as np
import torch

from neural_engine.games import load_game
from neural_engine.serve.codec import decode

CANDIDATES = [("raw", 0, {}), ("png", 1, {"compress_level": 1}),
              ("png", 1, {"compress_level": 6}), ("png", 1, {"compress_level": 9}),
              ("jpeg", 2, {"quality": 75}), ("jpeg", 2, {"quality": 85}),
              ("jpeg", 2, {"quality": 95})]


def play_frames(game, ticks: int) -> list[np.ndarray]:
    sim, agent = game.simulator(batch=1), game.agent(batch=1, seed=1)
    frames = [sim.reset([3])[0].numpy()]
    agent.reset(sim)
    for _ in range(ticks):
        frames.append(sim.step(agent.act(sim))[0].numpy())
    return frames


def encode(frame: np.ndarray, kind: str, options: dict) -> bytes:
    if kind == "raw":
        return frame.tobytes()
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(frame).save(out, kind.upper(), **options)
    return out.getvalue()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255 ** 2 / mse)


async def browser_decode(payloads: dict[str, tuple[int, list[bytes]]], size) -> dict[str, float]:
    """Median ms the page takes to decode and draw one frame, per candidate."""
    from neural_engine.serve.assemble import build_floor
    from neural_engine.packs import ScenarioPack
    from neural_engine.serve.codec import make_codec
    from neural_engine.serve.headless import Browser
    from neural_engine.serve.rows import SimRows
    from neural_engine.serve.server import Server, start

    game = load_game("maze")
    args = argparse.Namespace(max_players=1, max_waiting=0, release_after=60.0,
                              session_limit=None, reconnect_grace=0.0)
    codec = make_codec("raw")
    rows = SimRows(game, 1)
    floor = build_floor(args, game, ScenarioPack.bare(game.spec), rows, codec,
                        game.spec.bindings, 1.0)
    server = Server(floor, rows, codec)
    runner, port = await start(server, "127.0.0.1", 0)
    browser = await Browser.launch()
    try:
        page = await browser.page()
        await page.open(f"http://127.0.0.1:{port}/")
        await page.wait_for("window.neStats.frames > 0")
        await page.evaluate("document.getElementById('pause').click()")   # no more frames
        out = {}
        for name, (codec_id, frames) in payloads.items():
            data = json.dumps([base64.b64encode(f).decode() for f in frames])
            out[name] = await page.evaluate(f"""(async () => {{
                const frames = {data}.map((b) => Uint8Array.from(atob(b), (c) => c.charCodeAt(0)));
                const times = [];
                for (let round = 0; round < 2; round++) for (const payload of frames) {{
                    const t0 = performance.now();
                    await window.neDraw({{codec: {codec_id}, width: {size[0]}, height: {size[1]},
                                         payload}});
                    times.push(performance.now() - t0);
                }}
                times.sort((a, b) => a - b);
                return times[Math.floor(times.length / 2)];
            }})()""", timeout=120)
        return out
    finally:
        await browser.close()
        await runner.cleanup()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    game = load_game("maze")
    frames = play_frames(game, args.frames)
    rows, payloads = [], {}
    for kind, codec_id, options in CANDIDATES:
        label = kind + "".join(f" {k.split('_')[-1]} {v}" for k, v in options.items())
        encoded, times = [], []
        for frame in frames:
            t0 = time.perf_counter()
            encoded.append(encode(frame, kind, options))
            times.append((time.perf_counter() - t0) * 1e3)
        quality = statistics.mean(psnr(f, decode(codec_id, e, f.shape[1], f.shape[0]))
                                  for f, e in zip(frames[:50], encoded[:50]))
        payloads[label] = (codec_id, encoded[::4])
        rows.append([label, statistics.mean(map(len, encoded)), statistics.median(times),
                     quality])
    decoded = asyncio.run(browser_decode(payloads, (game.spec.width, game.spec.height)))
    rate = game.spec.tick_rate
    print(f"{len(frames)} frames of the maze's agent, {game.spec.width}×{game.spec.height}")
    print("| encoding | bytes/frame | KiB/s at " f"{rate} ticks/s | encode ms (here) | "
          "decode+draw ms (chromium) | PSNR dB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, size, enc, quality in rows:
        shown = "lossless" if quality == float("inf") else f"{quality:.1f}"
        print(f"| {label} | {size:.0f} | {size * rate / 1024:.1f} | {enc:.3f} | "
              f"{decoded[label]:.2f} | {shown} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
