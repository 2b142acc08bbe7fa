"""Many players on loopback: each gets its own stream, the line moves, rows come back."""

import asyncio

import numpy as np

from neural_engine.serve.rules import SeatRules

from .conftest import Player, make_server, replay, running

# Each player holds its own keys; all of them start at the same place.
SCRIPTS = [["w"], ["left"], ["s", "a"], ["right", "w"], ["d"], ["q", "left shift", "w"]]


async def play(player, keys, seconds=0.6):
    for key in keys:
        await player.key(key, True)
    await asyncio.sleep(seconds)
    for key in keys:
        await player.key(key, False)


def check_own_stream(server, player):
    """Every frame the player got is its own world's, as the simulator replays it."""
    worlds = [w for seat, w in server.rows.worlds if seat == player.row]
    world = worlds[-1]
    header, _ = player.frames[-1]
    assert np.array_equal(player.picture(), replay(world, header["tick"]))
    return world


def test_players_join_play_and_leave_each_seeing_only_their_own_world():
    async def scenario():
        server = make_server(capacity=4, waiting=4)
        async with running(server) as port:
            players = [await Player.join(port) for _ in SCRIPTS]
            first, rest = players[:4], players[4:]
            for p in first:
                await p.until(lambda p=p: p.kinds("welcome") and len(p.frames) >= 2)
            for place, p in enumerate(rest, 1):
                await p.until(lambda p=p: p.kinds("wait"))
                assert p.kinds("wait")[-1]["position"] == place and not p.frames
            assert sorted(p.row for p in first) == [0, 1, 2, 3]
            await asyncio.gather(*(play(p, keys) for p, keys in zip(first, SCRIPTS)))
            await asyncio.sleep(0.3)
            pictures = [check_own_stream(server, p) and p.picture() for p in first]
            for i in range(4):                      # different input, different worlds
                for j in range(i):
                    assert not np.array_equal(pictures[i], pictures[j])
            held = [server.rows.worlds[-1][1]]
            assert all(len(w) > 3 for w in held)

            # Two leave: the two in line take their rows and play.
            freed = {first[0].row, first[1].row}
            await first[0].leave()
            await first[1].leave()
            for p in rest:
                await p.until(lambda p=p: p.kinds("welcome") and len(p.frames) >= 2)
            assert {p.row for p in rest} == freed
            await asyncio.gather(*(play(p, keys) for p, keys in zip(rest, SCRIPTS[4:])))
            await asyncio.sleep(0.3)
            for p in rest + first[2:]:
                check_own_stream(server, p)
            assert server.floor.players == 4 and not server.floor.line
            for p in rest + first[2:]:
                await p.leave()
            await asyncio.sleep(0.2)
            assert server.floor.players == 0
            assert server.refusals == 0
    asyncio.run(scenario())


def test_a_frame_names_the_newest_input_it_answers():
    async def scenario():
        server = make_server(capacity=1)
        async with running(server) as port:
            p = await Player.join(port)
            await p.until(lambda: len(p.frames) >= 2)
            assert p.frames[0][0]["first"] and not p.frames[-1][0]["first"]
            assert {h["ack"] for h, _ in p.frames} == {0}
            await p.key("w")
            await p.until(lambda: p.frames[-1][0]["ack"] == 1)
            answer = next(h for h, _ in p.frames if h["ack"] == 1)
            world = server.rows.worlds[-1][1]
            assert world[answer["tick"]][0] == 1.0       # forward held in that very step
            assert not any(a[0] for a in world[1:answer["tick"]])
            await p.leave()
    asyncio.run(scenario())


def test_a_dropped_player_takes_their_row_back_with_the_token():
    async def scenario():
        server = make_server(capacity=1, grace=5.0)
        async with running(server) as port:
            p = await Player.join(port)
            await p.until(lambda: len(p.frames) >= 1)
            token = p.kinds("welcome")[0]["token"]
            await play(p, ["w"], 0.3)
            ticks = p.frames[-1][0]["tick"]
            await p.leave()                            # the connection drops
            other = await Player.join(port)             # the row is held for the token
            await other.until(lambda: other.kinds("wait"))
            back = await Player.join(port, f"?resume={token}")
            await back.until(lambda: back.kinds("welcome") and back.frames)
            assert back.kinds("welcome")[0]["resumed"] and back.row == 0
            assert back.frames[-1][0]["tick"] > ticks   # the same world went on
            check_own_stream(server, back)
            wrong = await Player.join(port, "?resume=not-a-token")
            await wrong.until(lambda: wrong.kinds("wait"))
            for q in (other, back, wrong):
                await q.leave()
    asyncio.run(scenario())


def test_an_idle_row_goes_to_a_waiting_player_and_its_holder_queues(tmp_path):
    async def scenario():
        server = make_server(capacity=1, release_after=0.3)
        async with running(server) as port:
            idle = await Player.join(port)
            await idle.until(lambda: idle.frames)
            await idle.key("w")
            await idle.key("w", False)
            await asyncio.sleep(0.1)
            assert server.floor.players == 1           # nobody waits: the row stays
            waiting = await Player.join(port)
            await waiting.until(lambda: waiting.kinds("welcome"))
            await idle.until(lambda: idle.kinds("released") and idle.kinds("wait"))
            assert idle.kinds("released")[0]["reason"] == "idle"
            assert idle.kinds("wait")[-1]["position"] == 1
            await waiting.until(lambda: waiting.frames)
            for q in (idle, waiting):
                await q.leave()
    asyncio.run(scenario())


def test_rules_yield_only_when_nobody_plays():
    from neural_engine.packs import ScenarioPack

    from .conftest import GAME

    rules = SeatRules(ScenarioPack.bare(GAME.spec), release_after=1.0)
    assert rules.mode == "play" and not rules.yieldable
    from neural_engine.input.actions import IDLE, Action

    rules.turn(Action(1), touched=True)
    for _ in range(19):
        assert not rules.turn(IDLE, touched=False).session_over
    assert not rules.yieldable
    rules.turn(IDLE, touched=False)
    assert rules.yieldable
