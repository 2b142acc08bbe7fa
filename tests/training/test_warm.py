"""Warm starts across patch sizes: what the conversion keeps exactly, what loads as it
was, and what is still refused."""

import pytest
import torch

from neural_engine.cli.train import stage_config
from neural_engine.errors import EngineError
from neural_engine.games import load_game
from neural_engine.model.dit import block_causal_mask, previous_frames
from neural_engine.model.weights import save_world_model
from neural_engine.training.rolling import RollingStage, RollingTraining
from neural_engine.training.teacher import TeacherStage
from neural_engine.training.warm import (PATCH_INPUTS, PATCH_OUTPUTS, finer_inputs,
                                         finer_outputs, warm_start)

CPU = torch.device("cpu")


def blocks_of(pattern: torch.Tensor, p: int, q: int) -> torch.Tensor:
    """Latents (B, F, C, h, w) in which every p×p block is one q×q pattern tiled k×k
    times (k = p/q), the pattern of block (r, c) being ``pattern``'s q×q block (r, c)."""
    b, f, c, h, w = pattern.shape                    # h, w: rows·q, cols·q
    k = p // q
    x = pattern.view(b, f, c, h // q, 1, q, w // q, 1, q).expand(
        b, f, c, h // q, k, q, w // q, k, q)
    return x.reshape(b, f, c, h * k, w * k)


@pytest.mark.parametrize("p,q", [(2, 1), (4, 2), (4, 1)])
def test_finer_embedding_gives_each_q_token_its_p_tokens_embedding_on_tiled_blocks(
        p, q, tiny_model):
    """Exact: where a p×p block is one q×q pattern tiled (p/q)² times (a block constant
    per channel, for q = 1), each of its q-tokens embeds as the p-token did."""
    coarse = tiny_model(64, 64, patch=p, previous_frame=True).denoiser
    fine = tiny_model(64, 64, patch=q, previous_frame=True).denoiser
    for name in ("embed", "prev_embed"):
        layer = getattr(coarse, name)
        getattr(fine, name).weight.data = finer_inputs(layer.weight.data, p, q)
        getattr(fine, name).bias.data = layer.bias.data
    c, h, w = coarse.config.latent_shape
    x = blocks_of(torch.randn(2, 3, c, h // p * q, w // p * q), p, q)
    k = p // q
    for name in ("embed", "prev_embed"):
        old = getattr(coarse, name)(coarse.patchify(x))               # (B, F, rows·cols, D)
        new = getattr(fine, name)(fine.patchify(x))                   # (B, F, k²·rows·cols, D)
        rows, cols = coarse.rows, coarse.cols
        old = old.view(2, 3, rows, 1, cols, 1, -1).expand(2, 3, rows, k, cols, k, -1)
        torch.testing.assert_close(new, old.reshape(new.shape), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("p,q", [(2, 1), (4, 1)])
def test_finer_output_is_the_mean_pattern_of_the_p_tokens_output(p, q):
    """From the same state, a q-token emits the p-output averaged over the (p/q)² q×q
    sub-blocks at each offset, so each q-token keeps the p-token's per-channel mean."""
    torch.manual_seed(0)
    c, d, k = 3, 16, p // q
    layer = torch.nn.Linear(d, c * p * p)
    h = torch.randn(5, d)
    old = layer(h).view(5, c, k, q, k, q)                            # (N, C, u, i, v, j)
    new = (h @ finer_outputs(layer.weight.data, p, q).T
           + finer_outputs(layer.bias.data, p, q)).view(5, c, q, q)
    torch.testing.assert_close(new, old.mean((2, 4)))
    torch.testing.assert_close(new.mean((2, 3)), old.mean((2, 3, 4, 5)))


def test_a_patch_2_teacher_warm_starts_a_patch_1_one(tmp_path, tiny_model):
    """Through the teacher stage's --init and --set patch=1: every tensor the patch does
    not shape loads as it was, the patch-shaped ones as their conversion."""
    game = load_game("maze")
    spec = game.spec
    coarse = tiny_model(spec.height, spec.width, spec.actions.dim, previous_frame=True,
                        refiner=8, action_guidance=True)
    path = save_world_model(tmp_path / "p2.safetensors", coarse, dtype=torch.float32)
    cfg = stage_config("teacher", None, ["size='tiny'", "batch=2", "pool=2", "patch=1",
                                         "episode_ticks=26", "refiner=8", "action_drop=0.1"])
    stage = TeacherStage(game, cfg, path, CPU, init=path)
    assert stage.model.config.denoiser.patch == 1
    assert stage.model.config.tokens_per_frame == 4 * coarse.config.tokens_per_frame
    old, new = coarse.denoiser.state_dict(), stage.denoiser.state_dict()
    assert old.keys() == new.keys()
    shaped = set(PATCH_INPUTS) | set(PATCH_OUTPUTS)
    for name in old.keys() - shaped:
        assert torch.equal(new[name], old[name]), name
    for name in shaped:
        convert = finer_inputs if name in PATCH_INPUTS else finer_outputs
        assert torch.equal(new[name], convert(old[name], 2, 1)), name
    assert torch.equal(stage.ema.state_dict()["embed.weight"], new["embed.weight"])
    loss = stage.train_step(0)["loss"]
    assert torch.isfinite(loss)


def test_other_differences_are_still_refused(tiny_model):
    coarse = tiny_model(patch=2)
    for fine in (tiny_model(patch=1, dim=48, heads=2), tiny_model(patch=1, heads=4)):
        with pytest.raises(EngineError, match="another denoiser configuration"):
            warm_start(fine.denoiser, fine.config.denoiser, coarse.denoiser,
                       coarse.config.denoiser, "p2.safetensors")
    fine = tiny_model(patch=1)
    with pytest.raises(EngineError, match="finer only"):
        warm_start(coarse.denoiser, coarse.config.denoiser, fine.denoiser,
                   fine.config.denoiser, "p1.safetensors")


def test_a_patch_that_does_not_divide_the_frame_is_refused(tmp_path, tiny_model):
    game = load_game("maze")
    spec = game.spec
    path = save_world_model(tmp_path / "p2.safetensors",
                            tiny_model(spec.height, spec.width, spec.actions.dim))
    cfg = stage_config("teacher", None, ["size='tiny'", "batch=2", "pool=2", "patch=3"])
    with pytest.raises(EngineError, match="patch 3: frame 128x128 is not divisible by 24"):
        TeacherStage(game, cfg, path, CPU)


def test_the_distillation_takes_a_patch_1_teacher_and_a_patch_2_student_to_start_from(
        tmp_path, tiny_model):
    """Its student and critic are copies of the teacher's denoiser, so they get its
    patch; an earlier (coarser) student is converted into the student as a teacher is."""
    game = load_game("maze")
    spec = game.spec
    fine = tiny_model(spec.height, spec.width, spec.actions.dim, patch=1, previous_frame=True)
    coarse = tiny_model(spec.height, spec.width, spec.actions.dim, previous_frame=True, seed=1)
    teacher = save_world_model(tmp_path / "p1.safetensors", fine, dtype=torch.float32)
    student = save_world_model(tmp_path / "p2.safetensors", coarse, dtype=torch.float32)
    stage = RollingStage(game, RollingTraining(batch=2, pool=2, rollout_max=6), teacher, CPU,
                         init=student)
    for denoiser in (stage.student, stage.critic, stage.ema):
        assert (denoiser.patch, denoiser.rows * denoiser.cols) == (1, 256)
    assert torch.equal(stage.critic.embed.weight, fine.denoiser.embed.weight)
    assert torch.equal(stage.student.embed.weight,
                       finer_inputs(coarse.denoiser.embed.weight, 2, 1))


@pytest.mark.parametrize("depth", [3, 4, 5])
def test_a_deeper_denoiser_answers_as_the_shallower_one_it_grew_from(depth, tiny_model):
    """Exact: the added blocks pass the stream on unchanged, so the velocity is the
    same on any input; the first block standing for an old one is that block."""
    game = load_game("maze")
    spec = game.spec
    small = tiny_model(spec.height, spec.width, spec.actions.dim, previous_frame=True,
                       action_guidance=True, std=0.3)
    deep = tiny_model(spec.height, spec.width, spec.actions.dim, previous_frame=True,
                      action_guidance=True, depth=depth, seed=1)
    warm_start(deep.denoiser, deep.config.denoiser, small.denoiser, small.config.denoiser,
               "d2.safetensors")
    old, new = small.denoiser.state_dict(), deep.denoiser.state_dict()
    for name in new:
        if not name.startswith("blocks."):
            assert torch.equal(new[name], old[name]), name
    firsts = {j * 2 // depth: j for j in reversed(range(depth))}
    for i, j in firsts.items():
        for name in (n for n in old if n.startswith(f"blocks.{i}.")):
            assert torch.equal(new[name.replace(f"blocks.{i}.", f"blocks.{j}.", 1)], old[name])
    copies = [j for j in range(depth) if j not in firsts.values()]
    assert len(copies) == depth - 2
    for j in copies:
        assert not new[f"blocks.{j}.mlp.2.weight"].any()
        assert new[f"blocks.{j}.attn.qkv.weight"].any()
    torch.manual_seed(3)
    c, h, w = small.config.latent_shape
    x, t = torch.randn(2, 4, c, h, w), torch.rand(2, 4)
    actions, positions = torch.randn(2, 4, spec.actions.dim), torch.arange(4)
    mask = small.denoiser.frame_attention(block_causal_mask(4, CPU))
    prev = previous_frames(x, t)
    with torch.no_grad():
        want = small.denoiser(x, t, actions, positions, frame_mask=mask, prev=prev)
        got = deep.denoiser(x, t, actions, positions, frame_mask=mask, prev=prev)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_a_teacher_grows_deeper_through_its_stage_and_its_new_blocks_train(
        tmp_path, tiny_model):
    game = load_game("maze")
    spec = game.spec
    small = tiny_model(spec.height, spec.width, spec.actions.dim, previous_frame=True,
                       action_guidance=True)
    path = save_world_model(tmp_path / "d2.safetensors", small, dtype=torch.float32)
    cfg = stage_config("teacher", None, ["size='tiny'", "batch=2", "pool=2", "depth=3",
                                         "episode_ticks=26", "action_drop=0.1"])
    stage = TeacherStage(game, cfg, path, CPU, init=path)
    assert stage.model.config.denoiser.depth == 3
    before = stage.denoiser.blocks[1].mlp[2].weight.detach().clone()    # the copy of block 0
    assert not before.any()
    for step in range(2):
        assert torch.isfinite(stage.train_step(step)["loss"])
    assert stage.denoiser.blocks[1].mlp[2].weight.detach().any()


def test_a_shallower_denoiser_is_refused(tiny_model):
    deep, shallow = tiny_model(depth=3), tiny_model(depth=2)
    with pytest.raises(EngineError, match="adds blocks, it does not take them away"):
        warm_start(shallow.denoiser, shallow.config.denoiser, deep.denoiser,
                   deep.config.denoiser, "d3.safetensors")


def test_a_teacher_deeper_than_a_weights_file_may_hold_is_refused(tmp_path, tiny_model):
    game = load_game("maze")
    spec = game.spec
    ae = save_world_model(tmp_path / "ae.safetensors",
                          tiny_model(spec.height, spec.width, spec.actions.dim))
    cfg = stage_config("teacher", None, ["size='tiny'", "batch=2", "pool=2", "depth=64"])
    with pytest.raises(EngineError, match="denoiser.depth 64 is larger"):
        TeacherStage(game, cfg, ae, CPU)
