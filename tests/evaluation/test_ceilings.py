"""The ceilings on constructed one-step points and the tiny model, on the CPU.

The autoencoder's row is its reconstruction of the truth computed directly; the
posterior mean is deterministic for a seed, one frame per point whatever the chunking,
and, with a denoiser forced to predict the exact velocity towards the true latent, it is
the autoencoder's reconstruction (so its PSNR is the autoencoder's ceiling), which also
pins the layout the denoiser is asked in: clean context at level 0 then the next frame
at level 1, positions 0..F − 1, block-causal, context actions then the next action.
"""

from types import SimpleNamespace

import pytest
import torch

from neural_engine.evaluation.cases import Replay
from neural_engine.evaluation.ceilings import METRICS, ROWS, ceilings, posterior_mean
from neural_engine.evaluation.metrics import psnr, sharpness_ratio, ssim
from neural_engine.evaluation.report import ceilings_table
from neural_engine.evaluation.score import score_one_step
from neural_engine.model.autoencoder import to_uint8, to_unit
from neural_engine.model.dit import block_causal_mask, previous_frames

H = W = 64
A = 8
CONTEXT = 3


def points(n=6, seed=0) -> Replay:
    """n one-step points of smooth random frames; the last point's next frame is its
    last context frame (no change), so it is left out of every measure."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, CONTEXT + 1, 3, 8, 8, generator=g)
    frames = torch.nn.functional.interpolate(coarse.flatten(0, 1), size=(H, W), mode="bilinear")
    frames = (frames * 255).round().to(torch.uint8).view(n, CONTEXT + 1, 3, H, W)
    frames = frames.permute(0, 1, 3, 4, 2).contiguous()                 # (n, F, H, W, 3)
    frames[-1, -1] = frames[-1, -2]
    actions = (torch.rand(n, CONTEXT + 1, A, generator=g) < 0.3).float()
    return Replay([f"case@{i}" for i in range(n)], frames[:, :CONTEXT], actions[:, :CONTEXT],
                  actions[:, CONTEXT:], frames[:, CONTEXT:], torch.zeros(n, 1, 3), ("x", "y", "a"))


@pytest.fixture(scope="module")
def replay():
    return points()


def direct_reconstruction(model, frames):
    with torch.no_grad():
        ae = model.autoencoder
        return to_uint8(ae.decode(ae.encode(to_unit(frames))))


def test_the_autoencoder_ceiling_is_its_reconstruction_of_the_changing_truth(tiny_model, replay):
    model = tiny_model(H, W, A)
    c = ceilings(model, replay, seed=1, chunk=4)
    assert (c["points"], c["changing"], c["context_frames"]) == (6, 5, CONTEXT)
    truth = replay.truth[:5, 0]
    rec = direct_reconstruction(model, truth)
    assert c["autoencoder"]["psnr"] == pytest.approx(psnr(rec, truth).mean().item(), abs=1e-4)
    assert c["autoencoder"]["ssim"] == pytest.approx(ssim(rec, truth).mean().item(), abs=1e-5)
    assert c["autoencoder"]["sharpness"] == pytest.approx(sharpness_ratio(rec, truth), abs=1e-5)
    # the copy row is the one-step score's own copy baseline, on the same points
    work = SimpleNamespace(one_step=replay, one_step_case=["case"] * 6)
    one = score_one_step(work, replay.truth[:, :1])
    assert c["copy"]["psnr"] == pytest.approx(one["copy_psnr"], abs=1e-5)
    assert all(isinstance(c[row][m], float) for row in ROWS for m in METRICS)


def test_nothing_changing_is_not_measured(tiny_model, replay):
    still = Replay(replay.names, replay.context, replay.context_actions, replay.actions,
                   replay.context[:, -1:].clone(), replay.states, replay.state_names)
    c = ceilings(tiny_model(H, W, A), still)
    assert c["changing"] == 0 and all(c[row] == dict.fromkeys(METRICS) for row in ROWS)


def test_the_posterior_mean_is_one_frame_per_point_fixed_by_its_seed(tiny_model, replay):
    model = tiny_model(H, W, A)
    args = replay.context, replay.context_actions, replay.actions[:, 0]
    a = posterior_mean(model, *args, seed=3, chunk=2)
    assert a.shape == (6, H, W, 3) and a.dtype == torch.uint8
    assert torch.equal(a, posterior_mean(model, *args, seed=3, chunk=2))
    whole = posterior_mean(model, *args, seed=3, chunk=64)
    assert (a.int() - whole.int()).abs().max() <= 1         # chunking moves nothing
    other = posterior_mean(model, *args, seed=4, chunk=2)
    assert (a.int() - other.int()).abs().float().mean() > 0.5   # the noise is an input


def test_a_bf16_model_takes_its_inputs_cast(tiny_model, replay):
    model = tiny_model(H, W, A, dtype=torch.bfloat16)
    frames = posterior_mean(model, replay.context, replay.context_actions, replay.actions[:, 0])
    assert frames.shape == (6, H, W, 3) and frames.dtype == torch.uint8
    assert frames.float().std() > 1                         # drawn, not a constant


def test_an_exact_denoiser_s_posterior_mean_is_the_autoencoder_s_reconstruction(
        tiny_model, replay, monkeypatch):
    model = tiny_model(H, W, A, previous_frame=True)
    ae, changed = model.autoencoder, slice(0, 5)
    with torch.no_grad():
        true_z = ae.encode(to_unit(replay.truth[changed, 0]))                # (5, C, h, w)
        context_z = ae.encode(to_unit(replay.context[changed].flatten(0, 1))).view(
            5, CONTEXT, *true_z.shape[1:])
    expected_actions = torch.cat([replay.context_actions[changed],
                                  replay.actions[changed, :1]], 1)
    seen = []

    def exact(x, t, actions, time_pos, frame_mask=None, prev=None, **unused):
        rows = slice(sum(seen), sum(seen) + x.shape[0])
        seen.append(x.shape[0])
        f = CONTEXT + 1
        assert x.shape[1] == f and torch.equal(time_pos, torch.arange(f))
        assert torch.all(t[:, :-1] == 0) and torch.all(t[:, -1] == 1)
        assert torch.equal(frame_mask.frame_mask, block_causal_mask(f))
        assert torch.equal(actions, expected_actions[rows])
        assert torch.allclose(x[:, :-1], context_z[rows], atol=1e-5)
        want = previous_frames(x, t)
        assert torch.equal(prev[0], want[0]) and torch.equal(prev[1], want[1])
        v = torch.zeros_like(x)
        v[:, -1] = x[:, -1] - true_z[rows]                  # x0 = x_t − 1·v = the truth
        return v

    monkeypatch.setattr(model.denoiser, "forward", exact)
    c = ceilings(model, replay, seed=0, chunk=2)
    assert seen == [2, 2, 1]
    seen.clear()
    for metric in METRICS:
        assert c["posterior_mean"][metric] == pytest.approx(c["autoencoder"][metric], abs=0.02)
    mean = posterior_mean(model, replay.context[changed], replay.context_actions[changed],
                          replay.actions[changed, 0], chunk=8)
    rec = direct_reconstruction(model, replay.truth[changed, 0])
    assert (mean.int() - rec.int()).abs().max() <= 1


def test_the_report_shows_the_ceilings_beside_each_sampler_s_one_step():
    row = {"psnr": 33.0, "ssim": 0.95, "sharpness": 0.85}
    report = {"ceilings": {"points": 32, "changing": 25, "context_frames": 8,
                           "autoencoder": row, "posterior_mean": row | {"psnr": 23.1},
                           "copy": dict.fromkeys(METRICS)},
              "results": [{"sampler": "rolling", "one_step": row | {"psnr": 21.5}}]}
    text = "\n".join(ceilings_table(report))
    assert "25 of 32 points" in text
    assert "| autoencoder: decode(encode(truth)) | 33.00 | 0.950 | 0.850 |" in text
    assert "(x0 at noise level 1) | 23.10 |" in text and "| rolling: one sample | 21.50 |" in text
    assert "| copy of the last true frame | – | – | – |" in text
    assert "posterior mean" in text and "sharpness gate of 0.85 cannot pass" in text
    assert ceilings_table({"results": []}) == []            # a report from before ceilings
