"""``run_game.py --pack``: a pack's script recorded headless, deterministically, with its
captions; image starts on the neural engine; options that clash with a pack."""

import av
import numpy as np
import pytest
import torch

from neural_engine.cli.play import main

from .conftest import ROOT

SNAPSHOT = ROOT / "games" / "maze" / "packs" / "snapshot"

PACK = '''game = "maze"
engine = "sim"
[[start]]
name = "a"
seed = 3
pose = [1.5, 3.5, 0.0]
[[start]]
name = "b"
seed = 7
[timeline]
seconds = 1.0
[[timeline.cue]]
t = 0.0
hold = ["forward", "turn_left"]
{caption}
[[timeline.cue]]
t = 0.5
start = "b"
'''


def decode(path):
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def write(tmp_path, name, caption):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "pack.toml").write_text(PACK.format(caption=caption))
    return folder


def test_a_pack_records_the_same_video_every_time_with_its_captions(tmp_path, capsys):
    with_caption = write(tmp_path, "captioned", 'caption = "Hello"\ncaption_seconds = 0.25')
    without = write(tmp_path, "plain", "")
    videos = []
    for i, pack in enumerate([with_caption, with_caption, without]):
        out = tmp_path / f"{i}.mp4"
        assert main(["--pack", str(pack), "--headless", "--record", str(out),
                     "--scale", "2"]) == 0
        videos.append(decode(out))
    assert "recorded 20 frames" in capsys.readouterr().out
    first, again, plain = videos
    assert len(first) == len(plain) == 20
    assert all((a == b).all() for a, b in zip(first, again))          # deterministic
    # the caption shows for its 5 ticks in the top-left corner; then the frames agree
    # (up to the codec's error, which differs a little after different frames)
    corner = [np.abs(a[:24, :64].astype(int) - b[:24, :64].astype(int)).mean()
              for a, b in zip(first, plain)]
    assert min(corner[:5]) > 20 and max(corner[5:]) < 3, corner
    changed = np.abs(first[0].astype(int) - plain[0].astype(int)).sum(-1) > 60
    rows, cols = np.nonzero(changed)
    assert rows.max() < 64 and cols.max() < 200                     # only the HUD's box
    assert not np.array_equal(first[9], first[10])                    # start "b" at 0.5 s


@pytest.mark.parametrize("args,message", [
    (["--seed", "3"], "--seed: a pack's start states set the seeds"),
    (["--script", "x.toml"], "--script: a pack plays its own [timeline]"),
    (["--game", "kart"], "--game kart: the pack is for 'maze'"),
    (["--kiosk", "--record", "x.mp4"], "--record: a kiosk runs for days"),
])
def test_options_that_clash_with_a_pack_are_one_line_errors(tmp_path, capsys, args, message):
    pack = write(tmp_path, "p", "")
    assert main(["--pack", str(pack), "--headless", *args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_an_invalid_pack_is_refused_before_anything_runs(tmp_path, capsys):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "pack.toml").write_text('game = "maze"\n[[start]]\nname = "a"\nseed = -1\n'
                                      '[controls]\nmouse_sensitivity = "fast"\n')
    out = tmp_path / "never.mp4"
    assert main(["--pack", str(folder), "--headless", "--record", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith(f"error: {folder / 'pack.toml'}:")
                                 for line in err)
    assert not out.exists()


def test_an_image_start_is_the_neural_engines_first_frame(tmp_path, tiny_weights, capsys):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path / "dream.mp4"
        assert main(["--pack", str(SNAPSHOT), "--weights", str(tiny_weights), "--device",
                     "cpu", "--headless", "--seconds", "0.2", "--scale", "1", "--no-hud",
                     "--record", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
    frames = decode(out)
    from neural_engine.packs.png import read_png

    hall = read_png(SNAPSHOT / "hall.png", (128, 128)).astype(int)
    below_caption = slice(40, None)               # the caption covers the top rows
    # the window (4 frames) is still filling for 3 ticks: the context frame shows
    error = [np.abs(f[below_caption].astype(int) - hall[below_caption]).mean() for f in frames]
    assert max(error[:3]) < 8                      # the picture, through the video codec
    assert error[3] > 30                           # a random model's dream
