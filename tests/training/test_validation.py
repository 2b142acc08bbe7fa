"""Training validation flattens an evaluation report into the numbers a run logs."""

from neural_engine.games import load_game
from neural_engine.training import validation
from neural_engine.training.validation import Validation


def test_validation_logs_each_sampler_s_gates_and_the_model_s_ceilings(tmp_path, monkeypatch,
                                                                        tiny_model):
    report = {
        "ceilings": {"points": 4, "changing": 3, "context_frames": 8,
                     "autoencoder": {"psnr": 33.0, "ssim": 0.95, "sharpness": 0.85},
                     "posterior_mean": {"psnr": 23.1, "ssim": 0.70, "sharpness": None},
                     "copy": {"psnr": 18.7, "ssim": 0.47, "sharpness": 0.98}},
        "results": [{"sampler": "rolling", "fidelity": {"psnr_first_2s": 20.5},
                     "gates": [{"gate": "one_step_psnr", "value": 21.5, "status": "fail"},
                               {"gate": "turn", "value": None, "status": "not measured"}]}],
        "_contact": {"rolling": {}}}
    monkeypatch.setattr(validation, "build_workload", lambda game, settings: object())
    monkeypatch.setattr(validation, "evaluate", lambda *args, **kwargs: report)
    check = Validation(load_game("maze"), "smoke", ("rolling",))
    out = check(tiny_model(std=None), tmp_path, step=0)
    assert out == {"ceiling_ae_psnr": 33.0, "ceiling_ae_sharpness": 0.85,
                   "ceiling_mean_psnr": 23.1, "rolling_gates_passed": 0.0,
                   "rolling_psnr_first_2s": 20.5, "rolling_one_step_psnr": 21.5}
    assert all(isinstance(v, float) for v in out.values())
