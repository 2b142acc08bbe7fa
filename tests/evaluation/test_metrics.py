import torch
import torch.nn.functional as F

from neural_engine.data.clips import held_out_clips
from neural_engine.evaluation.features import RealFrameBank
from neural_engine.evaluation.metrics import PSNR_CAP, psnr, ssim
from neural_engine.evaluation.probe import MotionProbe
from neural_engine.evaluation.realism import drift_summary
from neural_engine.games import load_game


def frames(n=4, seed=0):
    clip = held_out_clips(load_game("maze"), n, 3, "cpu", warmup=5, first=seed)
    return clip.frames[:, -1]                                              # (n, H, W, 3)


def noised(x, sigma, seed=0):
    g = torch.Generator().manual_seed(seed)
    noisy = x.float() + sigma * torch.randn(x.shape, generator=g)
    return noisy.round().clamp(0, 255).to(torch.uint8)


def test_perfect_values_on_identical_frames():
    x = frames()
    assert torch.all(psnr(x, x) == PSNR_CAP)
    assert torch.allclose(ssim(x, x), torch.ones(len(x)), atol=1e-5)


def test_degrade_with_noise_and_shift():
    x = frames()
    p = [psnr(noised(x, s), x).mean().item() for s in (2, 8, 32)]
    q = [ssim(noised(x, s), x).mean().item() for s in (2, 8, 32)]
    assert p[0] > p[1] > p[2] and q[0] > q[1] > q[2]
    shifted = torch.roll(x, 3, dims=2)
    assert psnr(shifted, x).mean() < 35 and ssim(shifted, x).mean() < 0.95
    # PSNR of 8-bit frames with Gaussian noise of σ = 8 is close to 20·log10(255/8)
    assert abs(p[1] - 30.07) < 0.5


def test_drift_is_low_for_real_frames_and_grows_with_damage():
    bank = RealFrameBank(load_game("maze"), worlds=8, ticks=40, every=4)
    real = frames(6, seed=500)
    blurred = F.avg_pool2d(real.permute(0, 3, 1, 2).float(), 9, 1, 4).round().to(
        torch.uint8).permute(0, 2, 3, 1)
    flat = torch.full_like(real, 128)
    noisy = noised(real, 40)
    d = {name: bank.distance(v).mean().item()
         for name, v in (("real", real), ("blurred", blurred), ("noisy", noisy), ("flat", flat))}
    assert d["real"] < d["blurred"] and d["real"] < d["noisy"] and d["real"] < d["flat"]


def test_drift_summary_defines_delta_drift_as_the_paper_does():
    rate = 20
    steady = torch.full((2, 70 * rate), 3.0)
    s = drift_summary(steady, rate)
    assert s["delta_drift"] == 0 and s["drift_ratio_last_vs_first_minute"] is None
    assert drift_summary(torch.full((1, 130 * rate), 3.0), rate)[
        "drift_ratio_last_vs_first_minute"] == 1
    assert len(s["drift_per_minute"]) == 1 and len(s["drift_per_second"]) == 70
    growing = torch.linspace(1, 2, 70 * rate).expand(2, -1)
    g = drift_summary(growing, rate)
    last, first = growing[:, -5 * rate:].mean(), growing[:, :5 * rate].mean()
    assert abs(g["delta_drift"] - (last - first).item()) < 1e-5


def test_probe_learns_a_synthetic_turn():
    """Pairs where the second image is the first shifted left or right: the probe learns
    the turn direction from frames alone."""
    torch.manual_seed(0)
    probe = MotionProbe((0.25, 0.2, 0.2), width=8)
    control = load_game("maze").spec.control
    optim = torch.optim.Adam(probe.parameters(), lr=3e-3)

    def batch(n=32):
        base = F.interpolate(torch.rand(n, 3, 16, 16), size=(64, 64), mode="nearest")
        direction = torch.randint(-1, 2, (n,))
        after = torch.stack([torch.roll(b, int(d) * 6, dims=2) for b, d in zip(base, direction)])
        to8 = lambda x: (x * 255).to(torch.uint8).permute(0, 2, 3, 1)  # noqa: E731
        target = torch.zeros(n, 3)
        target[:, 0] = direction.float() * 0.1
        return to8(base), to8(after), target, direction

    for _ in range(250):
        before, after, target, _ = batch()
        loss = F.smooth_l1_loss(probe(before, after) / 0.1, target / 0.1)
        optim.zero_grad()
        loss.backward()
        optim.step()
    before, after, _, direction = batch(200)
    with torch.no_grad():
        turn = control.classes(probe(before, after))[:, 0]
    assert (turn == direction).float().mean() > 0.9
