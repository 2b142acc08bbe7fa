"""``neural-engine serve``: one line and exit 1 for a mistake, loopback by default, the
bench without a browser, the world model's rows, and a real process that stops cleanly."""

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from neural_engine.cli.main import build_parser, main
from neural_engine.cli.serve import build_floor, build_rows
from neural_engine.packs import ScenarioPack
from neural_engine.packs.start import StartState
from neural_engine.serve.codec import make_codec
from neural_engine.serve.server import Server

from .conftest import GAME, Player, running

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("argv, message", [
    (["--port", "70000"], "--port 70000"),
    (["--host", "example.org"], "give an IP address"),
    (["--max-players", "0"], "--max-players 0"),
    (["--release-after", "-1"], "--release-after"),
    (["--game", "nope"], "unknown game"),
    (["--bind", "forward=warp"], "unknown key name"),
    (["--bind", "forward=p"], "reserved"),
    (["--codec", "jpeg", "--quality", "0"], "quality"),
    (["--json", "x.json"], "go with --bench"),
    (["--pack", "games/maze/packs/tour", "--game", "other"], "the pack is for"),
    (["--weights", "missing.safetensors", "--engine", "neural", "--device", "cpu"],
     "missing.safetensors"),
])
def test_mistakes_are_one_line_and_exit_1(argv, message, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(["serve", *argv]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0]


def test_it_listens_on_loopback_unless_told():
    args = build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1" and args.max_players == 8 and args.codec == "jpeg"


def test_bench_seats_scripted_players_without_a_network(capsys, tmp_path):
    out = tmp_path / "bench.json"
    assert main(["serve", "--engine", "sim", "--bench", "1,2", "--ticks", "10",
                 "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| players |" in table and "\n| 2 |" in table and "players at 20 ticks/s" in table
    assert '"players": 2' in out.read_text()


def neural_args(weights):
    return argparse.Namespace(engine="neural", weights=str(weights), sampler=None,
                              late_binding=False, kernels="torch", device="cpu",
                              dtype=None, pin_cpu="off", max_players=2, max_waiting=2,
                              release_after=60.0, session_limit=None, reconnect_grace=0.0)


def test_the_world_models_rows_answer_an_action_after_their_window(tiny_weights):
    args = neural_args(tiny_weights)
    pack = ScenarioPack.bare(GAME.spec)
    rows, _ = build_rows(args, GAME, pack, 2)
    assert rows.name == "neural" and rows.delay == 3           # rolling: W = 4
    first = rows.start(1, StartState(seed=2))
    assert first.shape == (128, 128, 3) and first.dtype == np.uint8
    actions = torch.zeros(2, GAME.spec.actions.dim)
    got = [rows.step(actions) for _ in range(4)]
    assert [sorted(g) for g in got] == [[], [], [], [1]]        # after W − 1 ticks
    rows.start(0, StartState(seed=3))
    assert sorted(rows.step(actions)) == [1]                    # row 1 goes on meanwhile
    rows.stop(1)
    assert rows.step(actions) == {}

    async def scenario():
        codec = make_codec("jpeg")
        floor = build_floor(args, GAME, pack, rows, codec, GAME.spec.bindings, 1.0)
        server = Server(floor, rows, codec)
        async with running(server) as port:
            p = await Player.join(port)
            await p.until(lambda: p.frames)
            assert p.frames[0][0]["first"] and p.frames[0][0]["tick"] <= 1
            await p.until(lambda: len(p.frames) >= 2)
            assert p.frames[1][0]["tick"] >= 4                  # the window had to fill
            await p.leave()
    asyncio.run(scenario())


def test_a_real_server_process_serves_the_page_and_stops_on_sigterm():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "neural_engine.cli.main", "serve",
                                "--engine", "sim", "--port", "0", "--max-players", "2"],
                               stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        line = ""
        for _ in range(20):
            line = process.stderr.readline()
            if "serving" in line:
                break
        port = int(re.search(r"127\.0\.0\.1:(\d+)/", line).group(1))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert b"play.js" in response.read()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
