"""``neural-engine validate PACK``: exit 0 and a summary, or exit 1 and a line per problem."""

from neural_engine.cli.main import main

from .conftest import SHIPPED


def test_valid_packs_exit_0_with_a_summary(capsys):
    for name in ("tour", "attract", "southpaw", "snapshot"):
        assert main(["validate", str(SHIPPED / name)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "ok: Guided tour of the maze: game maze, 3 start states, timeline 26.2 s"
    assert out[1].startswith("ok: Maze kiosk: game maze, 1 start state, timeline ")
    assert out[1].endswith("(loops), kiosk settings")


def test_an_invalid_pack_exits_1_with_one_line_per_problem(write_pack, capsys):
    root = write_pack('game = "maze"\n[controls]\nmouse_sensitivty = 2\n'
                      '[[start]]\nname = "a"\nimage = "../x.png"\n')
    assert main(["validate", str(root / "pack.toml")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    toml = root / "pack.toml"
    assert err == [f"error: {toml}:3: controls.mouse_sensitivty: unknown key (did you mean "
                   "'mouse_sensitivity'?)"]
    (root / "pack.toml").write_text('game = "maze"\n[[start]]\nname = "a"\nimage = "../x.png"\n'
                                    '[timeline]\n[[timeline.cue]]\nt = 0\nhold = ["forwad"]\n')
    assert main(["validate", str(root)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {toml}:4: start[0].image: path '../x.png' leaves the pack folder "
                   "('..')",
                   f"error: {toml}:8: timeline.cue[0].hold[0]: unknown button 'forwad' "
                   "(did you mean 'forward'?) (buttons: forward, back, strafe_left, "
                   "strafe_right, turn_left, turn_right, run)"]
