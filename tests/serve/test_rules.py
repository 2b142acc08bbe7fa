"""A kiosk's rules per row, and the seat's input: the pygame loop's mapping, by name."""

import asyncio

import pygame
import torch

from neural_engine.input.actions import IDLE, Action
from neural_engine.input.mapper import ActionMapper
from neural_engine.input.keys import KEY_NAMES, key_code
from neural_engine.packs import ScenarioPack, load_pack
from neural_engine.serve import protocol
from neural_engine.serve.browser_keys import BROWSER_KEYS, MOUSE_BUTTON_NAMES
from neural_engine.serve.rules import SeatRules
from neural_engine.serve.seat import Seat

from .conftest import GAME, Player, make_server, running

# 20 ticks/s: attract after 10 idle ticks, idle reset after 6, sessions of 15 ticks.
PACK = '''game = "maze"
[[start]]
name = "attract-here"
seed = 5
[[start]]
name = "lobby"
seed = 7
[timeline]
seconds = 0.5
loop = true
[[timeline.cue]]
t = 0.0
hold = ["turn_left"]
caption = "demo"
[kiosk]
start = "lobby"
attract_after = 0.5
idle_reset = 0.3
session_limit = 0.75
reset_on_touch = true
caption = "Press any key"
session_over_caption = "Thanks!"
'''


def pack(tmp_path, text=PACK):
    (tmp_path / "pack.toml").write_text(text)
    return load_pack(tmp_path)


def test_a_row_attracts_until_touched_then_plays_then_attracts_again(tmp_path):
    rules = SeatRules(pack(tmp_path), release_after=0.0)
    turn_left = GAME.spec.actions.bit("turn_left")
    assert rules.start.seed == 5 and rules.yieldable
    turn = rules.turn(IDLE, touched=False)
    assert turn.mode == "attract" and turn.action.buttons == turn_left
    assert turn.caption[0] == "Press any key"
    turn = rules.turn(Action(1), touched=True)                  # a visitor takes over
    assert turn.mode == "play" and turn.restart.seed == 7 and turn.action == Action(1)
    assert not rules.yieldable
    restarts = [rules.turn(IDLE, touched=False).restart for _ in range(6)]
    assert [r.seed if r else None for r in restarts] == [None] * 5 + [7]   # idle reset
    modes = [rules.turn(IDLE, touched=False).mode for _ in range(4)]
    assert modes == ["play"] * 3 + ["attract"]                  # idle 10 ticks: attract
    assert rules.yieldable


def test_the_session_limit_ends_a_session_that_keeps_playing(tmp_path):
    rules = SeatRules(pack(tmp_path), release_after=0.0)
    rules.turn(Action(1), touched=True)                         # played tick 1 of 15
    turns = [rules.turn(Action(1), touched=False) for _ in range(16)]
    over = [t.session_over for t in turns]
    assert over.index(True) == 14 and turns[14].mode == "attract"   # after 15 played
    assert "Thanks!" in turns[14].caption and rules.yieldable
    assert rules.turn(Action(2), touched=True).mode == "play"   # a new session
    limited = SeatRules(pack(tmp_path), release_after=0.0, session_limit=0.0)
    limited.turn(Action(1), touched=True)
    assert not any(limited.turn(Action(1), touched=False).session_over for _ in range(40))


def test_a_pack_attracts_over_the_network_and_the_session_limit_hands_over(tmp_path):
    async def scenario():
        server = make_server(capacity=1, pack=pack(tmp_path))
        async with running(server) as port:
            first = await Player.join(port)
            await first.until(lambda: first.kinds("status"))
            assert first.kinds("status")[0]["mode"] == "attract"
            assert "Press any key" in first.kinds("status")[0]["caption"]
            assert server.rows.worlds[-1][1][0].seed == 5
            second = await Player.join(port)                    # waits; the row attracts,
            await first.until(lambda: first.kinds("released"))  # so it goes to them
            await second.until(lambda: second.kinds("welcome"))
            await second.key("w")                               # plays, non-stop
            await second.until(lambda: second.kinds("released"), timeout=10)
            assert second.kinds("released")[0]["reason"] == "session"
            assert second.kinds("released")[0]["message"] == "Thanks!"
            await first.until(lambda: len(first.kinds("welcome")) == 2)
            for p in (first, second):
                await p.leave()
    asyncio.run(scenario())


def test_every_browser_key_is_an_engine_key_and_back():
    names = set(BROWSER_KEYS.values()) | set(MOUSE_BUTTON_NAMES)
    assert names <= KEY_NAMES
    assert KEY_NAMES - names == {"enter"}                       # "return" has its code


def test_a_seat_maps_input_as_the_pygame_loop_does():
    """The same presses, releases and motion give the same action per tick."""
    spec = GAME.spec
    rules = SeatRules(ScenarioPack.bare(spec), release_after=0.0)
    seat = Seat(0, object(), "t", spec.actions, spec.bindings, 1.5, rules, delay=0)
    pygame_mapper = ActionMapper(spec.actions, spec.bindings, 1.5)
    script = [[("w", True), ("mouse", 30)], [("left shift", True), ("mouse", -10),
              ("mouse", -25)], [("w", False), ("q", True)], [("x", True)], [("blur", 0)]]
    seq = 0
    for events in script:
        for name, value in events:
            seq += 1
            if name == "mouse":
                seat.receive(protocol.Mouse(value, 0, seq))
                pygame_mapper.mouse_motion(value, 0)
            elif name == "blur":
                seat.receive(protocol.Blur(seq))
                pygame_mapper.release_all()
            else:
                seat.receive(protocol.Key(name, value, seq))
                (pygame_mapper.key_down if value else pygame_mapper.key_up)(key_code(name))
        assert seat.mapper.tick() == pygame_mapper.tick()
    assert key_code("w") == pygame.K_w


def test_pause_idles_the_row_and_reset_restarts_it():
    spec = GAME.spec
    rules = SeatRules(ScenarioPack.bare(spec), release_after=0.0)
    seat = Seat(0, object(), "t", spec.actions, spec.bindings, 1.0, rules, delay=2)
    seat.receive(protocol.Key("w", True, 1))
    assert seat.turn().action.buttons == spec.actions.bit("forward")
    seat.receive(protocol.Pause(True))
    seat.receive(protocol.Key("s", True, 2))
    assert seat.turn().action == IDLE
    seat.receive(protocol.Pause(False))
    seat.receive(protocol.Reset())
    assert seat.turn().restart == rules.pack.kiosk_start
    for seq in (3, 4, 5):
        seat.seq = seq
        seat.stepped()
    assert seat.ack == 3                                         # two ticks of delay
    assert torch.equal(spec.actions.encode([IDLE]), torch.zeros(1, spec.actions.dim))
