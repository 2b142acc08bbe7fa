"""Every training stage runs end to end on a tiny configuration and hands on its product."""

import json
import math

import pytest
import torch

from neural_engine.errors import EngineError
from neural_engine.evaluation.probe import load_probe
from neural_engine.games import load_game
from neural_engine.model.config import named_config
from neural_engine.model.dit import block_causal_mask
from neural_engine.model.weights import load_autoencoder, load_world_model, save_world_model
from neural_engine.model.world import WorldModel
from neural_engine.training import trainer
from neural_engine.training.autoencoder import AutoencoderStage, AutoencoderTraining
from neural_engine.training.probe_stage import ProbeStage, ProbeTraining
from neural_engine.training.rolling import RollingStage, RollingTraining
from neural_engine.training.teacher import TeacherStage, TeacherTraining, learning_rate

CPU = torch.device("cpu")


def _run(stage, folder, steps):
    trainer.run(stage, folder, trainer.Schedule(steps=steps, eval_every=10_000, log_every=2),
                quiet=True)
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_ae_teacher_rolling_and_probe_chain(tmp_path):
    game = load_game("maze")
    ae = AutoencoderStage(game, AutoencoderTraining(size="tiny", batch=2, pool=2,
                                                    episode_ticks=4, eval_worlds=1), CPU)
    _run(ae, tmp_path / "ae", 2)
    ae_file = tmp_path / "ae" / "autoencoder.safetensors"
    assert load_autoencoder(ae_file, CPU).cfg.latent_channels == 4

    teacher = TeacherStage(game, TeacherTraining(size="tiny", batch=2, pool=2, episode_ticks=26,
                                                 eval_profile="smoke", eval_steps=2,
                                                 compile=True), ae_file, CPU)
    lines = _run(teacher, tmp_path / "teacher", 4)
    train = [m for m in lines if m["kind"] == "train"]
    assert len(train) == 2 and all(math.isfinite(m["loss"]) and m["loss"] > 0 for m in train)
    assert any(m["kind"] == "eval" for m in lines)
    teacher_file = tmp_path / "teacher" / "teacher.safetensors"
    model = load_world_model(teacher_file, device=CPU)
    for (name, a), b in zip(teacher.ema.state_dict().items(),
                            model.denoiser.state_dict().values()):
        assert torch.equal(a.to(torch.bfloat16).float(), b.float()), name  # the EMA ships

    rolling = RollingStage(game, RollingTraining(batch=2, pool=2, rollout_max=6,
                                                 eval_profile="smoke", critic_steps=1),
                           teacher_file, CPU)
    before = [p.clone() for p in rolling.student.parameters()]
    lines = _run(rolling, tmp_path / "rolling", 2)
    assert any(m["kind"] == "train" and math.isfinite(m["dmd"]) for m in lines)
    assert any(not torch.equal(a, b) for a, b in zip(before, rolling.student.parameters()))
    assert (tmp_path / "rolling" / "student.safetensors").is_file()

    probe = ProbeStage(game, ProbeTraining(width=4, batch=2, pool=2, clip_len=3,
                                           eval_worlds=2), CPU)
    _run(probe, tmp_path / "probe", 2)
    probe = load_probe(tmp_path / "probe" / "probe.safetensors", CPU)
    assert probe.scales == tuple(m.scale for m in game.spec.control.motion)


def test_metrics_of_several_steps_are_read_back_together():
    steps = [{"loss": torch.tensor(0.5), "ticks": 3.0}, {"loss": torch.tensor(0.25), "ticks": 4}]
    assert trainer._to_floats(steps) == [{"loss": 0.5, "ticks": 3.0}, {"loss": 0.25, "ticks": 4.0}]
    assert trainer._to_floats([{"n": 1}]) == [{"n": 1.0}]


def test_compile_is_off_the_cpu_path():
    module = torch.nn.Linear(2, 2)
    assert trainer.compiled(module, False) is module


def test_teacher_learning_rate_warms_up_then_decays_to_its_floor():
    constant = TeacherTraining(lr=1e-3, warmup=10)
    assert learning_rate(constant, 0) == 1e-4
    assert learning_rate(constant, 5000) == 1e-3
    decayed = TeacherTraining(lr=1e-3, warmup=10, decay_steps=110, min_lr=1e-5)
    assert learning_rate(decayed, 9) == 1e-3
    assert math.isclose(learning_rate(decayed, 60), (1e-3 + 1e-5) / 2)
    rates = [learning_rate(decayed, s) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(rates, rates[1:]))
    assert math.isclose(learning_rate(decayed, 110), 1e-5)
    assert learning_rate(decayed, 10**6) == 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("refiner", [0, 8])
def test_a_teacher_gains_the_predecessor_path_from_weights_without_it(tmp_path, refiner,
                                                                      tiny_model):
    """Warm start: the new path (and the refiner) start closed, so the model answers
    exactly as before; training then opens them."""
    game = load_game("maze")
    spec = game.spec
    plain = tiny_model(spec.height, spec.width, spec.actions.dim, randomize="denoiser")
    path = save_world_model(tmp_path / "plain.safetensors", plain, dtype=torch.float32)
    cfg = TeacherTraining(size="tiny", batch=2, pool=2, episode_ticks=26, eval_profile="smoke",
                          eval_steps=2, previous_frame=True, previous_drop=0.5,
                          refiner=refiner)
    stage = TeacherStage(game, cfg, path, CPU, init=path)
    # the new path starts closed: its input projection is zero, the refiner's output too
    assert stage.denoiser.prev_embed.weight.abs().sum() == 0
    if refiner:
        assert stage.denoiser.refiner.out.weight.abs().sum() == 0
    c = stage.model.config
    x = torch.randn(2, 5, *c.latent_shape)
    t, a, pos = torch.rand(2, 5), torch.rand(2, 5, spec.actions.dim), torch.arange(5)
    with torch.no_grad():
        assert torch.equal(stage.denoiser(x, t, a, pos), plain.denoiser(x, t, a, pos))
    lines = _run(stage, tmp_path / "teacher", 2)
    assert all(math.isfinite(m["loss"]) for m in lines if m["kind"] == "train")
    assert stage.denoiser.prev_embed.weight.abs().sum() > 0
    if refiner:
        assert stage.denoiser.refiner.out.weight.abs().sum() > 0
    shipped = load_world_model(tmp_path / "teacher" / "teacher.safetensors", device=CPU)
    assert shipped.config.denoiser.previous_frame
    assert shipped.config.denoiser.refiner == refiner
    rolling = RollingStage(game, RollingTraining(batch=2, pool=2, rollout_max=6,
                                                 eval_profile="smoke", critic_steps=1),
                           tmp_path / "teacher" / "teacher.safetensors", CPU)
    lines = _run(rolling, tmp_path / "rolling", 2)
    assert any(m["kind"] == "train" and math.isfinite(m["dmd"]) for m in lines)


def test_a_warm_start_cannot_drop_a_refiner_or_change_its_width(tmp_path):
    game = load_game("maze")
    spec = game.spec
    refined = WorldModel(named_config("tiny", "maze", spec.height, spec.width, spec.actions.dim,
                                      refiner=8))
    path = save_world_model(tmp_path / "refined.safetensors", refined, dtype=torch.float32)
    for width in (0, 16):
        cfg = TeacherTraining(size="tiny", batch=2, pool=2, episode_ticks=26, refiner=width)
        with pytest.raises(EngineError, match="another denoiser configuration"):
            TeacherStage(game, cfg, path, CPU, init=path)


@pytest.mark.slow
def test_action_drop_gives_the_teacher_a_null_action_and_guidance_needs_it(tmp_path,
                                                                           tiny_model):
    """A teacher trained with action_drop warm-starts from one without the null action,
    and only such a teacher can guide the distillation's real score."""
    game = load_game("maze")
    spec = game.spec
    plain = tiny_model(spec.height, spec.width, spec.actions.dim, std=None)
    path = save_world_model(tmp_path / "plain.safetensors", plain, dtype=torch.float32)
    with pytest.raises(EngineError, match="null action"):
        RollingStage(game, RollingTraining(batch=2, pool=2, rollout_max=6, guidance=2.0,
                                           eval_profile="smoke"), path, CPU)
    cfg = TeacherTraining(size="tiny", batch=2, pool=2, episode_ticks=26, action_drop=0.5,
                          eval_profile="smoke", eval_steps=2)
    stage = TeacherStage(game, cfg, path, CPU, init=path)
    assert stage.denoiser.null_action.shape == (stage.model.config.denoiser.dim,)
    _run(stage, tmp_path / "teacher", 2)
    # the guided distillation warm-starts from a student that has no null action (the
    # shipped one): everything it has is loaded, the null action stays the teacher's
    guided = RollingStage(game, RollingTraining(batch=2, pool=2, rollout_max=6, guidance=2.0,
                                                eval_profile="smoke", critic_steps=1),
                          tmp_path / "teacher" / "teacher.safetensors", CPU, init=path)
    teacher = load_world_model(tmp_path / "teacher" / "teacher.safetensors").denoiser
    assert torch.equal(guided.student.null_action, teacher.null_action)
    assert torch.equal(guided.student.state_dict()["blocks.0.attn.qkv.weight"],
                       plain.denoiser.state_dict()["blocks.0.attn.qkv.weight"])
    lines = _run(guided, tmp_path / "rolling", 2)
    assert any(m["kind"] == "train" and math.isfinite(m["dmd"]) for m in lines)


def test_the_teachers_attention_is_a_typed_choice_refused_at_the_edge():
    from neural_engine.cli.train import stage_config
    from neural_engine.schema import SchemaError

    assert stage_config("teacher", None, []).attention == "sdpa"
    assert stage_config("teacher", None, ["attention=flex"]).attention == "flex"
    with pytest.raises(SchemaError, match="'flax' is not one of .*did you mean 'flex'"):
        stage_config("teacher", None, ["attention=flax"])


@pytest.mark.slow
def test_a_teacher_step_is_the_same_with_every_attention(tmp_path, tiny_model):
    """Same seeds, same clip: one SDPA per frame gives the dense mask's loss and
    gradients; FlexAttention, off the GPU, trains with the dense mask."""
    game = load_game("maze")
    spec = game.spec
    path = save_world_model(tmp_path / "tiny.safetensors",
                            tiny_model(spec.height, spec.width, spec.actions.dim),
                            dtype=torch.float32)
    steps = {}
    for kind in ("sdpa", "frames", "flex"):
        cfg = TeacherTraining(size="tiny", batch=2, pool=2, episode_ticks=26,
                              previous_frame=True, action_drop=0.5, attention=kind)
        stage = TeacherStage(game, cfg, path, CPU, seed=3)
        torch.manual_seed(5)
        loss = stage.train_step(0)["loss"]
        steps[kind] = stage.attention.kind, loss, [p.grad for p in stage.denoiser.parameters()]
    assert [steps[k][0] for k in ("sdpa", "frames", "flex")] == ["sdpa", "frames", "sdpa"]
    _, loss, grads = steps["sdpa"]
    for kind in ("frames", "flex"):
        assert torch.allclose(steps[kind][1], loss, rtol=1e-6), kind
        for a, b in zip(steps[kind][2], grads):
            assert (a is None) == (b is None)
            if a is not None:
                assert torch.allclose(a, b, atol=1e-6, rtol=1e-4), kind


@pytest.mark.parametrize("where", ["all", "pressed"])
def test_guidance_on_pressed_frames_leaves_the_no_op_frames_unguided(tmp_path, tiny_model,
                                                                     where):
    """The real score of a sequence of no-op and pressed frames (a button, the mouse
    alone): with ``guidance_where = "pressed"`` a no-op frame's is the teacher's plain
    conditional velocity and a pressed frame's the guided one, exactly; with "all"
    every frame's is the guided one."""
    game = load_game("maze")
    spec = game.spec
    teacher = tiny_model(spec.height, spec.width, spec.actions.dim, action_guidance=True,
                         previous_frame=True)
    path = save_world_model(tmp_path / "teacher.safetensors", teacher, dtype=torch.float32)
    stage = RollingStage(game, RollingTraining(batch=2, pool=2, rollout_max=6, guidance=2.0,
                                               guidance_where=where, eval_profile="smoke"),
                         path, CPU)
    d = stage.teacher.denoiser
    g = torch.Generator().manual_seed(4)
    n = 6
    x = torch.randn(2, n, *stage.teacher.config.latent_shape, generator=g)
    tt = torch.rand(2, n, generator=g)
    a = torch.zeros(2, n, spec.actions.dim)
    a[:, 1, spec.actions.index("forward")] = 1.0          # a button
    a[0, 3, spec.actions.index("dx")] = -0.25             # the mouse alone
    a[1, 4, 0] = 1.0
    pos, mask = torch.arange(n), block_causal_mask(n)
    prev = stage._score_prev(x, tt)
    with torch.no_grad():
        score = stage._real_score(x, tt, a, pos, mask, prev)
        v = d(x, tt, a, pos, frame_mask=mask, prev=prev)
        v_none = d(x, tt, a, pos, frame_mask=mask, prev=prev,
                   drop_actions=torch.ones(2, n, dtype=torch.bool))
    guided = v_none + 2.0 * (v - v_none)
    keys = torch.tensor([[False, True, False, True, False, False],
                         [False, True, False, False, True, False]])
    for b in range(2):
        for f in range(n):
            expect = guided if where == "all" or keys[b, f] else v
            assert torch.equal(score[b, f], expect[b, f]), (b, f)
    # the null action matters here: guided and unguided differ on every frame
    assert all(not torch.equal(guided[b, f], v[b, f]) for b in range(2) for f in range(n))
