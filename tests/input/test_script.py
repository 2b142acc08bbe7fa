import pytest

from neural_engine.games import load_spec
from neural_engine.input.script import load_script
from neural_engine.schema import SchemaError


@pytest.fixture(scope="module")
def spec():
    return load_spec("maze")


def write(tmp_path, text):
    path = tmp_path / "script.toml"
    path.write_text(text)
    return path


def test_timeline_compiles_to_ticks(spec, tmp_path):
    path = write(tmp_path, """
game = "maze"
seconds = 2.0
[[cue]]
t = 0.0
hold = ["forward"]
[[cue]]
t = 0.5
press = ["run"]
mouse = [80.0, 0.0]
over = 0.2
[[cue]]
t = 1.0
release = ["forward"]
""")
    script = load_script(path, spec.actions, "maze")
    actions = script.actions(spec.actions, spec.tick_rate)
    space = spec.actions
    assert len(actions) == 40
    assert space.held(actions[0]) == ["forward"] and actions[0].dx == 0.0
    assert space.held(actions[10]) == ["forward", "run"]
    # 80 px over 0.2 s = 4 ticks of 20 px each, scaled by pixels_per_unit
    assert [a.dx for a in actions[10:15]] == [pytest.approx(20 / 40.0)] * 4 + [0.0]
    assert space.held(actions[20]) == ["run"] and space.held(actions[39]) == ["run"]


def test_unknown_button_and_game_name_file_and_line(spec, tmp_path):
    path = write(tmp_path, 'game = "kart"\n[[cue]]\nt = 0\n\n[[cue]]\nt = 1\nhold = ["fly"]\n')
    with pytest.raises(SchemaError) as err:
        load_script(path, spec.actions, "maze")
    problems = err.value.problems
    assert f"{path}:7: cue[1].hold[0]: unknown button 'fly'" in problems[0]
    assert f"{path}:1: game: script is for game 'kart', not 'maze'" in problems[1]


def test_out_of_order_and_bad_types(spec, tmp_path):
    path = write(tmp_path, '[[cue]]\nt = 2\n[[cue]]\nt = 1\n')
    with pytest.raises(SchemaError, match="cues must be in order"):
        load_script(path, spec.actions, "maze")
    path = write(tmp_path, '[[cue]]\nt = "soon"\n')
    with pytest.raises(SchemaError, match=r"script.toml:2: cue\[0\].t: expected a number"):
        load_script(path, spec.actions, "maze")


def test_default_length_is_one_second_after_last_cue(spec, tmp_path):
    path = write(tmp_path, '[[cue]]\nt = 1.5\nhold = ["back"]\n')
    script = load_script(path, spec.actions, "maze")
    assert len(script.actions(spec.actions, 20)) == 50
