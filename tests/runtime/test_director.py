"""Playing a pack in the real game loop: timeline events, captions, takeover, R, F5."""

import pytest

from neural_engine.input.mapper import ActionMapper
from neural_engine.packs import load_pack
from neural_engine.show.director import PackDirector
from neural_engine.runtime.drivers import KeyboardDriver
from neural_engine.runtime.loop import GameLoop

from .conftest import ScriptedDisplay, down, up

PACK = '''game = "maze"
[[start]]
name = "hall"
seed = 1
[[start]]
name = "garden"
seed = 2
[controls.bindings]
forward = ["i"]
[timeline]
seconds = 1.0
[[timeline.cue]]
t = 0.0
hold = ["back"]
caption = "first"
caption_seconds = 0.25
[[timeline.cue]]
t = 0.5
start = "garden"
caption = "second\\nline"
[[timeline.cue]]
t = 0.75
reset = true
'''


@pytest.fixture
def pack_dir(tmp_path):
    folder = tmp_path / "pack"
    folder.mkdir()
    (folder / "pack.toml").write_text(PACK)
    return folder


def mapper_for(pack):
    return ActionMapper(pack.game.actions, pack.bindings(), pack.spec.controls.mouse_sensitivity)


def make_loop(pack, parts, player=None, events=None, max_ticks=None, loop_timeline=None):
    source, presenter, hud = parts
    director = PackDirector(pack, player, make_mapper=mapper_for, loop_timeline=loop_timeline)
    loop = GameLoop(source, director.start, director.driver, ScriptedDisplay(events),
                    presenter, hud, realtime=False, max_ticks=max_ticks, director=director,
                    show_stats=False)
    return loop, director


def test_the_timeline_plays_its_events_at_their_ticks(pack_dir, loop_parts):
    pack = load_pack(pack_dir)
    loop, _ = make_loop(pack, loop_parts)
    stats = loop.run()
    source, presenter, _ = loop_parts
    assert stats.ticks == 20                       # the timeline's second, then it ends
    space = pack.game.actions
    assert all(space.held(a) == ["back"] for a in source.actions)
    # world resets: at the start, the switch to "garden" at tick 10, the reset at 15
    assert [(t, s.seed) for t, s in source.resets] == [(0, 1), (10, 2), (15, 2)]
    assert presenter.lines[:5] == [("first",)] * 5 and presenter.lines[5] == ()
    assert presenter.lines[10] == ("second", "line")


def test_a_touch_hands_control_to_the_player(pack_dir, loop_parts):
    pack = load_pack(pack_dir)
    keyboard = KeyboardDriver(mapper_for(pack))
    loop, _ = make_loop(pack, loop_parts, player=keyboard, max_ticks=12,
                        events={3: [down("K_i")], 6: [up("K_i")]})
    loop.run()
    space = pack.game.actions
    held = [space.held(a) for a in loop_parts[0].actions]
    assert held[:3] == [["back"]] * 3              # the timeline
    assert held[3:6] == [["forward"]] * 3          # "i" is the pack's forward key
    assert held[6:] == [[]] * 6                    # the player has control; no more timeline
    assert loop.driver is keyboard
    assert [t for t, _ in loop_parts[0].resets] == [0]   # no timeline events after takeover


def test_the_end_of_the_timeline_hands_control_to_the_player(pack_dir, loop_parts):
    pack = load_pack(pack_dir)
    keyboard = KeyboardDriver(mapper_for(pack))
    loop, _ = make_loop(pack, loop_parts, player=keyboard, max_ticks=25)
    assert loop.run().ticks == 25
    assert loop.driver is keyboard and loop_parts[0].actions[24].buttons == 0


def test_a_looping_timeline_starts_over_at_its_start(pack_dir, loop_parts):
    pack = load_pack(pack_dir)
    loop, _ = make_loop(pack, loop_parts, max_ticks=45, loop_timeline=True)
    loop.run()
    resets = [(t, s.seed) for t, s in loop_parts[0].resets]
    assert resets == [(0, 1), (10, 2), (15, 2), (20, 1), (30, 2), (35, 2), (40, 1)]


def test_r_restarts_the_show(pack_dir, loop_parts):
    pack = load_pack(pack_dir)
    keyboard = KeyboardDriver(mapper_for(pack))
    loop, _ = make_loop(pack, loop_parts, player=keyboard, max_ticks=20,
                        events={2: [down("K_i")], 4: [down("K_r")]})
    loop.run()
    resets = [(t, s.seed) for t, s in loop_parts[0].resets]
    assert resets == [(0, 1), (4, 1), (14, 2), (19, 2)]   # timeline again from tick 4
    assert loop_parts[1].lines[4] == ("first",)


def test_f5_reloads_the_pack_and_keeps_the_old_one_when_the_edit_is_broken(pack_dir,
                                                                         loop_parts):
    pack = load_pack(pack_dir)
    keyboard = KeyboardDriver(mapper_for(pack))
    loop, director = make_loop(pack, loop_parts, player=keyboard, max_ticks=30,
                               events={1: [down("K_i")], 2: [up("K_i")], 3: [down("K_F5")],
                                       5: [down("K_i")], 6: [up("K_i")], 7: [down("K_F5")],
                                       9: [down("K_k")], 10: [up("K_k")]})
    original = loop.run
    edits = {3: PACK.replace('forward = ["i"]', 'forward = ["k"]'),
             7: PACK.replace('forward = ["i"]', 'forward = ["kk"]')}

    def display_flip_with_edits(flip=loop.display.flip):
        if loop.display.flips + 1 in edits:
            (pack_dir / "pack.toml").write_text(edits[loop.display.flips + 1])
        flip()

    loop.display.flip = display_flip_with_edits
    original()
    space = pack.game.actions
    lines = loop_parts[1].lines
    # after the first F5 the pack says forward = "k": "i" no longer moves the player
    assert director.pack.bindings()["forward"] == ("k",)
    assert any(line[0].startswith("reloaded") for line in lines[3:6] if line)
    # the second edit is broken: reported on the HUD, the old pack kept
    assert any("reload failed:" in line[0] and "unknown key name 'kk'" in line[0]
               for line in lines[7:10] if line)
    held = [space.held(a) for a in loop_parts[0].actions]
    assert held[9] == ["forward"]                  # "k" still forward after the failed reload
