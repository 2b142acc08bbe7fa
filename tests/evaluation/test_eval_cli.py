"""`neural-engine eval` end to end on a tiny model: JSON, kept samples, a report drawn later."""

import json

import pytest
import torch

from neural_engine.cli.main import main
from neural_engine.games import load_game
from neural_engine.model.weights import save_world_model


@pytest.fixture(scope="module")
def weights(tmp_path_factory, tiny_model):
    spec = load_game("maze").spec
    model = tiny_model(spec.height, spec.width, spec.actions.dim, std=None)
    return save_world_model(tmp_path_factory.mktemp("w") / "tiny.safetensors", model,
                            dtype=torch.float32)


@pytest.mark.slow
def test_eval_writes_json_and_samples_and_a_report_can_be_drawn_from_them(weights, tmp_path):
    out, samples = tmp_path / "eval.json", tmp_path / "samples.safetensors"
    assert main(["eval", "--weights", str(weights), "--device", "cpu", "--profile", "smoke",
                 "--sampler", "rolling,causal", "--seconds", "2", "--cases", "6",
                 "--json", str(out), "--samples", str(samples)]) == 0
    report = json.loads(out.read_text())
    assert report["profile"] == "smoke" and report["settings"]["control_worlds"] == 1
    assert [r["sampler"] for r in report["results"]] == ["rolling", "causal"]
    for r in report["results"]:
        fid = r["fidelity"]
        assert 0 < fid["psnr_first_2s"] < 60 and set(fid["psnr"]) == {"1s", "2s"}
        assert len(r["realism"]["drift_per_second"]) == 3 and r["ticks_per_s"] > 0
        assert {g["gate"] for g in r["gates"]} >= {"turn", "held", "loop_closure"}
        assert r["one_step"]["points"] > 0 and "walk-into-wall" in r["controls"]["tests"]
    bounds = report["ceilings"]
    assert bounds["points"] == report["results"][0]["one_step"]["points"]
    assert bounds["changing"] == report["results"][0]["one_step"]["changing"] > 0
    assert bounds["copy"]["psnr"] == pytest.approx(report["results"][0]["one_step"]["copy_psnr"])
    for row in ("autoencoder", "posterior_mean", "copy"):
        assert all(type(bounds[row][m]) is float for m in ("psnr", "ssim", "sharpness"))
    assert samples.is_file()

    folder = tmp_path / "report"
    assert main(["eval", "--from-json", str(out), "--samples", str(samples),
                 "--report", str(folder)]) == 0
    text = (folder / "report.md").read_text()
    assert "| rolling |" in text and "| causal |" in text
    assert text.index("contact-rolling.png") < text.index("## Playability gates")
    assert text.index("## Playability gates") < text.index("## Ceilings") < text.index(
        "## Summary")
    assert "| rolling: one sample |" in text and "posterior mean" in text
    assert (folder / "contact-rolling.png").is_file() and (folder / "contact-causal.png").is_file()
    assert (folder / "psnr_vs_horizon.png").is_file() and (folder / "drift_vs_time.png").is_file()
    assert "Side by side" in text and "walk-and-turn" not in report["cases"][:5]


def test_a_report_from_a_file_that_is_not_an_evaluation_is_refused(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"results": []}')
    assert main(["eval", "--from-json", str(bad), "--report", str(tmp_path / "r")]) != 0
    assert "not an evaluation JSON" in capsys.readouterr().err


def test_profiles_fix_the_work_and_flags_override_them():
    from neural_engine.evaluation.settings import PROFILES, profile

    assert set(PROFILES) == {"full", "quick", "cpu", "smoke"}
    full = profile("full")
    assert full.seconds == 30 and full.drift_seconds == 300 and full.still_seconds == 60
    assert profile("quick", seconds=5.0, cases=None).seconds == 5.0
    assert profile("cpu").samplers == ("rolling", "causal")


def test_eval_ceilings_alone_match_the_whole_evaluations(weights, tmp_path, capsys):
    """--ceilings reads the same one-step points as the whole evaluation, and only them."""
    from neural_engine.evaluation.ceilings import ceilings
    from neural_engine.evaluation.score import build_workload, one_step_points
    from neural_engine.evaluation.settings import profile
    from neural_engine.model.weights import load_world_model

    out = tmp_path / "ceilings.json"
    assert main(["eval", "--weights", str(weights), "--device", "cpu", "--profile", "smoke",
                 "--ceilings", "--json", str(out)]) == 0
    got = json.loads(out.read_text())["ceilings"]
    assert "posterior_mean: psnr" in capsys.readouterr().out
    game, settings = load_game("maze"), profile("smoke")
    points = one_step_points(game, settings)
    assert torch.equal(points.truth, build_workload(game, settings).one_step.truth)
    want = ceilings(load_world_model(weights), points, settings.seed, settings.max_streams)
    assert got == json.loads(json.dumps(want))
    assert main(["eval", "--weights", str(weights), "--device", "cpu", "--ceilings",
                 "--report", str(tmp_path / "r")]) == 1
