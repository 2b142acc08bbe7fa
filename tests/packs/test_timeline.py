"""A pack's timeline compiles like an action script, plus events at their ticks."""

import pytest

from neural_engine.games import load_spec
from neural_engine.input.script import ActionScript, Cue
from neural_engine.packs.timeline import PackCue, PackScript, compile_timeline


@pytest.fixture(scope="module")
def space():
    return load_spec("maze").actions


def test_inputs_compile_exactly_as_the_action_script_does(space):
    cues = [dict(t=0.0, hold=("forward",)), dict(t=0.5, press=("run",), mouse=(80.0, 0.0),
                                                 over=0.2), dict(t=1.0, release=("forward",))]
    plain = ActionScript(cue=tuple(Cue(**c) for c in cues), seconds=2.0)
    timeline = compile_timeline(PackScript(cue=tuple(PackCue(**c) for c in cues), seconds=2.0),
                                space, 20)
    assert timeline.actions == tuple(plain.actions(space, 20))
    assert timeline.ticks == 40 and timeline.events == {}


def test_events_land_on_their_ticks(space):
    script = PackScript(cue=(
        PackCue(t=0.0, hold=("forward",), caption="one\ntwo", caption_seconds=1.5),
        PackCue(t=1.0, start="hall"),
        PackCue(t=1.0, reset=True),
        PackCue(t=1.26, caption="late"),
        PackCue(t=1.5, hold=()),
    ), seconds=2.0)
    timeline = compile_timeline(script, space, 20, loop=True, start="hall")
    assert sorted(timeline.events) == [0, 20, 25]
    first = timeline.events[0]
    assert first.caption == "one\ntwo" and first.caption_ticks == 30
    # a start switch and a reset in one tick: the world restarts once, at the start
    assert (timeline.events[20].start, timeline.events[20].reset) == ("hall", False)
    assert timeline.events[25].caption == "late"
    assert timeline.loop and timeline.start == "hall"
    assert space.held(timeline.actions[29]) == ["forward"]
    assert space.held(timeline.actions[30]) == []


def test_events_past_the_end_never_happen(space):
    script = PackScript(cue=(PackCue(t=3.0, caption="never"),), seconds=1.0)
    assert compile_timeline(script, space, 20).events == {}
