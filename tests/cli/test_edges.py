"""Command-line edges that used to end in a traceback (issue 17, items 7 and 8)."""

import json
import subprocess
import sys

import pytest

from neural_engine.cli.main import build_parser, main

from ..hostile import ROOT


@pytest.mark.parametrize("argv, message", [
    (["play", "--seconds", "nan"], "argument --seconds: nan: must be a finite number above 0"),
    (["play", "--seconds", "inf"], "argument --seconds: inf: must be a finite number above 0"),
    (["play", "--seed", "99999999999999999999"], "argument --seed: 99999999999999999999: "
                                                 "must be between 0 and"),
    (["train", "ae", "--run", "x", "--eval-every", "-1"], "argument --eval-every: -1: must be"),
    (["train", "ae", "--run", "x", "--log-every", "-1"], "argument --log-every: -1: must be"),
    (["train", "ae", "--run", "x", "--minutes", "nan"], "--minutes: nan: must be a finite"),
    (["eval", "--seconds", "inf"], "argument --seconds: inf: must be a finite number"),
])
def test_bad_numbers_are_one_usage_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_game_is_a_name_not_a_path(capsys):
    assert main(["play", "--game", "../games/maze", "--engine", "sim", "--headless"]) == 1
    assert capsys.readouterr().err == ("error: unknown game '../games/maze' "
                                       "(available: dungeon, maze)\n")


def test_ctrl_c_during_start_up_is_no_traceback(tmp_path):
    """Ctrl-C while torch imports: a torch that raises KeyboardInterrupt on import stands in
    for the keypress, at that exact moment, every time."""
    fake = tmp_path / "torch"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise KeyboardInterrupt\n")
    env = {"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"}
    for argv in (["run_game.py"], ["-m", "neural_engine.cli.main", "play"]):
        proc = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True,
                              text=True, env=env, timeout=120)
        assert (proc.returncode, proc.stderr) == (130, "interrupted\n"), argv


def test_eval_checks_its_outputs_before_the_work(tmp_path, capsys):
    """Before: an unwritable --report failed after the whole evaluation, results lost."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["eval", "--device", "cpu", "--report", str(blocker / "report")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {blocker}/report: cannot write here: ")
    assert main(["eval", "--device", "cpu", "--json", str(blocker / "x.json")]) == 1


def test_eval_writes_its_numbers_before_drawing(tmp_path, monkeypatch, capsys):
    from neural_engine.evaluation import report as report_module
    from neural_engine.evaluation import runner

    fake = {"game": "maze", "results": [], "cases": [], "truth_drift": {}, "settings": {}}
    monkeypatch.setattr(runner, "evaluate", lambda *args, **kwargs: dict(fake))

    def broken(*args, **kwargs):
        raise RuntimeError("the drawing failed")

    monkeypatch.setattr(report_module, "write_report", broken)
    with pytest.raises(RuntimeError, match="the drawing failed"):
        main(["eval", "--device", "cpu", "--report", str(tmp_path / "r"), "--cases", "1"])
    saved = json.loads((tmp_path / "r" / "report.json").read_text())
    assert saved["game"] == "maze"
    assert "the full profile takes hours on a CPU" in capsys.readouterr().err   # and the note


def test_help_shows_every_default():
    parser = build_parser()
    sub = next(a for a in parser._actions if hasattr(a, "choices") and a.choices)
    for name, command in sub.choices.items():
        text = command.format_help()
        for action in command._actions:
            if action.option_strings and action.nargs != 0 and not action.required \
                    and action.dest != "help":
                assert "default" in command._get_formatter()._get_help_string(action), \
                    (name, action.option_strings)
        assert text
    assert "train a stage: ae, teacher, rolling or probe" in parser.format_help()


def test_bench_on_the_cpu_times_the_shipped_weights(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--device", "cpu", "--ticks", "2", "--warmup", "1", "--streams", "1",
                 "--no-latency", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["weights"] == "assets/maze/world_model.safetensors (shipped)"
    assert "timing assets/maze/world_model.safetensors (shipped)" in capsys.readouterr().out


def test_cpu_play_uses_8_bit_linear_layers(monkeypatch):
    from neural_engine.runtime import image_start

    seen = []
    original = image_start.ImageStartSource

    def spy(game, model, *args, **kwargs):
        seen.append(type(model.denoiser.blocks[0].attn.qkv).__module__)
        return original(game, model, *args, **kwargs)

    monkeypatch.setattr(image_start, "ImageStartSource", spy)
    assert main(["play", "--engine", "neural", "--device", "cpu", "--headless",
                 "--seconds", "0.1", "--scale", "1"]) == 0
    assert seen and "quantized" in seen[0]
