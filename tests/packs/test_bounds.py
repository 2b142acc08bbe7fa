"""Small files that used to cost minutes or gigabytes (issue 17, items 3 and 4).

Each pathological input runs through the real command in a child whose address space
is capped a few hundred MB above its imports, under a generous timeout: a blow-up or a
hang fails the test. Nothing here asserts a speed.
"""

import struct
import zlib

import pytest

from neural_engine.errors import EngineError
from neural_engine.packs import load_pack
from neural_engine.packs.png import minimal_png, raw_size
from neural_engine.schema import TomlSource
from neural_engine.tomlscan import MAX_BYTES, Scanner

from ..hostile import (dotted_key_toml, many_cues_script, mouse_cues_timeline, png_bomb,
                       png_bytes, run_bounded, spaces_in_string_toml, start_switch_pack)

VALIDATE = """
import sys
from neural_engine.cli.main import main
for pack in sys.argv[1:]:
    print(f"[{pack}] exit {main(['validate', pack])}", file=sys.stderr, flush=True)
"""


def test_pathological_packs_validate_within_bounds(write_pack):
    """Before: MemoryError after 31 s, 92 s, 34.5 s then ok, ok (then a restart loop)."""
    text, timeline = start_switch_pack()
    packs = {
        "dotted": write_pack(dotted_key_toml(), folder="dotted"),
        "spaces": write_pack(spaces_in_string_toml(), folder="spaces"),
        "bomb": write_pack('game = "maze"\n[[start]]\nname = "a"\nimage = "b.png"\n',
                           folder="bomb", **{"b.png": png_bomb(15)}),
        "switches": write_pack(text, folder="switches", **{"t.toml": timeline}),
        "mouse": write_pack('game = "maze"\n[timeline]\nfile = "t.toml"\n', folder="mouse",
                            **{"t.toml": mouse_cues_timeline()}),
        "sampler": write_pack('game = "maze"\nengine = "neural"\n[sampler]\nwindow = 32\n'
                              'ring = 1024\nsink = 64\n', folder="sampler"),
    }
    result = run_bounded(VALIDATE, *map(str, packs.values()),
                         imports="import torch, pygame, neural_engine.cli.main")
    assert result.returncode == 0, result.stderr
    err = result.stderr
    assert "Traceback" not in err
    assert "dotted/pack.toml:2: a key of more than 16 dotted parts" in err
    assert "spaces/pack.toml:2: description: longer than 2000 characters" in err
    assert ("bomb/pack.toml:4: start[0].image: the PNG's image data inflates to more than "
            "the 49280 bytes its size needs") in err
    assert ("switches/t.toml:1: cue: length 40000 is out of range (must be between 0 and "
            "20000)") in err
    assert "mouse/t.toml:2: cue: length 25000 is out of range" in err
    assert ("pack.toml:3: sampler: sink 64 + ring 1024 + window 32 = 1120 frames, more "
            "than the 13 positions the weights were trained on") in err


PLAY = """
import sys
from neural_engine.cli.main import main
script, switches, mouse = sys.argv[1:]
base = ["play", "--engine", "sim", "--headless", "--seconds", "1", "--scale", "1"]
for extra in (["--script", script], ["--pack", switches], ["--pack", mouse]):
    print(f"exit {main(base + extra)}", file=sys.stderr, flush=True)
"""


def test_pathological_timelines_play_within_bounds(write_pack, tmp_path):
    """Before: 95 s and 1 GB (a million cues), 156 s (40,000 start switches at t = 0),
    189 s (25,000 hour-long mouse cues). Now the first is refused by its size and the
    others, at the cue cap (20,000), play with one restart per tick and a linear
    compile."""
    script = tmp_path / "million.toml"
    script.write_text(many_cues_script())
    text, timeline = start_switch_pack(20_000)
    switches = write_pack(text, folder="switches", **{"t.toml": timeline})
    mouse = write_pack('game = "maze"\n[timeline]\nfile = "t.toml"\n', folder="mouse",
                       **{"t.toml": mouse_cues_timeline(20_000)})
    result = run_bounded(PLAY, str(script), str(switches), str(mouse),
                         imports="import torch, pygame, moderngl, neural_engine.cli.main")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert f"error: {script}: larger than 1 MiB" in result.lines
    assert [line for line in result.lines if line.startswith("exit")] == [
        "exit 1", "exit 0", "exit 0"], result.stderr


def test_cue_counts_are_capped_before_the_cues_are_read(tmp_path):
    from neural_engine.games import load_spec
    from neural_engine.input.script import MAX_CUES, load_script

    path = tmp_path / "many.toml"
    path.write_text("[[cue]]\nt=0\n" * (MAX_CUES + 1))
    assert path.stat().st_size < MAX_BYTES
    spec = load_spec("maze")
    with pytest.raises(EngineError, match=f"cue: length {MAX_CUES + 1} is out of range"):
        load_script(path, spec.actions, "maze")


def test_overlapping_mouse_moves_compile_linearly_and_exactly():
    from neural_engine.games import load_spec
    from neural_engine.input.script import ActionScript, Cue

    space = load_spec("maze").actions
    script = ActionScript(cue=(Cue(t=0.0, mouse=(40.0, 0.0), over=1.0),
                               Cue(t=0.5, mouse=(-20.0, 0.0), over=1.0)), seconds=2.0)
    dx = [a.dx for a in script.actions(space, 20)]
    per_tick = 40.0 / 20 / space.mouse_pixels_per_unit, -20.0 / 20 / space.mouse_pixels_per_unit
    assert dx[:10] == [per_tick[0]] * 10
    assert dx[10:20] == pytest.approx([per_tick[0] + per_tick[1]] * 10)
    assert dx[20:30] == pytest.approx([per_tick[1]] * 10)
    assert dx[30:] == [0.0] * 10                       # exactly still once both are done


def test_the_scan_refuses_depth_and_key_length_with_the_line():
    with pytest.raises(EngineError, match=r"x\.toml:3: a key of more than 16 dotted parts"):
        TomlSource("a = 1\nb = 2\n" + ".".join("k" * 17) + " = 1\n", "x.toml")
    with pytest.raises(EngineError, match=r"x\.toml:2: arrays or tables nested more than 16"):
        TomlSource("a = 1\nb = " + "[" * 40 + "]" * 40 + "\n", "x.toml")
    with pytest.raises(EngineError, match="larger than 1 MiB"):
        TomlSource("#" * (MAX_BYTES + 1), "x.toml")


def test_the_scan_maps_keys_to_lines_across_strings_and_inline_tables():
    text = ('game = "maze"  # a comment with key = 1\n'
            'description = """\nnot_a_key = 1\n[not.a.table]\n"""\n'
            '[controls]\nbindings = { forward = ["i", "up"], back = ["k"] }\n'
            "[[start]]\nname = 'a'\n[[start]]\nname = \"b\"\n")
    import tomllib

    tomllib.loads(text)
    scanner = Scanner(text, "x.toml")
    lines = scanner.run()
    assert scanner.complete
    assert lines[("game",)] == 1 and lines[("description",)] == 2
    assert ("not_a_key",) not in lines and ("not", "a", "table") not in lines
    assert lines[("controls", "bindings")] == 7
    assert lines[("controls", "bindings", "forward")] == 7
    assert lines[("start", 0, "name")] == 9 and lines[("start", 1, "name")] == 11


def _png(width, height, colour, depth, rows, interlace=0, palette=None):
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, interlace)
    out = b"\x89PNG\r\n\x1a\n"
    for kind, data in ((b"IHDR", ihdr), *(((b"PLTE", palette),) if palette else ()),
                       (b"IDAT", zlib.compress(rows)), (b"IEND", b"")):
        out += struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return out


def test_pngs_of_every_kind_inflate_to_exactly_their_size():
    from neural_engine.packs.png import read_png  # noqa: F401  (the module under test)

    grey = _png(16, 8, 0, 8, bytes(raw_size(16, 8, 8, 1, False)))
    assert minimal_png(grey, (16, 8)).startswith(b"\x89PNG")
    adam7 = _png(16, 8, 2, 8, bytes(raw_size(16, 8, 8, 3, True)), interlace=1)
    assert minimal_png(adam7, (16, 8))
    palette = _png(16, 8, 3, 4, bytes(raw_size(16, 8, 4, 1, False)), palette=b"\0\0\0" * 16)
    assert minimal_png(palette, (16, 8))
    long = _png(16, 8, 0, 8, bytes(raw_size(16, 8, 8, 1, False) + 1))
    with pytest.raises(EngineError, match="inflates to more than the 136 bytes"):
        minimal_png(long, (16, 8))
    short = _png(16, 8, 0, 8, bytes(raw_size(16, 8, 8, 1, False) - 1))
    with pytest.raises(EngineError, match="ends after 135 of 136 bytes"):
        minimal_png(short, (16, 8))
    # an ancillary chunk (a colour profile, compressed text) never reaches the decoder
    with_text = png_bytes(16, 8, zlib.compress(bytes(16 * 8 * 3 + 8)),
                          extra=[(b"zTXt", b"k\0\0" + zlib.compress(bytes(1 << 20)))])
    assert b"zTXt" not in minimal_png(with_text, (16, 8))


def test_a_bomb_in_a_start_image_is_refused_in_the_pack(write_pack):
    root = write_pack('game = "maze"\n[[start]]\nname = "a"\nimage = "b.png"\n',
                      **{"b.png": png_bomb(0.25)})
    with pytest.raises(EngineError, match="inflates to more than the 49280 bytes"):
        load_pack(root)
