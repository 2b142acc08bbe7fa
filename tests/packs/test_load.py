"""Loading packs: the shipped ones work, and every kind of mistake is one clear line."""

import os
import re

import pytest

from neural_engine.errors import EngineError
from neural_engine.packs import load_pack
from neural_engine.packs.start import ImageStart
from neural_engine.schema import SchemaError

from .conftest import SHIPPED

MINIMAL = 'game = "maze"\n'


def problems(path) -> list[str]:
    with pytest.raises(SchemaError) as err:
        load_pack(path)
    return err.value.problems


def only_problem(path) -> str:
    found = problems(path)
    assert len(found) == 1, found
    return found[0]


def test_the_shipped_packs_load_and_say_what_they_hold():
    names = sorted(p.name for p in SHIPPED.iterdir() if (p / "pack.toml").is_file())
    assert len(names) >= 3
    packs = {name: load_pack(SHIPPED / name) for name in names}

    tour = packs["tour"]
    assert [s.name for s in tour.starts] == ["corridor", "gallery", "second-maze"]
    timeline = tour.timeline()
    assert timeline.ticks == round(tour.script.length * 20)
    events = [timeline.events[tick] for tick in sorted(timeline.events)]
    assert [e.start for e in events if e.start] == ["gallery", "second-maze"]
    assert all(e.caption for e in events)

    attract = packs["attract"]
    assert attract.timeline().loop and attract.kiosk.attract_after == 15.0
    assert attract.kiosk_start.seed == 11 and attract.spec.timeline.file == "attract.toml"

    southpaw = packs["southpaw"]
    bindings = southpaw.bindings()
    assert bindings["forward"] == ("i", "keypad 8") and bindings["run"][-1] == "mouse right"
    assert southpaw.spec.controls.mouse_sensitivity == 2.0
    assert southpaw.sampler.late_binding and southpaw.sampler.window == 4   # preset kept

    start = packs["snapshot"].start_state("hall")
    assert isinstance(start, ImageStart) and start.image.endswith("hall.png")
    assert start.seed == 3 and start.pose == (11.5, 9.5, 0.0)
    assert not isinstance(packs["snapshot"].start_state("map-start"), ImageStart)


def test_a_pack_without_starts_or_timeline_uses_the_game_defaults(write_pack):
    pack = load_pack(write_pack(MINIMAL) / "pack.toml")
    assert pack.start_state().seed == 0 and pack.start_state().pose is None
    assert pack.timeline() is None and pack.bindings() == pack.game.bindings


@pytest.mark.parametrize("text,expected", [
    ('game = "maze"\n[controls]\nmouse_sensitivty = 2.0\n',
     r"pack\.toml:3: controls\.mouse_sensitivty: unknown key \(did you mean "
     r"'mouse_sensitivity'\?\)"),
    ('game = "maze"\n[[start]]\nname = "a"\nseed = "seven"\n',
     r"pack\.toml:4: start\[0\]\.seed: expected an integer, got 'seven'"),
    ('game = "maze"\n[controls]\nmouse_sensitivity = 1000\n',
     r"pack\.toml:3: controls\.mouse_sensitivity: value 1000\.0 is out of range"),
    ('game = "maze"\n[sampler]\nwindow = 99\n',
     r"pack\.toml:3: sampler\.window: value 99 is out of range \(must be between 1 and 32\)"),
    ('game = "maze"\n[sampler]\npreset = "rolings"\n',
     r"pack\.toml:3: sampler\.preset: unknown sampler preset 'rolings' \(did you mean "
     r"'rolling'\?\)"),
    ('game = "maze"\n[[start]]\nname = "a"\npose = [nan, 3.5, 0.0]\n',
     r"pack\.toml:4: start\[0\]\.pose\[0\]: expected a finite number, got nan"),
    ('game = "maze"\nengine = "nerual"\n',
     r"pack\.toml:2: engine: 'nerual' is not one of 'auto', 'sim', 'neural' \(did you "
     r"mean 'neural'\?\)"),
    ('game = "mazee"\n', r"pack\.toml:1: game: unknown game 'mazee' \(did you mean 'maze'\?\)"),
    ('game = "../maze"\n', r"pack\.toml:1: game: unknown game '\.\./maze'"),
    ('game = "maze"\n[controls.bindings]\njump = ["space"]\n',
     r"pack\.toml:3: controls\.bindings\.jump: not a button of maze"),
    ('game = "maze"\n[controls.bindings]\nforward = ["wq"]\n',
     r"pack\.toml:3: controls\.bindings\.forward\[0\]: unknown key name 'wq'"),
    ('game = "maze"\n[controls.bindings]\nforward = ["escape"]\n',
     r"pack\.toml:3: controls\.bindings\.forward\[0\]: key 'escape' is reserved"),
    ('game = "maze"\n[kiosk]\noperator_chord = ["left ctrl", "left ctrl"]\n',
     r"pack\.toml:3: kiosk\.operator_chord: keys of the chord must differ"),
    ('game = "maze"\n[kiosk]\noperator_chord = ["left ctrl", "mouse left"]\n',
     r"pack\.toml:3: kiosk\.operator_chord\[1\]: the chord is made of keyboard keys"),
    ('game = "maze"\n[kiosk]\nstart = "lobby"\n',
     r"pack\.toml:3: kiosk\.start: no start state named 'lobby'"),
    ('game = "maze"\n[[start]]\nname = "a"\n[[start]]\nname = "a"\n',
     r"pack\.toml:5: start\[1\]\.name: 'a' is already the name of start\[0\]"),
    ('game = "maze"\n[[start]]\nname = "wall"\nseed = 3\npose = [0.5, 0.5, 0.0]\n',
     r"pack\.toml:5: start\[0\]\.pose: the game refuses this pose: a start pose puts the "
     r"player inside a wall"),
    ('game = "maze"\n[[start]]\nname = "a"\npose = [1.5, 3.5]\n',
     r"pack\.toml:4: start\[0\]\.pose: 2 values; a pose of maze is \[x, y, angle\]"),
    ('game = "maze\n', r"pack\.toml: not valid TOML"),
])
def test_each_mistake_names_file_line_and_key(write_pack, text, expected):
    assert re.search(expected, only_problem(write_pack(text)))


TIMELINE = '''game = "maze"
[[start]]
name = "hall"
[[start]]
name = "garden"
[timeline]
seconds = 2.0
[[timeline.cue]]
t = 0.0
hold = ["forward"]
caption = "hi"
[[timeline.cue]]
t = 1.0
hold = ["fly"]
start = "gardn"
[[timeline.cue]]
t = 3.0
reset = true
'''


def test_timeline_problems_are_all_reported_at_their_lines(write_pack):
    found = problems(write_pack(TIMELINE))
    assert any(re.search(r"pack\.toml:14: timeline\.cue\[1\]\.hold\[0\]: unknown button "
                         r"'fly'", p) for p in found), found
    assert any(re.search(r"pack\.toml:15: timeline\.cue\[1\]\.start: no start state named "
                         r"'gardn' \(did you mean 'garden'\?\)", p) for p in found), found
    assert any(re.search(r"pack\.toml:17: timeline\.cue\[2\]\.t: cue at 3 s is after the "
                         r"end of the timeline \(2 s\)", p) for p in found), found
    assert len(found) == 3


def test_a_timeline_file_is_checked_with_its_own_lines(write_pack):
    root = write_pack('game = "maze"\n[timeline]\nfile = "walk.toml"\n',
                      **{"walk.toml": '[[cue]]\nt = 1.0\n[[cue]]\nt = 0.5\nhold = ["jump"]\n'})
    found = problems(root)
    assert found == [f"{root / 'walk.toml'}:1: cue: cues must be in order of time t"]
    (root / "walk.toml").write_text('game = "kart"\n[[cue]]\nt = 0\nhold = ["jump"]\n'
                                    '[[cue]]\nt = 0.5\ncaption_secs = 2\n')
    found = problems(root)
    assert found == [f"{root / 'walk.toml'}:7: cue[1].caption_secs: unknown key (did you "
                     "mean 'caption_seconds'?)"]
    (root / "walk.toml").write_text('game = "kart"\n[[cue]]\nt = 0\nhold = ["jump"]\n')
    found = problems(root)
    assert found == [f"{root / 'walk.toml'}:4: cue[0].hold[0]: unknown button 'jump' "
                     "(buttons: forward, back, strafe_left, strafe_right, turn_left, "
                     "turn_right, run)",
                     f"{root / 'walk.toml'}:1: game: timeline is for game 'kart', not 'maze'"]
    root = write_pack('game = "maze"\n[timeline]\nfile = "w.toml"\n[[timeline.cue]]\nt = 0\n',
                      folder="both", **{"w.toml": ""})
    assert "timeline.file: give the cues inline or in a file, not both" in only_problem(root)


@pytest.mark.parametrize("written,message", [
    ("../outside.png", "leaves the pack folder ('..')"),
    ("images/../../outside.png", "leaves the pack folder ('..')"),
    ("/etc/passwd.png", "is absolute"),
    ("C:/start.png", "is absolute"),
    ("images\\\\start.png", "separate folders with '/'"),
    ("start.py", "must name a PNG image (.png)"),
    ("missing.png", "file not found: missing.png"),
    ("", "empty path"),
    ("a\\u0000b.png", "holds control characters"),
])
def test_paths_must_stay_inside_the_pack(write_pack, written, message):
    root = write_pack(f'game = "maze"\n[[start]]\nname = "a"\nimage = "{written}"\n')
    (root.parent / "outside.png").write_bytes(b"x")
    found = only_problem(root)
    assert found.startswith(f"{root / 'pack.toml'}:4: start[0].image: "), found
    assert message in found


def test_links_out_of_the_pack_are_refused_and_links_inside_allowed(write_pack, hall_png):
    outside = write_pack(MINIMAL, folder="elsewhere")
    (outside / "secret.png").write_bytes(hall_png)
    root = write_pack('game = "maze"\n[[start]]\nname = "a"\nimage = "start.png"\n',
                      **{"real.png": hall_png})
    os.symlink(outside / "secret.png", root / "start.png")
    found = problems(root)
    assert any("start.png: a link that leaves the pack folder" in p for p in found), found
    assert any("start[0].image: start.png is a link that leaves the pack folder" in p
               for p in found), found
    (root / "start.png").unlink()
    os.symlink(root / "real.png", root / "start.png")
    assert load_pack(root).images["a"] == (root / "real.png").resolve()
    os.symlink(outside, root / "more")                        # a folder link out
    assert "more: a link that leaves the pack folder" in only_problem(root)


def test_a_pack_holds_only_toml_png_and_safetensors(write_pack):
    root = write_pack(MINIMAL, **{"helper.py": "import os\n", "notes/x.sh": "rm -rf /\n",
                                  "fake.png.py": ""})
    found = problems(root)
    assert len(found) == 3
    assert all("a pack holds only TOML files, PNG images and safetensors weights" in p
               for p in found)
    root = write_pack('game = "maze"\n[timeline]\nfile = "run.py"\n', folder="p2",
                      **{"run.py": ""})
    found = problems(root)
    assert any("timeline.file: path 'run.py' must name a TOML file (.toml)" in p
               for p in found), found


def test_start_images_must_be_pngs_of_the_game_size(write_pack, hall_png):
    text = 'game = "maze"\n[[start]]\nname = "a"\nimage = "a.png"\n'
    assert load_pack(write_pack(text, **{"a.png": hall_png})).images
    assert "start[0].image: not a PNG image" in only_problem(
        write_pack(text, folder="c", **{"a.png": b"GIF89a" + bytes(100)}))
    truncated = hall_png[:len(hall_png) // 2]
    assert "start[0].image: corrupt PNG image" in only_problem(
        write_pack(text, folder="d", **{"a.png": truncated}))
    import numpy as np

    from neural_engine.presenter.screenshot import save_png

    root = write_pack(text, folder="e")
    save_png(root / "a.png", np.zeros((64, 96, 3), np.uint8))
    assert "image is 96×64 pixels; the game's frames are 128×128" in only_problem(root)


def test_weights_are_read_and_checked_against_the_game(write_pack, tiny_weights):
    text = 'game = "maze"\nweights = "w.safetensors"\n'
    pack = load_pack(write_pack(text, **{"w.safetensors": tiny_weights.read_bytes()}))
    assert pack.weights.name == "w.safetensors"
    found = only_problem(write_pack(text, folder="garbage",
                                    **{"w.safetensors": b"\x10\x00\x00\x00" + bytes(64)}))
    assert "pack.toml:2: weights: not a safetensors file" in found
    data = bytearray(tiny_weights.read_bytes())
    data[-64:] = b"\xff" * 64                                 # NaN tensors at the end
    found = only_problem(write_pack(text, folder="nan", **{"w.safetensors": bytes(data)}))
    assert "weights: weights hold NaN or infinite values" in found
    found = only_problem(write_pack(text + '[sampler]\nring = 12\n', folder="ring",
                                    **{"w.safetensors": tiny_weights.read_bytes()}))
    assert "pack.toml:3: sampler: sink 1 + ring 12 + window 4 = 17 frames, more than the 13 " \
           "positions the weights were trained on" in found
    found = only_problem(write_pack(text, folder="absent"))
    assert "pack.toml:2: weights: file not found: w.safetensors" in found


def test_every_problem_is_reported_in_one_go(write_pack):
    root = write_pack('game = "maze"\ntitel = "x"\n[controls]\nmouse_sensitivity = -1\n'
                      '[[start]]\nseed = -4\n', **{"x.exe": b"MZ"})
    found = problems(root)
    assert len(found) == 5, found                  # stray file, titel, sensitivity, name, seed
    assert all(re.match(r"\S+(:\d+)?: ", line) for line in found)


def test_not_a_pack():
    with pytest.raises(EngineError, match="no such pack folder"):
        load_pack("/no/such/pack")
    with pytest.raises(EngineError, match="no pack.toml in this folder"):
        load_pack(SHIPPED)
