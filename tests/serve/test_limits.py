"""Safe by default: garbage, floods, big messages, vanished clients and other origins
are refused in one log line each, and the other players do not notice."""

import asyncio
import json
import logging
import random

import aiohttp
import pytest

from neural_engine.serve import protocol

from .conftest import Player, make_server, running


def refusals(caplog):
    return [r.getMessage() for r in caplog.records
            if r.name == "neural_engine.serve" and "refused" in r.getMessage()]


async def still_playing(player, more=5):
    """The player keeps receiving frames."""
    seen = len(player.frames)
    await player.until(lambda: len(player.frames) >= seen + more)


BAD = [
    "not json", "[1, 2]", "null", '"key"', "{}", '{"t": "fly"}',
    '{"t": "key", "key": "w", "down": true}',                       # no seq
    '{"t": "key", "key": "w", "down": 1, "seq": 1}',                 # 1 is not true
    '{"t": "key", "key": "warp", "down": true, "seq": 1}',           # no such key
    '{"t": "key", "key": "w", "down": true, "seq": -1}',
    '{"t": "key", "key": "w", "down": true, "seq": 1, "x": 0}',      # extra field
    '{"t": "mouse", "dx": 1e9, "dy": 0, "seq": 1}',
    '{"t": "mouse", "dx": 1.5, "dy": 0, "seq": 1}',
    '{"t": "ping", "ts": NaN}', '{"t": "ping", "ts": Infinity}',
    '{"t": "pause", "on": "yes"}', "[" * 5000,
]


@pytest.mark.parametrize("text", BAD)
def test_parse_refuses_each_broken_message_with_a_reason(text):
    with pytest.raises(protocol.ProtocolError) as info:
        protocol.parse(text)
    assert str(info.value) and "\n" not in str(info.value)


def test_parse_reads_every_kind():
    assert protocol.parse('{"t":"key","key":"left shift","down":false,"seq":3}') == \
        protocol.Key("left shift", False, 3)
    assert protocol.parse('{"t":"mouse","dx":-4,"dy":2,"seq":9}') == protocol.Mouse(-4, 2, 9)
    assert protocol.parse('{"t":"blur","seq":1}') == protocol.Blur(1)
    assert protocol.parse('{"t":"pause","on":true}') == protocol.Pause(True)
    assert protocol.parse('{"t":"reset"}') == protocol.Reset()
    assert protocol.parse('{"t":"ping","ts":12.5}') == protocol.Ping(12.5)
    with pytest.raises(protocol.ProtocolError, match="binary"):
        protocol.parse(b"\x00\x01")
    with pytest.raises(protocol.ProtocolError, match="longer"):
        protocol.parse('{"t":"reset","pad":"' + "x" * 600 + '"}')


def mutations(rng: random.Random, count: int):
    """Valid messages broken at random: fields swapped, dropped, retyped; bytes flipped."""
    valid = [{"t": "key", "key": "w", "down": True, "seq": 1},
             {"t": "mouse", "dx": 3, "dy": -2, "seq": 2}, {"t": "blur", "seq": 3},
             {"t": "pause", "on": False}, {"t": "reset"}, {"t": "ping", "ts": 1.0}]
    odd = [None, True, 0, -1, 2**40, 1.5, "", "w" * 300, [], {}, [1], {"a": 1}]
    for _ in range(count):
        message = dict(rng.choice(valid))
        for _ in range(rng.randint(1, 3)):
            action = rng.random()
            if action < 0.3:
                message[rng.choice(list(message))] = rng.choice(odd)
            elif action < 0.5 and len(message) > 1:
                message.pop(rng.choice(list(message)))
            elif action < 0.7:
                message[rng.choice(["x", "t", "seq", "key"])] = rng.choice(odd)
        text = json.dumps(message)
        if rng.random() < 0.3:
            i = rng.randrange(len(text))
            text = text[:i] + chr(rng.randrange(0, 0x2FF)) + text[i + 1:]
        yield text


def test_fuzzed_messages_parse_or_raise_protocol_error_only():
    rng = random.Random(20)
    parsed = refused = 0
    for text in mutations(rng, 3000):
        try:
            message = protocol.parse(text)
        except protocol.ProtocolError:
            refused += 1
        else:
            parsed += 1
            assert type(message) in (protocol.Key, protocol.Mouse, protocol.Blur,
                                     protocol.Pause, protocol.Reset, protocol.Ping)
    assert parsed > 100 and refused > 1000


def test_garbage_floods_and_big_messages_drop_only_their_sender(caplog):
    caplog.set_level(logging.INFO, logger="neural_engine.serve")

    async def scenario():
        server = make_server(capacity=4, rate=50.0, burst=50)
        async with running(server) as port:
            good = await Player.join(port)
            await good.until(lambda: good.frames)
            rng = random.Random(7)
            for text in ["not json", '{"t": "key", "key": "warp", "down": true, "seq": 1}',
                         *list(mutations(rng, 40))]:
                try:
                    protocol.parse(text)
                    continue                               # a valid mutation: skip it
                except protocol.ProtocolError:
                    pass
                bad = await Player.join(port)
                await bad.until(lambda: bad.kinds("welcome"))
                await bad.ws.send_str(text)
                await asyncio.wait_for(bad.closed.wait(), 10)
                assert bad.kinds("refused")[0]["reason"] == "protocol"
                await bad.leave()
            flood = await Player.join(port)
            await flood.until(lambda: flood.kinds("welcome"))
            for i in range(2000):
                if flood.ws.closed:
                    break
                try:
                    await flood.send(t="ping", ts=float(i))
                except ConnectionError:                      # the server hung up: done
                    break
            await asyncio.wait_for(flood.closed.wait(), 10)
            big = await Player.join(port)
            await big.until(lambda: big.kinds("welcome"))
            await big.ws.send_str('{"t":"reset","x":"' + "y" * 5000 + '"}')
            await asyncio.wait_for(big.closed.wait(), 10)
            binary = await Player.join(port)
            await binary.until(lambda: binary.kinds("welcome"))
            await binary.ws.send_bytes(b"\x00" * 16)
            await asyncio.wait_for(binary.closed.wait(), 10)
            await still_playing(good)
            assert not good.kinds("refused") and not good.closed.is_set()
            assert server.floor.players == 1                # every dropped row is free
            for p in (flood, big, binary):
                await p.leave()
            await good.leave()
            return server.refusals
    count = asyncio.run(scenario())
    lines = refusals(caplog)
    assert len(lines) == count >= 5
    assert all("\n" not in line for line in lines)
    assert any("messages a second" in line for line in lines)
    assert any("binary" in line for line in lines)
    assert any("too big" in line.lower() or "size" in line.lower() for line in lines)


def test_a_client_that_vanishes_frees_its_row_and_others_play_on():
    async def scenario():
        server = make_server(capacity=2, grace=0.0)
        async with running(server) as port:
            good = await Player.join(port)
            gone = await Player.join(port)
            await gone.until(lambda: gone.frames)
            gone.ws._response.connection.transport.abort()    # no close frame: it vanishes
            await good.until(lambda: server.floor.players == 1)
            await still_playing(good)
            await good.leave()
    asyncio.run(scenario())


def test_the_line_is_bounded_and_a_full_server_says_so(caplog):
    caplog.set_level(logging.INFO, logger="neural_engine.serve")

    async def scenario():
        server = make_server(capacity=1, waiting=1)
        async with running(server) as port:
            players = [await Player.join(port) for _ in range(3)]
            await players[2].until(lambda: players[2].closed.is_set())
            assert players[2].kinds("refused")[0]["reason"] == "full"
            assert players[1].kinds("wait")[0]["position"] == 1
            for p in players:
                await p.leave()
    asyncio.run(scenario())
    assert any("the server is full" in line for line in refusals(caplog))


def test_only_the_page_and_its_origin(caplog):
    caplog.set_level(logging.INFO, logger="neural_engine.serve")

    async def scenario():
        server = make_server(capacity=1)
        async with running(server) as port, aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{port}"
            for path in ("/", "/play.js", "/play.css"):
                async with http.get(base + path) as response:
                    assert response.status == 200
                    assert response.headers["X-Content-Type-Options"] == "nosniff"
                    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
            for path in ("/static/play.js", "/../pyproject.toml", "/%2e%2e/README.md",
                         "/index.html", "/server.py"):
                async with http.get(base + path) as response:
                    assert response.status == 404
            async with http.post(base + "/", data=b"x") as response:
                assert response.status == 405
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await http.ws_connect(base + "/ws", headers={"Origin": "http://evil.example"})
            assert info.value.status == 403
            same = await http.ws_connect(base + "/ws", headers={"Origin": base})
            assert json.loads((await same.receive()).data)["t"] == "welcome"
            await same.close()
    asyncio.run(scenario())
    lines = refusals(caplog)
    assert any("another origin" in line for line in lines)
    assert any("no such file" in line for line in lines)
    assert any("only GET" in line for line in lines)
