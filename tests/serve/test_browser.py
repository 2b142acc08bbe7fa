"""A real browser plays: Debian's chromium, headless, on a loopback server of the
simulator. Keys and the captured mouse move the world exactly as the simulator says
(the picture on the page equals the simulator's replay of the actions the row
stepped); pause, reset, the waiting room and reconnecting work as a player sees them.

Set NEURAL_ENGINE_UPDATE_SCREENSHOT=1 to write docs/serve_screenshot.png from it.
"""

import asyncio
import base64
import os
from pathlib import Path

import numpy as np
import pytest

from neural_engine.serve.headless import Browser, find_chromium

from .conftest import GAME, make_server, replay, running

pytestmark = pytest.mark.skipif(find_chromium() is None,
                                reason="no chromium on PATH (apt-get install chromium)")

ROOT = Path(__file__).resolve().parents[2]
FORWARD = GAME.spec.actions.index("forward")
MOUSE_DX = GAME.spec.actions.index("dx")


async def shown(page):
    """The world tick of the picture on the page, and the picture (H, W, 3)."""
    tick, rgb = await page.evaluate("[window.neStats.tick, window.neCanvasRGB()]")
    data = np.frombuffer(base64.b64decode(rgb), np.uint8)
    return tick, data.reshape(GAME.spec.height, GAME.spec.width, 3)


async def settled(page, server):
    """Wait for a few more frames, then check the page shows the simulator's picture."""
    frames = await page.evaluate("window.neStats.frames")
    await page.wait_for(f"window.neStats.frames >= {frames + 3}")
    tick, picture = await shown(page)
    world = server.rows.worlds[-1][1]
    assert np.array_equal(picture, replay(world, tick)), "the page shows another picture"
    return world, picture


async def notice(page):
    return await page.evaluate("document.getElementById('notice').hidden ? '' : "
                               "document.getElementById('notice-title').textContent")


def test_a_browser_plays_the_simulator(tmp_path):
    async def scenario():
        server = make_server(capacity=1, codec="png", grace=5.0)
        async with running(server) as port:
            browser = await Browser.launch()
            try:
                await play(browser, server, f"http://127.0.0.1:{port}/", tmp_path)
            finally:
                await browser.close()
    asyncio.run(scenario())


async def play(browser, server, url, tmp_path):
    page = await browser.page()
    await page.call("Emulation.setDeviceMetricsOverride", width=960, height=600,
                    deviceScaleFactor=1, mobile=False)
    await page.open(url)
    await page.wait_for("window.neStats.frames > 2")
    assert await notice(page) == "Maze"                     # click to play, the controls
    _, start = await settled(page, server)

    # Keys: hold W, let go; the world moved forward, as the simulator says.
    await page.key("KeyW", True)
    await asyncio.sleep(0.6)
    await page.key("KeyW", False)
    world, walked = await settled(page, server)
    assert sum(a[FORWARD].item() for a in world[1:]) >= 3
    assert not np.array_equal(walked, start)
    await page.wait_for("window.neStats.latencies.length > 0")
    await asyncio.sleep(0.3)                                 # the HUD redraws
    screenshot = await page.screenshot()
    (tmp_path / "serve.png").write_bytes(screenshot)
    if os.environ.get("NEURAL_ENGINE_UPDATE_SCREENSHOT"):
        (ROOT / "docs" / "serve_screenshot.png").write_bytes(screenshot)

    # The mouse, captured: moving it right turns the view.
    await page.click(480, 300)
    await page.wait_for("document.pointerLockElement && "
                        "document.pointerLockElement.id === 'frame'")
    assert await notice(page) == ""
    for x in range(480, 700, 20):
        await page.move_mouse(x, 300)
        await asyncio.sleep(0.03)
    world, turned = await settled(page, server)
    assert sum(a[MOUSE_DX].item() for a in world[1:]) > 0.5
    assert not np.array_equal(turned, walked)
    hud = await page.evaluate("document.getElementById('hud').textContent")
    assert "ticks/s" in hud and "ms p50" in hud and "players 1/1" in hud

    # P pauses (no frames; the mouse is freed), P again resumes.
    await page.key("KeyP", True)
    await page.key("KeyP", False)
    await page.wait_for("!document.pointerLockElement")
    assert await notice(page) == "Paused"
    seat = server.floor.seats[0]
    assert seat.paused
    await asyncio.sleep(0.5)                                # a frame already on its way
    frames = await page.evaluate("window.neStats.frames")
    await asyncio.sleep(0.4)
    assert await page.evaluate("window.neStats.frames") == frames
    await page.key("KeyP", True)
    await page.key("KeyP", False)
    await page.wait_for(f"window.neStats.frames > {frames + 2}")
    assert not seat.paused

    # R: back to the start state, a new world.
    worlds = len(server.rows.worlds)
    await page.key("KeyR", True)
    await page.key("KeyR", False)
    await page.wait_for(f"window.neStats.tick < 10")
    assert len(server.rows.worlds) == worlds + 1
    await settled(page, server)

    # A second page waits for the row.
    other = await browser.new_page()
    await other.open(url)
    await other.wait_for("window.neStats.state === 'waiting'")
    assert await notice(other) == "Waiting for a free row"
    assert "number 1 in line" in await other.evaluate(
        "document.getElementById('notice-text').textContent")

    # The connection drops: the page says so, reconnects and takes its row back.
    for conn in list(server.connections):
        if conn.peer.endswith("#1"):
            await conn.ws.close(code=1011, message=b"dropped by the test")
    await page.wait_for("document.getElementById('notice-title').textContent === "
                        "'Connection lost'")
    await page.wait_for("window.neStats.connects === 2", timeout=20)
    await page.wait_for("document.getElementById('notice-title').textContent === "
                        "'Welcome back'")
    assert server.floor.seats[0].client is not None and server.floor.line
    await settled(page, server)
    await other.close()
    await page.close()
