"""The commands as a user runs them: exit codes, one-line errors, files written or not."""

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import pytest

from neural_engine.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def run(*args, env=None):
    full = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          env=full, timeout=300)


def test_headless_recording_has_the_right_frames(tmp_path):
    out = tmp_path / "OUT.mp4"
    proc = run("run_game.py", "--engine", "sim", "--headless", "--seconds", "3",
               "--record", str(out))
    assert proc.returncode == 0, proc.stderr
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert len(frames) == 60                         # 3 s at the maze's 20 ticks/s
        assert (frames[0].width, frames[0].height) == (512, 512)
        assert float(stream.average_rate) == 20
    assert "recorded 60 frames" in proc.stdout


def test_scripted_recording_is_deterministic(tmp_path):
    script = tmp_path / "s.toml"
    script.write_text('seconds = 1.0\n[[cue]]\nt = 0\nhold = ["forward", "turn_left"]\n')
    outs = []
    for name in ("a.mp4", "b.mp4"):
        proc = run("run_game.py", "--engine", "sim", "--headless", "--script", str(script),
                   "--record", str(tmp_path / name), "--no-hud")
        assert proc.returncode == 0, proc.stderr
        with av.open(str(tmp_path / name)) as c:
            outs.append([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    assert len(outs[0]) == 20
    assert all((x == y).all() for x, y in zip(*outs))
    assert not (outs[0][0] == outs[0][-1]).all()          # the script moved the player


@pytest.mark.parametrize("args,message", [
    (["--game", "kart"], "error: unknown game 'kart' (available: dungeon, maze)"),
    (["--bind", "forward=wq"], "error: --bind: forward: unknown key name 'wq'"),
    (["--headless", "--record", "/no/such/folder/x.mp4"],
     "error: /no/such/folder/x.mp4: recording folder does not exist"),
    (["--headless", "--record", "x.avi"], "recordings are written as mp4"),
])
def test_user_mistakes_are_one_line_and_exit_1(args, message, tmp_path):
    proc = run("run_game.py", "--engine", "sim", *args)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not Path("/no/such/folder").exists()


def test_malformed_script_names_file_and_line(tmp_path):
    script = tmp_path / "bad.toml"
    script.write_text('[[cue]]\nt = 0\nhold = ["jump"]\n')
    out = tmp_path / "never.mp4"
    proc = run("run_game.py", "--engine", "sim", "--headless", "--script", str(script),
               "--record", str(out))
    assert proc.returncode == 1
    assert f"{script}:3: cue[0].hold[0]: unknown button 'jump'" in proc.stderr
    assert not out.exists() and not list(tmp_path.glob("*.mp4*"))


def test_without_a_display_it_says_how_to_play_headless():
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER")}
    proc = subprocess.run([sys.executable, "run_game.py", "--engine", "sim"], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no display found" in lines[0] and "--headless" in lines[0]


def test_bench_cpu_writes_json(tmp_path):
    out = tmp_path / "OUT.json"
    assert main(["bench", "--device", "cpu", "--size", "tiny", "--ticks", "50",
                 "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    row = report["rows"][0]
    assert report["device"] == "cpu" and row["window"] == 4
    assert row["step_ms_eager"] > 0 and row["ticks_per_s"] > 0


def test_train_names_its_run_folder_in_a_way_torchrun_lets_through():
    from neural_engine.cli.main import build_parser

    for flag in ("--run-dir", "--run"):
        args = build_parser().parse_args(["train", "teacher", flag, "runs/t"])
        assert args.run == "runs/t"
    # torchrun's parser stops at a bare --run (an abbreviation of its --run-path) but
    # passes --run-dir through to the script
    from torch.distributed.run import get_args_parser

    passed = get_args_parser().parse_args(["--nproc-per-node", "2", "-m", "neural_engine.cli.main",
                                           "train", "teacher", "--run-dir", "runs/t"])
    assert passed.training_script_args[-2:] == ["--run-dir", "runs/t"]
    with pytest.raises(SystemExit):
        get_args_parser().parse_args(["-m", "neural_engine.cli.main", "train", "--run", "x"])
