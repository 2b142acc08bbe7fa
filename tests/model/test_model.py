import json

import pytest
import torch
from safetensors.torch import save_file

from neural_engine.errors import EngineError
from neural_engine.model.autoencoder import to_uint8, to_unit
from neural_engine.model.config import WorldModelConfig, named_config
from neural_engine.model.dit import block_causal_mask
from neural_engine.model.rope import RotaryTable, frame_coords, rotate
from neural_engine.model.weights import (load_world_model, read_config, save_world_model,
                                         verify_manifest, write_manifest)
from neural_engine.schema import SchemaError, fill, to_dict


@pytest.fixture
def tiny(tiny_model):
    """``tiny(**denoiser)``: the shared tiny random model at 64×64, 8 actions."""
    return tiny_model


def test_shapes_derive_from_the_config(tiny):
    cfg = named_config("small", "maze", 128, 128, 8)
    assert cfg.latent_shape == (16, 16, 16)
    assert cfg.grid == (8, 8) and cfg.tokens_per_frame == 64
    model = tiny()
    x = torch.randn(2, 3, *model.config.latent_shape)
    v = model.denoiser(x, torch.rand(2, 3), torch.rand(2, 3, 8), torch.arange(3),
                       frame_mask=block_causal_mask(3))
    assert v.shape == x.shape
    frames = torch.randint(0, 256, (2, 64, 64, 3), dtype=torch.uint8)
    z = model.autoencoder.encode(to_unit(frames))
    assert z.shape == (2, *model.config.latent_shape)
    assert model.autoencoder.decode(z).shape == (2, 3, 64, 64)


def test_patchify_round_trip_and_unit_conversion(tiny):
    model = tiny()
    x = torch.randn(2, 3, *model.config.latent_shape)
    assert torch.equal(model.denoiser.unpatchify(model.denoiser.patchify(x)), x)
    frames = torch.randint(0, 256, (4, 8, 8, 3), dtype=torch.uint8)
    assert torch.equal(to_uint8(to_unit(frames)), frames)


def test_block_causal_mask_means_the_past_ignores_the_future(tiny):
    model = tiny()
    x = torch.randn(1, 4, *model.config.latent_shape)
    t, a = torch.rand(1, 4), torch.rand(1, 4, 8)
    mask = block_causal_mask(4)
    v = model.denoiser(x, t, a, torch.arange(4), frame_mask=mask)
    x2, a2 = x.clone(), a.clone()
    x2[:, 3] += 1.0
    a2[:, 3] = 0.0
    v2 = model.denoiser(x2, t, a2, torch.arange(4), frame_mask=mask)
    assert torch.allclose(v[:, :3], v2[:, :3], atol=1e-6)
    assert not torch.allclose(v[:, 3], v2[:, 3])


def test_rotary_depends_only_on_relative_position():
    table = RotaryTable(16, 10000.0)
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)

    def score(tq, tk, shift=0):
        cq, sq = table(*(c + s for c, s in zip(frame_coords(torch.tensor([tq]), 1, 1),
                                                (shift, 0, 0))))
        ck, sk = table(*(c + s for c, s in zip(frame_coords(torch.tensor([tk]), 1, 1),
                                                (shift, 0, 0))))
        return (rotate(q, cq, sq) * rotate(k, ck, sk)).sum()

    assert torch.allclose(score(5, 2), score(5, 2, shift=7), atol=1e-5)
    assert not torch.allclose(score(5, 2), score(5, 4), atol=1e-3)


def test_a_finer_patch_keeps_the_rotation_between_two_places_on_the_frame(tiny_model):
    """Rows and columns count in patch-2 tokens: at patch 2 the coordinates are the
    integers, at patch 1 its tokens sit at half steps, so two tokens covering the same
    two places on the frame turn by the same angle at either patch."""
    coarse = tiny_model(64, 64, 8).denoiser
    fine = tiny_model(64, 64, 8, patch=1).denoiser
    assert (coarse.spacing, fine.spacing) == (1.0, 0.5)
    t = torch.tensor([3])
    _, r2, c2 = frame_coords(t, coarse.rows, coarse.cols, coarse.spacing)
    assert r2.dtype == torch.int64 and r2.max() == coarse.rows - 1        # as ever
    _, r1, c1 = frame_coords(t, fine.rows, fine.cols, fine.spacing)
    assert fine.rows == 2 * coarse.rows and r1.max() == coarse.rows - 0.5
    cos2, sin2 = coarse.rotary(t)
    cos1, sin1 = fine.rotary(t)
    # patch-2 token (row 2, col 3) and patch-1 token (row 4, col 6): the same place
    two = 2 * coarse.cols + 3
    one = 4 * fine.cols + 6
    assert torch.allclose(cos2[two], cos1[one]) and torch.allclose(sin2[two], sin1[one])


def test_an_unseen_button_combination_is_valid_input(tiny):
    model = tiny()
    x = torch.randn(1, 1, *model.config.latent_shape)
    every_button = torch.ones(1, 1, 8)
    v = model.denoiser(x, torch.rand(1, 1), every_button, torch.arange(1))
    assert torch.isfinite(v).all()


def test_weights_round_trip_with_config(tmp_path, tiny):
    model = tiny()
    path = save_world_model(tmp_path / "w.safetensors", model, dtype=torch.float32,
                            info={"steps": 3})
    config, info = read_config(path)
    assert config == model.config and info == {"steps": 3}
    loaded = load_world_model(path)
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    half = load_world_model(save_world_model(tmp_path / "h.safetensors", model))
    assert next(half.parameters()).dtype == torch.float32   # loaded at the asked dtype


def test_config_travels_through_toml_schema():
    cfg = named_config("small", "maze", 128, 128, 8)
    assert fill(WorldModelConfig, json.loads(json.dumps(to_dict(cfg)))) == cfg
    with pytest.raises(SchemaError, match="dim 250 is not divisible by 4 heads"):
        fill(WorldModelConfig, {**to_dict(cfg), "denoiser": {**to_dict(cfg.denoiser), "dim": 250}})


def test_bad_weights_say_what_is_wrong(tmp_path, tiny):
    with pytest.raises(EngineError, match="weights file not found"):
        load_world_model(tmp_path / "missing.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(EngineError, match="not a safetensors file"):
        load_world_model(junk)
    plain = tmp_path / "plain.safetensors"
    save_file({"a": torch.zeros(2)}, str(plain))
    with pytest.raises(EngineError, match="not a neural-engine world model"):
        load_world_model(plain)
    model = tiny()
    path = save_world_model(tmp_path / "w.safetensors", model)
    other = tiny(dim=64, heads=2)
    state = other.state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "x.safetensors"),
              metadata={"format": "neural-engine/world-model/1",
                        "config": json.dumps(to_dict(model.config))})
    with pytest.raises(EngineError, match="has shape"):
        load_world_model(tmp_path / "x.safetensors")
    write_manifest(tmp_path, {"game": "maze"})
    verify_manifest(tmp_path)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(EngineError, match="sha256 does not match"):
        verify_manifest(tmp_path)


def test_the_null_action_replaces_only_the_dropped_frames_and_needs_the_option(tiny):
    model = tiny(action_guidance=True)
    x = torch.randn(2, 3, *model.config.latent_shape)
    t, a, pos = torch.rand(2, 3), torch.rand(2, 3, 8), torch.arange(3)
    mask = block_causal_mask(3)
    with torch.no_grad():
        plain = model.denoiser(x, t, a, pos, frame_mask=mask)
        none = torch.zeros(2, 3, dtype=torch.bool)
        assert torch.equal(model.denoiser(x, t, a, pos, frame_mask=mask, drop_actions=none), plain)
        last = none.clone()
        last[:, 2] = True                   # the last frame's action unknown
        dropped = model.denoiser(x, t, a, pos, frame_mask=mask, drop_actions=last)
        # block-causal: the frames before the dropped one do not see it
        assert torch.equal(dropped[:, :2], plain[:, :2])
        assert not torch.allclose(dropped[:, 2], plain[:, 2])
        # without the option there is no null action to drop to
        with pytest.raises(ValueError):
            tiny().denoiser(x, t, a, pos, frame_mask=mask, drop_actions=last)


def test_model_sizes_are_a_typed_choice_refused_at_the_edge():
    import typing

    from neural_engine.model.config import MODEL_SIZES, ModelSize
    from neural_engine.training.autoencoder import AutoencoderTraining

    assert typing.get_args(ModelSize) == tuple(MODEL_SIZES)
    assert fill(AutoencoderTraining, {"size": "tiny"}).size == "tiny"
    with pytest.raises(SchemaError, match="'huge' is not one of 'tiny', 'small', 'base'"):
        fill(AutoencoderTraining, {"size": "huge"})
    with pytest.raises(EngineError, match="unknown model size 'huge'"):
        named_config("huge", "maze", 64, 64, 8)
