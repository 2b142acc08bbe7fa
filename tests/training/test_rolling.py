"""The distillation's scorers over one fixed-length sequence (``fixed_length``): padding
after the window changes nothing the real frames compute, and the scorers see one shape.

Each test builds two stages on one tiny teacher (predecessor path, null action,
refiner), one padding to ``max_frames`` and one at the exact length, and feeds both the
same history and the same random draws."""

import pytest
import torch

from neural_engine.games import load_game
from neural_engine.model.weights import save_world_model
from neural_engine.training.rolling import RollingStage, RollingTraining
from neural_engine.training.speed import count_flops

CPU = torch.device("cpu")
# float32 on the CPU: the padded sequence's matmuls and attention sum in another order
TOL = dict(atol=1e-5, rtol=1e-4)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, tiny_model):
    spec = load_game("maze").spec
    model = tiny_model(spec.height, spec.width, spec.actions.dim, action_guidance=True,
                       previous_frame=True, refiner=8)
    return save_world_model(tmp_path_factory.mktemp("rolling") / "teacher.safetensors",
                            model, dtype=torch.float32)


def _stages(teacher, **cfg):
    """The padded stage and the exact one, alike in everything else."""
    game = load_game("maze")
    base = dict(batch=2, pool=2, rollout_max=6, eval_profile="smoke") | cfg
    return tuple(RollingStage(game, RollingTraining(fixed_length=fixed, **base), teacher, CPU,
                              seed=2) for fixed in (True, False))


def _batch(stage, history, seed=0):
    """A clean history of ``history`` frames, a student window x0 and their actions."""
    g = torch.Generator().manual_seed(seed)
    shape, a = stage.teacher.config.latent_shape, stage.teacher.config.action_dim
    hist = torch.randn(2, history, *shape, generator=g)
    hist_actions = (torch.rand(2, history, a, generator=g) < 0.3).float()
    x0 = torch.randn(2, stage.window, *shape, generator=g)
    window_actions = (torch.rand(2, stage.window, a, generator=g) < 0.3).float()
    return x0, hist, hist_actions, window_actions


def _inputs(stage, x0, hist, hist_actions, window_actions):
    layout = stage._layout(hist.shape[1])
    torch.manual_seed(7)
    x, tt, a, *_ = stage._score_inputs(hist, hist_actions, x0, window_actions, layout.frames)
    return layout, x, tt, a


@pytest.mark.parametrize("guidance", [1.0, 2.0])
def test_padding_leaves_the_real_frames_scores_unchanged(teacher, guidance):
    """The teacher's score (plain and guided) and the critic's, frame by frame, for a
    short history, a middling one and a full one; the padding's outputs are finite."""
    padded, exact = _stages(teacher, guidance=guidance, guidance_where="pressed")
    for history in (2, 5, 9):
        batch = _batch(padded, history, seed=history)
        fixed, x, tt, a = _inputs(padded, *batch)
        layout, x_e, tt_e, a_e = _inputs(exact, *batch)
        n = history + padded.window
        assert fixed.frames == padded.max_frames == 13 and layout.frames == n
        # the real frames' inputs and positions are the exact sequence's; the padding's
        # latents are zeros at level 1 with no action
        assert torch.equal(x[:, :n], x_e) and torch.equal(tt[:, :n], tt_e)
        assert torch.equal(a[:, :n], a_e) and torch.equal(fixed.positions[:n], layout.positions)
        assert not x[:, n:].any() and (tt[:, n:] == 1).all() and not a[:, n:].any()
        prev, prev_e = padded._score_prev(x, tt), exact._score_prev(x_e, tt_e)
        for p, p_e in zip(prev, prev_e):              # predecessors: latents, levels
            assert torch.equal(p[:, :n], p_e)
        assert not prev[0][:, 1].any() and (prev[1][:, 1] == 1).all()   # after the sink
        with torch.no_grad():
            real = padded._real_score(x, tt, a, fixed.positions, fixed.mask, prev,
                                      fixed.rotary)
            real_e = exact._real_score(x_e, tt_e, a_e, layout.positions, layout.mask, prev_e,
                                       layout.rotary)
            fake = padded.train_critic(x, tt, a, fixed.positions, frame_mask=fixed.mask,
                                       prev=prev, rotary=fixed.rotary)
            fake_e = exact.train_critic(x_e, tt_e, a_e, layout.positions,
                                        frame_mask=layout.mask, prev=prev_e,
                                        rotary=layout.rotary)
        assert real.shape[1] == fake.shape[1] == 13
        assert torch.isfinite(real).all() and torch.isfinite(fake).all()
        torch.testing.assert_close(real[:, :n], real_e, **TOL)
        torch.testing.assert_close(fake[:, :n], fake_e, **TOL)
        # and so the DMD direction the student follows
        torch.manual_seed(3)
        direction = padded._dmd_direction(*batch)
        torch.manual_seed(3)
        torch.testing.assert_close(direction, exact._dmd_direction(*batch), **TOL)


def test_padding_leaves_the_critics_loss_and_gradients_unchanged(teacher):
    padded, exact = _stages(teacher)
    for history in (2, 6):
        batch = _batch(padded, history, seed=history)
        losses, grads = [], []
        for stage in (padded, exact):
            stage.critic.zero_grad(set_to_none=True)
            torch.manual_seed(11)
            loss = stage._critic_loss(*batch)
            loss.backward()
            losses.append(loss.detach())
            grads.append([p.grad for p in stage.critic.parameters()])
        torch.testing.assert_close(losses[0], losses[1], **TOL)
        for (name, _), a, b in zip(padded.critic.named_parameters(), *grads):
            assert (a is None) == (b is None), name
            if a is not None:
                assert torch.isfinite(a).all(), name
                torch.testing.assert_close(a, b, **TOL, msg=name)


def _record_frames(stage) -> list[int]:
    """The sequence lengths the stage's scorers are called with, from now on."""
    seen = []
    for name in ("real", "train_critic"):
        forward = getattr(stage, name)

        def recorded(x, *args, forward=forward, **kwargs):
            seen.append(x.shape[1])
            return forward(x, *args, **kwargs)

        setattr(stage, name, recorded)
    return seen


def test_a_padded_step_is_the_exact_lengths_step(teacher):
    """One training step from the same seeds: the same draws (ticks, rollout, levels,
    noise), the same losses and the same gradients, student's and critic's, while the
    padded stage's scorers saw 13 frames and the exact stage's fewer."""
    padded, exact = _stages(teacher, guidance=2.0, critic_steps=1)
    lengths = [_record_frames(padded), _record_frames(exact)]
    steps = []
    for stage in (padded, exact):
        torch.manual_seed(5)
        steps.append(stage.train_step(0))
    assert steps[0]["ticks"] == steps[1]["ticks"]
    assert set(lengths[0]) == {13} and max(lengths[1]) < 13          # it really padded
    for key in ("dmd", "gt", "critic", "grad"):
        torch.testing.assert_close(steps[0][key], steps[1][key], **TOL, msg=key)
    for module in ("student", "critic"):
        for (name, a), b in zip(getattr(padded, module).named_parameters(),
                                getattr(exact, module).parameters()):
            if a.grad is not None:
                torch.testing.assert_close(a.grad, b.grad, **TOL, msg=f"{module}.{name}")


def test_the_scorers_see_one_shape_and_compile_once(teacher):
    """Over steps of different rollout lengths every scorer call has 13 frames, under
    one prepared layout, and torch.compile (Dynamo, its graph run eagerly) traces each
    scorer's forward once per kind of call and never again."""
    from torch._dynamo.testing import CompileCounter

    torch._dynamo.reset()
    padded, _ = _stages(teacher, rollout_max=10, guidance=2.0)
    counters = {}
    for name, module in padded.uncompiled.items():
        counters[name] = CompileCounter()
        setattr(padded, name, torch.compile(module, backend=counters[name]))
    seen = _record_frames(padded)
    ticks, after_first = [], None
    for step in range(4):
        ticks.append(padded.train_step(step)["ticks"])
        if step == 0:
            after_first = {name: c.frame_count for name, c in counters.items()}
    torch._dynamo.reset()
    # a rollout of fewer than 10 ticks leaves the history short of its 9 frames
    assert min(ticks) < 10 and set(seen) == {13} and list(padded.layouts) == [13]
    # the teacher: plain and guided; the critic: without gradient, then with it
    assert after_first == {"real": 2, "train_critic": 2}
    assert {name: c.frame_count for name, c in counters.items()} == after_first


def test_the_bench_counts_the_plain_scorers_and_puts_the_compiled_ones_back(teacher):
    padded, _ = _stages(teacher, critic_steps=1)

    def compiled_forward(*args, **kwargs):
        raise AssertionError("the FLOP counter ran a compiled forward")

    for name in padded.uncompiled:
        setattr(padded, name, compiled_forward)
    assert count_flops(padded, 0) > 0                      # the plain modules ran
    assert all(getattr(padded, name) is compiled_forward for name in padded.uncompiled)


def test_the_stage_encodes_only_the_context_unless_the_anchor_reads_further(teacher):
    """Distribution matching alone reads the first CONTEXT latents of each clip; the
    ground-truth anchor reads the clip's later frames too, so then every frame is encoded."""
    from neural_engine.training.validation import CONTEXT

    game = load_game("maze")
    base = dict(batch=2, pool=2, rollout_max=6, eval_profile="smoke")
    alone = RollingStage(game, RollingTraining(gt_weight=0.0, **base), teacher, CPU, seed=2)
    anchored = RollingStage(game, RollingTraining(gt_weight=1.0, **base), teacher, CPU, seed=2)
    a, b = alone.clips.next(), anchored.clips.next()
    assert a.latents.shape[1] == CONTEXT and b.latents.shape[1] == anchored.clip_len
    assert torch.allclose(a.latents, b.latents[:, :CONTEXT])
    assert all(v == v for v in alone.train_step(0).values())      # a step runs
